"""Namespace helpers for stateless math: where ``xp`` comes from.

Activations and losses take their namespace from the arrays they are given.
Python scalars and lists have none, so they become NumPy float64 arrays: the
seeds call ``loss_fcn("mse", 3, 0.5)`` and ``sigmoid(126.0)`` on plain numbers.
"""

from __future__ import annotations

import functools
from typing import Any

import array_api_compat as compat
import numpy as np

from ._backend import to_numpy


def index_dtype(xp: Any) -> Any:
    """The namespace's default integer dtype, for labels and indices: int32
    on JAX in its default 32-bit mode, where asking for int64 warns and
    truncates; int64 where the namespace does not say."""
    info = getattr(xp, "__array_namespace_info__", None)
    return xp.int64 if info is None else info().default_dtypes()["integral"]


#: Array types seen by :func:`row_range`: are they JAX's?
_JAX_TYPES: dict[type, bool] = {}


def row_range(a: Any, lo: int, hi: int) -> Any:
    """Rows ``lo:hi`` of ``a``. On JAX as ``lax.dynamic_slice_in_dim`` with
    the start sent explicitly: eager indexing sends the bounds as an
    implicit transfer, which ``jax.transfer_guard`` refuses, and a static
    ``lax.slice_in_dim`` compiled one program per position (every chunk of
    a predict, every minibatch of an eager epoch: 0.9 s for predict's first
    300 000 rows against 0.2 s). One program per slice length here. Traced
    (inside a program) it is a static slice: a tracer has no sharding to
    send a start to, and the program is compiled once anyway."""
    jax_type = _JAX_TYPES.get(type(a))
    if jax_type is None:  # once per type (a NumPy float0 array is not JAX's): compat's test costs 0.6 us
        jax_type = _JAX_TYPES[type(a)] = not isinstance(a, np.ndarray) and compat.is_jax_array(a)
    if jax_type:
        import jax

        if isinstance(a, jax.core.Tracer):  # inside a program (an epoch report's validation rows): no transfer
            return jax.lax.slice_in_dim(a, lo, hi, axis=0)
        start = jax.device_put(np.int32(lo) if lo < 2**31 else np.int64(lo), a.sharding)
        return _jax_rows()(a, start, hi - lo)
    return a[lo:hi, ...]


def as_float_array(v: Any, like: Any = None) -> tuple[Any, Any]:
    """``(xp, array)`` for ``v``, always of a real floating dtype.

    Without ``like``: an array keeps its namespace; anything else becomes a
    NumPy float64 array. With an array ``like``: the result is in ``like``'s
    namespace, on its device, of its dtype (other libraries' arrays go through
    the host). Integer and bool inputs are promoted (to float64 where the
    device holds it), since every formula here divides or exponentiates."""
    if like is not None and compat.is_array_api_obj(like):
        xp = compat.array_namespace(like)
        if compat.is_array_api_obj(v) and compat.array_namespace(v) is xp and compat.device(v) == compat.device(like):
            if not xp.isdtype(v.dtype, "real floating"):
                v = xp.astype(v, like.dtype)
            return xp, v
        host = _host_floats(to_numpy(v) if compat.is_array_api_obj(v) else v)
        device = compat.device(like)
        if compat.is_cupy_array(like):
            with device:  # some CuPy versions ignore device=
                return xp, xp.asarray(host, dtype=like.dtype)
        return xp, xp.asarray(host, dtype=like.dtype, device=device)
    if compat.is_array_api_obj(v):
        xp = compat.array_namespace(v)
        if not xp.isdtype(v.dtype, "real floating"):
            v = xp.astype(v, widest_float(xp, v))
        return xp, v
    host = _host_floats(v)
    return compat.array_namespace(host), host


def widest_float(xp: Any, v: Any) -> Any:
    """float64 where ``v``'s device holds it, else float32: JAX in its
    default 32-bit mode truncates a float64 request with a warning, and
    array-api-strict's ``no_float64`` device refuses it."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return xp.float64
    floats = info().dtypes(kind="real floating", device=compat.device(v))
    return floats.get("float64", floats.get("float32", xp.float64))


def affine(xp: Any, X: Any, W: Any, b: Any = None) -> Any:
    """``X @ W + b`` (no ``b``: ``X @ W``), as one call where xpnet's
    namespace for the library has one (torch: ``addmm``, the bias added in
    the product's epilogue, so one pass over the output fewer), else the
    two standard operations. Same value to rounding."""
    if b is not None:
        fused = _extension(xp, "affine")
        v = None if fused is None else fused(X, W, b)
        if v is not None:
            return v
    v = xp.matmul(X, W)
    return v if b is None else v + b


def keep_positive(xp: Any, v: Any, dy: Any) -> Any:
    """``dy`` where ``v > 0``, else 0 (ReLU's backward): one kernel where
    xpnet's namespace for the library has one (torch: the one its autograd
    runs; CuPy: an ``ElementwiseKernel``), else ``dy`` times the 0/1 mask,
    which streams where ``where()`` with a scalar takes a slow broadcasting
    path (NumPy, 1024x1024 float32: 0.3 ms against 4.1)."""
    fused = _extension(xp, "keep_positive")
    dv = None if fused is None else fused(v, dy)
    return dy * xp.astype(v > 0, dy.dtype) if dv is None else dv


def column_sum(xp: Any, a: Any) -> Any:
    """The sum over the rows of a 2-D ``a`` (a bias gradient): one cuBLAS
    product where xpnet's namespace has one (CuPy, whose axis-0 reduction is
    slow on a C-ordered matrix), else ``sum(a, axis=0)``."""
    fused = _extension(xp, "column_sum")
    s = None if fused is None else fused(a)
    return xp.sum(a, axis=0) if s is None else s


def over_count(xp: Any, total: Any, count: int) -> Any:
    """``total / count``, a mean as scikit-learn takes it, with the count an
    array like ``total``: torch on CUDA divides by a host number as a product
    with its reciprocal (34 of 38 read 0.894736842105263, an ulp below
    34/38), by an array it divides. ``full_like`` fills it on the device,
    with no host copy, and works on JAX's tracers; under ``jax.jit`` XLA
    folds it into a constant and multiplies by its reciprocal too (fit's
    val_accuracy read 0.42000000000000004 for 126/300), unless an
    optimization barrier hides the value."""
    count = xp.full_like(total, count)
    if compat.is_jax_namespace(xp):
        import jax

        count = jax.lax.optimization_barrier(count)
    return total / count


def _extension(xp: Any, name: str) -> Any:
    """xpnet's own one-kernel version of ``name`` in ``xp``, or None (only
    xpnet's namespaces have ``xpnet_extensions``). An extension returns None
    for arguments it does not cover; the standard form here computes those,
    so it is written once. Read from the namespace's ``__dict__``: a
    ``getattr`` that misses raises and catches an AttributeError, 1 us a call
    on NumPy's namespace, per layer per step."""
    return getattr(xp, "__dict__", _NONE).get("xpnet_extensions", _NONE).get(name)


_NONE: dict[str, Any] = {}  # a namespace without extensions (no dict made per call: this runs per layer per step)


def _host_floats(v: Any) -> np.ndarray:
    host = np.asarray(v)
    if host.dtype.kind not in "biuf":
        raise TypeError(f"expected numbers, got {type(v).__name__} of dtype {host.dtype}")
    return host.astype(np.float64)


@functools.cache
def _jax_rows() -> Any:
    """``a[start:start + size]`` as one JAX program per shape and ``size``
    (eagerly, ``dynamic_slice`` sends its other indices, Python zeros, as
    implicit transfers)."""
    import jax

    return jax.jit(lambda a, start, size: jax.lax.dynamic_slice_in_dim(a, start, size, axis=0), static_argnums=2)
