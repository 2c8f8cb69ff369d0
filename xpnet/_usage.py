"""The error of a bad command line, a leaf that both :mod:`xpnet.cli` (which
reports it) and :mod:`xpnet._commands` (which raises it) import."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A bad command line (argparse's own errors are routed here)."""
