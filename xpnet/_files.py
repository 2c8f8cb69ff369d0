"""Reading files that may come from anywhere: regular files only, bounded
reads, JSON with limits.

A model file or checkpoint is untrusted input. A FIFO would block ``read``
forever and ``/dev/zero`` would fill the memory, so anything but a regular
file is refused before a byte is read (and checked again on the open file,
in case the path changed in between). Reads stop at the sizes the caller
allows. JSON is parsed with limits on nesting and on the digits of an
integer, so a hostile header gives a ``ValueError`` that names the file and
the field, never a ``RecursionError`` or a bare ``int`` conversion error.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "MAX_INT_DIGITS", "MAX_JSON_DEPTH", "is_symlink_loop", "loads_limited", "open_regular", "read_exact", "shorten",
    "through_links",
]  # fmt: skip

#: Deepest JSON nesting accepted (an xpnet header needs about 5 levels).
MAX_JSON_DEPTH = 32
#: Longest JSON integer accepted, in digits (a generator state needs 39).
MAX_INT_DIGITS = 64

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def is_symlink_loop(path: Any) -> bool:
    """Does ``path`` lead into a loop of symbolic links (``Path.exists`` says
    False there, and ``resolve`` raises a ``RuntimeError``)?"""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def through_links(path: Path) -> Path:
    """The file a symbolic link leads to, which a save replaces: renaming over
    the link itself replaced the link with the new file and left its target
    holding the old model (the checks before the write follow the link)."""
    if not path.is_symlink():
        return path
    if is_symlink_loop(path):
        raise ValueError(f"{path} is a symlink loop (too many levels of symbolic links), not a file to write")
    while path.is_symlink():  # link by link, as the system reads them: realpath drops a missing folder's "gone/.."
        path = path.parent / os.readlink(path)
    return path


def path_text(value: Any, name: str) -> str:
    """``value`` as a text path; bytes, numbers or None are a ``TypeError``
    naming ``name`` (they failed deep in ``pathlib`` or a file name)."""
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__}: {value!r}")
    return text


def open_regular(path: Path, what: str = "model file") -> BinaryIO:
    """``path`` opened for binary reading, if it is a regular file.

    Raises ``FileNotFoundError`` for a missing file (or a broken symlink),
    ``ValueError`` naming what the path is otherwise (a FIFO, a device, a
    folder, a symlink loop), and ``OSError`` (with the path) when the system
    refuses to open it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise FileNotFoundError(f"no such {what}: {path} is a symlink to a missing file") from None
        raise FileNotFoundError(f"no such {what}: {path}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(f"{path} is a symlink loop (too many levels of symbolic links), not a {what}") from None
        raise
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is {_kind(mode)}, not a {what}")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)  # non-blocking: a FIFO swapped in after the stat cannot hang the open
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path} is {_kind(mode)}, not a {what}")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_exact(f: BinaryIO, n: int, path: Path, what: str) -> bytes:
    """Exactly ``n`` bytes, else a ``ValueError`` saying the file is truncated."""
    data = f.read(n)
    if data is None or len(data) != n:
        got = 0 if data is None else len(data)
        raise ValueError(f"{path} is truncated: {what} needs {n} bytes, the file has {got} left")
    return data


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {digits} digits (at most {MAX_INT_DIGITS} are accepted)")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"the key {twice[:60]!r} appears twice")
    return out


def loads_limited(text: str | bytes, where: str) -> Any:
    """``json.loads`` with limits (nesting, integer digits, no repeated keys:
    another parser could pick the other one); any failure is a
    ``ValueError`` starting with ``where`` (the file and the field)."""
    try:
        value = json.loads(text, parse_int=_bounded_int, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply (at most {MAX_JSON_DEPTH} levels are accepted)") from None
    except UnicodeDecodeError:
        raise ValueError(f"{where} is not valid UTF-8 text") from None
    except ValueError as exc:  # JSONDecodeError, and the integer limits
        raise ValueError(f"{where} is not valid JSON ({exc})") from None
    if _too_deep(value):
        raise ValueError(f"{where} is nested too deeply (at most {MAX_JSON_DEPTH} levels are accepted)")
    return value


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > MAX_JSON_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in item if isinstance(v, list | dict))  # scalars add no depth
    return False


def shorten(value: Any, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about hostile data."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
