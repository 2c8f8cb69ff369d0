"""The progress display of ``fit(progress=True)`` and ``xpnet train``.

A tqdm bar on a terminal. A terminal that reports zero columns (``script -q
-c "xpnet train" /dev/null``, some CI consoles) would show tqdm's bar as a
blank line, so it gets one plain line per epoch instead.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

__all__ = ["EpochLines", "progress_bar", "terminal_columns"]


def terminal_columns(stream: TextIO) -> int | None:
    """The width the terminal behind ``stream`` reports, or ``None`` if it is not one."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return None


class EpochLines:
    """The part of tqdm's interface that ``fit`` uses, printing ``epoch 3/30:
    loss 0.1234, val_loss 0.2345, val_accuracy 0.9500`` at each of fit's reports."""

    def __init__(self, total: int, initial: int = 0, file: TextIO | None = None) -> None:
        self.total, self.n, self.file = total, initial, file or sys.stderr
        self.postfix: dict[str, Any] = {}

    def set_postfix(self, postfix: dict[str, Any], refresh: bool = True) -> None:
        self.postfix = dict(postfix)

    def update(self, n: int = 1) -> None:
        self.n += n
        figures = ", ".join(f"{name} {value}" for name, value in self.postfix.items())
        print(f"epoch {self.n}/{self.total}" + (f": {figures}" if figures else ""), file=self.file, flush=True)

    def close(self) -> None:
        pass


def progress_bar(total: int, initial: int = 0, file: TextIO | None = None) -> Any:
    """A tqdm bar over ``total`` epochs, or :class:`EpochLines` where the
    terminal reports no width."""
    file = file or sys.stderr
    if terminal_columns(file) == 0:
        return EpochLines(total, initial, file)
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="epoch", dynamic_ncols=True, leave=True, file=file)
