"""Counting array operations on NumPy: every ufunc call (operators,
reductions, matmul), every NumPy function (``take``, ``where``, ``stack``),
casts, copies, fancy indexing and item assignment, one each.

On a GPU each of these is a kernel launch, so their number per training step
decides the speed of small and medium networks; on NumPy they can be counted
exactly. :class:`CountingArray` is an ``ndarray`` subclass whose operations
are tallied; arrays derived from it stay counting arrays (views and 0-d
results too), so the count follows the data through any namespace, xpnet's
or a hand-written loop's.
"""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from xpnet._backend import Backend


class _Tally:
    def __init__(self) -> None:
        self.ops: collections.Counter[str] = collections.Counter()

    @property
    def total(self) -> int:
        return sum(self.ops.values())


_current: list[_Tally] = []


def _count(name: str) -> None:
    if _current:
        _current[-1].ops[name] += 1


def _plain(x: Any) -> Any:
    if isinstance(x, CountingArray):
        return x.view(np.ndarray)
    if isinstance(x, tuple | list):
        return type(x)(_plain(v) for v in x)
    return x


def _wrap(x: Any) -> Any:
    if isinstance(x, CountingArray):
        return x
    if isinstance(x, np.ndarray):
        return x.view(CountingArray)
    if isinstance(x, np.generic):
        return np.asarray(x).view(CountingArray)
    if isinstance(x, tuple | list):
        return type(x)(_wrap(v) for v in x)
    return x


class CountingArray(np.ndarray):
    """An ndarray whose every operation is counted in the active :func:`counting` block."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _count(ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}")
        if "out" in kwargs:
            kwargs["out"] = _plain(kwargs["out"])
        result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        _count(func.__name__)
        return _wrap(func(*_plain(args), **_plain(kwargs)))

    def __getitem__(self, key):
        if _advanced(key):
            _count("getitem(advanced)")
        return _wrap(self.view(np.ndarray)[_plain(key)])

    def __setitem__(self, key, value):
        _count("setitem")
        self.view(np.ndarray)[_plain(key)] = _plain(value)

    def astype(self, *args, **kwargs):
        _count("astype")
        return _wrap(self.view(np.ndarray).astype(*args, **kwargs))

    def copy(self, *args, **kwargs):
        _count("copy")
        return _wrap(self.view(np.ndarray).copy(*args, **kwargs))


def _advanced(key: Any) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, np.ndarray | list) for k in keys)


@contextlib.contextmanager
def counting():
    """Count the operations on counting arrays inside the block."""
    tally = _Tally()
    _current.append(tally)
    try:
        yield tally
    finally:
        _current.pop()


def counting_array(a: Any) -> CountingArray:
    return np.array(a, copy=True).view(CountingArray)


@dataclass(frozen=True)
class CountingBackend(Backend):
    """NumPy whose arrays (parameters, inputs, and so everything computed
    from them) are counting arrays."""

    def asarray(self, obj, dtype=None, *, copy=False):
        out = super().asarray(obj, dtype, copy=copy)
        return out.view(CountingArray) if isinstance(out, np.ndarray) and not isinstance(out, CountingArray) else out


def counting_backend() -> CountingBackend:
    import xpnet

    base = xpnet.get_backend("numpy")
    return CountingBackend(base.name, base.xp, base.device)
