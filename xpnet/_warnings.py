"""Warnings that point at the caller's line, not at xpnet's.

A warning raised deep in ``fit`` (a step that cannot be compiled, a kernel
that fell back) is about the user's call: its ``stacklevel`` must reach the
first frame outside the package, however many of xpnet's frames lie between
(their number depends on the backend and the path the step took: a fixed
``stacklevel`` pointed into ``xpnet/training.py``). A leaf module: anything
may import it.
"""

from __future__ import annotations

import os
import sys

__all__ = ["caller_stacklevel"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning, raised by the function
    calling this one, at the first caller outside xpnet."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE + os.sep):
        frame, level = frame.f_back, level + 1
    return level
