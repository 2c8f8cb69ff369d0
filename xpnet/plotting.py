"""Loss curves, as the seed texts draw them, from a ``History``.

matplotlib is optional (``pip install 'xpnet[plot]'``). Only its object API
is used, never ``pyplot``, so no GUI backend is chosen and nothing global
changes in the caller's matplotlib state.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["plot_history"]


def plot_history(
    history: Any,
    path: str | os.PathLike,
    *,
    title: str = "",
    ylabel: str = "loss",
    xlabel: str = "epoch",
    log: bool = True,
    first: int = 1,
) -> None:
    """Draw ``history.loss`` (and ``val_loss``, and ``val_accuracy`` on a
    right-hand axis when present) into the image file ``path``, whose
    extension names a format matplotlib writes (``.png``, ``.pdf``, ...). A
    path whose folder does not exist, or without such an extension, is
    refused before any drawing (matplotlib would fail at the end, naming
    only the file, or add ``.png`` to a name without an extension).

    ``first`` is the x of ``history.loss[0]``: epochs count from 1, as
    ``xpnet train`` numbers them; 0 matches a loop that prints its steps
    from 0, as the seeds do."""
    if isinstance(first, bool) or not isinstance(first, int):
        raise TypeError(f"plot_history: first must be an int, got {first!r}")
    if not os.fspath(path) or os.fspath(path).endswith(("/", os.sep)) or os.path.isdir(path):
        raise ValueError(f"plot_history needs the path of an image file, got {os.fspath(path)!r}, a folder's name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"plot_history: the folder {folder!r} of {os.fspath(path)!r} does not exist")
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ImportError("plotting needs matplotlib, which is not installed: pip install 'xpnet[plot]'") from None
    check_image_format(path, "plot_history: ")
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    epochs = range(first, first + len(history.loss))
    ax.plot(epochs, history.loss, label="training loss")
    if history.val_loss:
        ax.plot(epochs, history.val_loss, label="validation loss")
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no 2.5 on a short run
    ax.set_ylabel(ylabel)
    if log and min(history.loss, default=1.0) > 0:
        ax.set_yscale("log")
    ax.legend(loc="upper left")
    accuracy = history.metrics.get("val_accuracy")
    if accuracy:
        right = ax.twinx()
        right.plot(epochs, accuracy, color="tab:green", label="validation accuracy")
        right.set_ylabel("accuracy")
        right.legend(loc="center right")
    if title:
        ax.set_title(title)
    fig.savefig(path, dpi=100)


def check_image_format(path: str | os.PathLike, who: str = "") -> None:
    """The extension of ``path``, one of matplotlib's formats, else a
    ``ValueError`` (``who`` starts its message). ``plot_history`` and
    ``xpnet train --plot`` check it before any work."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    extension = os.path.splitext(os.fspath(path))[1][1:].lower()
    if extension not in formats:
        got = f"'.{extension}'" if extension else "no extension"
        raise ValueError(f"{who}expected an image file name ending in .png, or another format matplotlib "
                         f"writes ({', '.join(sorted(formats))}), got {got} in {os.fspath(path)!r}")
