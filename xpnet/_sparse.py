"""SciPy sparse features on the NumPy backend, trained on as they are.

A TF-IDF or one-hot table is mostly zeros: 11 000 documents by 130 000
terms are 11 GiB dense in float64 and a few MB sparse. Only the first layer
sees ``X``, and a :class:`~xpnet.Dense` layer needs two products of it,
``X @ W`` forward and ``X.T @ delta`` for its weights (no gradient flows to
``X``), both of which SciPy computes from the stored values alone. So on
NumPy a sparse ``X`` stays sparse: its stored values are checked, its
minibatches are rows of a CSR matrix, and NumPy's ``matmul`` in xpnet's
namespace hands products with it to SciPy. The other backends take dense
arrays (their sparse formats differ, and the standard has no sparse
product); the message says so. SciPy is never imported here: a sparse
matrix is recognised by its type's module.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["features", "is_sparse", "product", "rows"]


def is_sparse(a: Any) -> bool:
    """Is ``a`` a SciPy sparse matrix or array?"""
    return type(a).__module__.startswith("scipy.sparse") and hasattr(a, "tocsr")


def features(backend: Any, X: Any, dtype: Any, what: str, check: Any = None) -> Any:
    """``X`` as a CSR matrix of ``dtype`` (a NumPy dtype, or ``None``: kept)
    for a NumPy backend; anything else is refused with what to pass instead.
    ``check(values)`` sees the stored values before the cast (the CSR's:
    LIL and DOK hold theirs otherwise, DIA pads)."""
    if backend.name != "numpy":
        raise TypeError(
            f"{what} is a SciPy sparse {X.shape[0]} x {X.shape[1]} matrix: the numpy backend takes it as it is, "
            f"the {backend.name} backend takes a dense array (its .toarray(), if that fits in memory)"
        )
    if X.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n_samples, n_features), got a sparse array of shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold real numbers, got a sparse matrix of dtype {X.dtype}")
    X = X.tocsr()
    if check is not None:
        check(X.data)
    return X if dtype is None or X.dtype == dtype else X.astype(dtype)


def rows(a: Any, order: Any, lo: int, hi: int) -> Any:
    """Rows ``lo:hi`` of the CSR matrix ``a`` in ``order`` (``None``: stored
    order); the matrix itself for all of them."""
    if order is not None:
        return a[np.asarray(order[lo:hi])]
    return a if hi - lo == a.shape[0] else a[lo:hi]


def product(x1: Any, x2: Any) -> Any:
    """``x1 @ x2`` where either is sparse, by SciPy, as a NumPy array (the
    operator itself stays out of xpnet's code: every product goes through
    the namespace's ``matmul``)."""
    out = x1.dot(x2) if is_sparse(x1) else x2.T.dot(x1.T).T
    return out.toarray() if is_sparse(out) else np.asarray(out)  # sparse times sparse: dense, as any product
