"""Warnings that point at the caller's line, not at xpnet's.

A warning raised deep in ``fit`` (a step that cannot be compiled, a kernel
that fell back) is about the user's call: its ``stacklevel`` must reach the
first frame outside the package, however many of xpnet's frames lie between
(their number depends on the backend and the path the step took: a fixed
``stacklevel`` pointed into ``xpnet/training.py``). A leaf module: anything
may import it.
"""

from __future__ import annotations

import sys

__all__ = ["caller_stacklevel"]


def caller_stacklevel(also: tuple[str, ...] = ()) -> int:
    """The ``stacklevel`` that points a warning, raised by the function
    calling this one, at the first caller outside xpnet (and outside the
    packages named in ``also``: scikit-learn's wrapper of an estimator's
    ``fit`` lies between the user's call and xpnet.sklearn's)."""
    packages = ("xpnet", *also)
    frame, level = sys._getframe(1), 1
    while frame is not None and str(frame.f_globals.get("__name__", "")).split(".")[0] in packages:
        frame, level = frame.f_back, level + 1
    return level
