"""Metrics reported during ``fit`` on validation data, computed on the device.

Each metric is ``fn(xp, T, Y) -> 0-d array`` on targets already shaped like
the outputs (one-hot for classes), so ``fit`` can fetch it in the same
per-epoch transfer as the losses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["METRICS", "accuracy", "get_metric"]


def accuracy(xp: Any, T: Any, Y: Any) -> Any:
    """Fraction of rows classified right: argmax over several outputs, or a
    0.5 threshold on a single (sigmoid) output."""
    if Y.shape[-1] == 1:
        hits = (Y > 0.5) == (T > 0.5)
    else:
        hits = xp.argmax(Y, axis=-1) == xp.argmax(T, axis=-1)
    return xp.mean(xp.astype(hits, Y.dtype))


METRICS: dict[str, Callable[[Any, Any, Any], Any]] = {"accuracy": accuracy}


def get_metric(name: str) -> Callable[[Any, Any, Any], Any]:
    try:
        return METRICS[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; expected one of {', '.join(METRICS)}") from None
