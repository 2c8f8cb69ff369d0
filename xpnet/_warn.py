"""Warnings that point at the user's line: the first caller outside xpnet,
however deep in the package the cause was found (``warnings.warn``'s
``skip_file_prefixes`` needs Python 3.12)."""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["caller_stacklevel", "warn_caller"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def caller_stacklevel() -> int:
    """The ``stacklevel`` that, given to ``warnings.warn`` by this function's
    caller, points the warning at the first caller outside xpnet."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def warn_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside xpnet."""
    warnings.warn(message, category, stacklevel=caller_stacklevel())
