"""The one owner of dtype names: every spelling of float32 and float64.

Models hold their dtype as the name ``"float32"`` or ``"float64"``; users may
write it as that string, ``np.float32``, ``np.dtype("float32")``,
``torch.float64``, ``jnp.float32`` or an array_api_strict dtype. Each
namespace's own dtype object is made from the name (``Backend.dtype``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DTYPES", "dtype_name", "is_ml_dtype"]

DTYPES = ("float32", "float64")


def dtype_name(dtype: Any, what: str = "dtype") -> str:
    """``"float32"`` or ``"float64"`` for any spelling of them, else a ``ValueError``."""
    name = None
    if isinstance(dtype, str):
        name = dtype.strip().lower()
    elif dtype is not None and not isinstance(dtype, bool):
        try:
            name = np.dtype(dtype).name  # NumPy scalar types and dtypes, and JAX's
        except TypeError:
            name = str(dtype).rsplit(".", 1)[-1].strip("'>")  # torch.float64, array_api_strict's
    if name not in DTYPES:
        raise ValueError(f"{what} must be float32 or float64 (a name, a NumPy, torch or JAX dtype), got {dtype!r}")
    return name


def is_ml_dtype(dtype: Any) -> bool:
    """One of ml_dtypes' numbers (JAX's bfloat16 on the host, the float8s,
    int4s), which NumPy counts as raw bytes: every reader widens them."""
    return isinstance(dtype, np.dtype) and dtype.type.__module__.split(".")[0] == "ml_dtypes"
