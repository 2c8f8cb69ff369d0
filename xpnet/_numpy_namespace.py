"""The NumPy namespace xpnet computes with: array-api-compat's, with a
faster ``sum`` and ``matmul``, and an ``asarray`` and ``clip`` that keep a recorded step's arrays.

``numpy.sum`` spends about 2.7 us per call in Python dispatch before it
reaches ``numpy.add.reduce`` (3.7 us against 1.0 us on a (4, 2) array). A
small network takes three sums per training step (the loss and two bias
gradients) and one per parameter at each epoch's NaN guard, which made sums
a fifth of a step of the XOR benchmark. For floating-point input without a
``dtype`` the two are the same computation, so that case calls the ufunc
directly; everything else is array-api-compat's own function.

``numpy.matmul`` computes a 2-D product of inner dimension 1 (an outer
product) in its own loop, outside BLAS: 4x slower than ``numpy.dot``
(128x1 @ 1x100: 13.7 against 3.5 us). That product is the backward pass of
every network with one output unit (``dX = delta @ W.T``), a forward pass
with one input, and a weight gradient of one row. One product per entry,
nothing summed: the two give the same numbers, so that case calls ``dot``.
A SciPy sparse operand (a sparse ``X``, :mod:`xpnet._sparse`) goes to
SciPy's own product.

``numpy.asarray`` makes an ndarray of a subclass: of a recorded step's
:class:`xpnet._tape.TapeArray`, a plain view the recording no longer
follows, so what is computed from it alone (``Loss._per_sample``'s
``xp.stack`` of the rows' losses) would be computed once, when recorded,
and replayed as a constant. ``asarray`` keeps a TapeArray one (a cast or a
copy of it recorded, as ``astype`` and ``copy`` are).
"""

from __future__ import annotations

import types
from typing import Any

import array_api_compat.numpy as _compat
import numpy as np

from ._derived_namespace import derived
from ._sparse import is_sparse, product
from ._tape import TapeArray

_add_reduce = np.add.reduce
_dot, _matmul = np.dot, np.matmul


def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    if dtype is None and x.dtype.kind == "f":
        return _add_reduce(x, axis=axis, keepdims=keepdims)
    return _compat.sum(x, axis=axis, dtype=dtype, keepdims=keepdims)


def matmul(x1: Any, x2: Any, /) -> Any:
    if type(x1) is not np.ndarray and is_sparse(x1) or type(x2) is not np.ndarray and is_sparse(x2):
        return product(x1, x2)  # SciPy's, of the stored values
    if x1.ndim == 2 and x2.ndim == 2 and x1.shape[1] == 1 and x1.dtype == x2.dtype and x1.dtype.kind == "f":
        return _dot(x1, x2)
    return _matmul(x1, x2)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None, **kwargs: Any) -> Any:
    if type(obj) is TapeArray and not kwargs and device in (None, "cpu"):  # the recording follows it on
        if dtype is not None and np.dtype(dtype) != obj.dtype and copy is not False:
            return obj.astype(dtype)
        if dtype is None or np.dtype(dtype) == obj.dtype:
            return obj.copy() if copy else obj
    return _compat.asarray(obj, dtype=dtype, device=device, copy=copy, **kwargs)


def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:  # noqa: A002 (the Array API's names)
    """``maximum`` then ``minimum`` for floating-point ``x`` and number
    bounds, the same numbers (NaN included): array-api-compat's copies ``x``
    into an empty array and assigns through masks, which a recorded step
    cannot follow, so a loss with ``xp.clip`` (Huber's gradient) ran eagerly
    under ``compile=True``. Anything else is compat's own."""
    if x.dtype.kind != "f" or (min is None and max is None) or not all(
            b is None or type(b) in (int, float) for b in (min, max)):  # fmt: skip
        return _compat.clip(x, min, max)
    out = x if min is None else np.maximum(x, min)
    return out if max is None else np.minimum(out, max)


def namespace() -> types.ModuleType:
    """A module with every name of ``array_api_compat.numpy``, ``sum``, ``matmul``, ``asarray`` and ``clip``
    replaced."""
    return derived(_compat, __name__ + ".xp", sum=sum, matmul=matmul, asarray=asarray, clip=clip)


xp = namespace()
