"""Namespace helpers for stateless math: where ``xp`` comes from.

Activations and losses take their namespace from the arrays they are given.
Python scalars and lists have none, so they become NumPy float64 arrays: the
seeds call ``loss_fcn("mse", 3, 0.5)`` and ``sigmoid(126.0)`` on plain numbers.
"""

from __future__ import annotations

from typing import Any

import array_api_compat as compat
import numpy as np


def as_float_array(v: Any, like: Any = None) -> tuple[Any, Any]:
    """``(xp, array)`` for ``v``: an array keeps its namespace; anything else
    becomes float64 in the namespace of ``like`` (or NumPy). Integer and bool
    arrays are promoted to floating point, since every formula here divides or
    exponentiates."""
    if compat.is_array_api_obj(v):
        xp = compat.array_namespace(v)
        if not xp.isdtype(v.dtype, "real floating"):
            v = xp.astype(v, xp.float64 if like is None else like.dtype)
        return xp, v
    host = np.asarray(v)
    if host.dtype.kind not in "biuf":
        raise TypeError(f"expected numbers, got {type(v).__name__} of dtype {host.dtype}")
    host = host.astype(np.float64)
    if like is not None and compat.is_array_api_obj(like):
        xp = compat.array_namespace(like)
        device = compat.device(like)
        if compat.is_cupy_array(like):
            with device:  # some CuPy versions ignore device=
                return xp, xp.asarray(host, dtype=like.dtype)
        return xp, xp.asarray(host, dtype=like.dtype, device=device)
    return compat.array_namespace(host), host
