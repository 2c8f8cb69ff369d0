"""Input checks at the public entry points, kept off the per-step path.

Shapes, types and names are checked on the host at once. Value checks (NaN,
inf, label ranges) need the data, which may live on a GPU: they are queued as
0-d boolean device arrays in a :class:`DeferredChecks` and fetched in one
transfer, so a whole ``fit`` call's input checks cost one host sync.
"""

from __future__ import annotations

from typing import Any

import array_api_compat as compat
import numpy as np

from ._backend import Backend

__all__ = ["DeferredChecks", "as_features", "as_numeric", "as_targets", "checked_param", "positive", "positive_int"]


def as_numeric(backend: Backend, value: Any, dtype: Any, what: str, *, copy: bool = False) -> Any:
    """``value`` on ``backend`` as ``dtype`` (``None``: keep integer/bool
    dtypes, floats become ``float64``), refusing non-numbers with a ``TypeError``
    that says what came."""
    if value is None:
        raise TypeError(f"{what} must be an array of numbers, got None")
    if compat.is_array_api_obj(value) and not isinstance(value, np.ndarray | np.generic):
        xp = compat.array_namespace(value)
        if not (xp.isdtype(value.dtype, "numeric") or xp.isdtype(value.dtype, "bool")):
            raise TypeError(f"{what} must hold numbers, got dtype {value.dtype}")
        if xp.isdtype(value.dtype, "complex floating"):
            raise TypeError(f"{what} must hold real numbers, got dtype {value.dtype}")
        return backend.asarray(value, dtype, copy=copy)
    try:
        host = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{what} must be a rectangular array of numbers: {exc}") from None
    if host.dtype.kind not in "biuf":
        kind = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers"}.get(
            host.dtype.kind, f"dtype {host.dtype}"
        )
        raise TypeError(f"{what} must hold real numbers, got {kind}")
    return backend.asarray(host, dtype, copy=copy)


def as_features(backend: Backend, X: Any, dtype: str, n_in: int, what: str = "X") -> Any:
    """``X`` as a 2-D ``(n_samples, n_in)`` array of the model's dtype."""
    X = as_numeric(backend, X, dtype, what)
    if X.ndim != 2:
        hint = (
            f"; for one sample use {what}.reshape(1, -1), for one feature {what}.reshape(-1, 1)"
            if X.ndim == 1
            else ""
        )
        raise ValueError(
            f"{what} must be 2-D (n_samples, n_features) with {n_in} features, "
            f"got {X.ndim}-D shape {tuple(X.shape)}{hint}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{what} is empty: expected at least one sample with {n_in} features, got shape {tuple(X.shape)}")
    if X.shape[1] != n_in:
        raise ValueError(f"{what} has {X.shape[1]} features, but the network expects {n_in} (its first layer's n_in)")
    return X


def as_targets(
    backend: Backend,
    y: Any,
    dtype: str,
    n_samples: int,
    n_out: int,
    labels: bool,
    checks: DeferredChecks,
    what: str = "y",
    x_what: str = "X",
) -> tuple[Any, bool]:
    """``y`` checked against ``n_samples`` and ``n_out``; value checks queued.

    Returns ``(array, is_labels)``. With ``labels`` (cross-entropy over
    ``n_out > 1`` classes) a 1-D ``y`` is integer class labels, left for
    :func:`one_hot` once the checks have run; otherwise a 1-D ``y`` is one
    output per sample and becomes a column."""
    y = as_numeric(backend, y, None, what)
    xp = backend.xp
    if y.ndim not in (1, 2):
        raise ValueError(f"{what} must be 1-D or 2-D, got {y.ndim}-D shape {tuple(y.shape)}")
    if y.shape[0] != n_samples:
        raise ValueError(f"{x_what} has {n_samples} samples but {what} has {y.shape[0]}; they must match")
    if y.ndim == 1 and labels:
        if xp.isdtype(y.dtype, "real floating"):
            checks.finite(y, what)
            checks.add(xp.any(y != xp.round(y)), f"{what}: class labels must be integers, got non-integral values")
        checks.add(
            xp.any(y < 0) | xp.any(y >= n_out),
            f"{what}: class labels must lie in 0..{n_out - 1} for a network with {n_out} outputs",
        )
        return y, True
    if y.ndim == 1:
        if n_out != 1:
            raise ValueError(
                f"{what} has shape {tuple(y.shape)} (one value per sample) but the network has {n_out} outputs; "
                f"give {what} as ({n_samples}, {n_out}), or integer class labels with loss='cross_entropy'"
            )
        y = xp.reshape(y, (n_samples, 1))
    elif y.shape[1] != n_out:
        raise ValueError(f"{what} has {y.shape[1]} columns, but the network has {n_out} outputs")
    y = backend.asarray(y, dtype)
    checks.finite(y, what)
    return y, False


def one_hot(backend: Backend, labels: Any, n_classes: int, dtype: str) -> Any:
    """Checked integer labels ``(N,)`` as one-hot rows ``(N, n_classes)``."""
    import array_api_extra as xpx

    xp = backend.xp
    if not xp.isdtype(labels.dtype, "integral"):
        labels = xp.astype(labels, xp.int64)
    return xpx.one_hot(labels, n_classes, dtype=backend.dtype(dtype), xp=xp)


def positive(value: Any, what: str, *, integer: bool = False, allow_none: bool = False) -> Any:
    """A positive number (or int), else a ``ValueError``/``TypeError`` saying what came."""
    if value is None and allow_none:
        return None
    kind = "int" if integer else "number"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{what} must be a positive {kind}, got {value!r}")
    if integer and not isinstance(value, int | np.integer):
        raise TypeError(f"{what} must be a positive int, got {value!r}")
    if not (value > 0) or value != value or value == float("inf"):
        raise ValueError(f"{what} must be a positive {kind if integer else 'finite number'}, got {value!r}")
    return int(value) if integer else float(value)


def positive_int(value: Any, what: str) -> int:
    """A positive int (layer sizes, epochs, batch sizes)."""
    return positive(value, what, integer=True)


def checked_param(backend: Backend, value: Any, dtype: str, shape: tuple[int, ...], what: str) -> Any:
    """A user-given parameter converted to the backend (a private copy), with
    its shape checked: a wrong shape would broadcast silently in ``X @ W + b``."""
    arr = as_numeric(backend, value, dtype, what, copy=True)
    if tuple(arr.shape) != shape:
        raise ValueError(f"{what} must have shape {shape}, got {tuple(arr.shape)}")
    return arr


class DeferredChecks:
    """Device-side value checks, fetched to the host together in one transfer."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._flags: list[Any] = []
        self._messages: list[str] = []

    def add(self, failed: Any, message: str) -> None:
        """Queue a 0-d boolean array that is true when the check failed."""
        self._flags.append(failed)
        self._messages.append(message)

    def finite(self, a: Any, what: str) -> None:
        xp = self._backend.xp
        if xp.isdtype(a.dtype, "real floating"):
            self.add(xp.any(xp.isnan(a)), f"{what} contains NaN; remove or impute those values first")
            self.add(xp.any(xp.isinf(a)), f"{what} contains inf (infinite values); remove or clip them first")

    def run(self) -> None:
        """One device-to-host transfer; raise ``ValueError`` for the first failure."""
        if not self._flags:
            return
        xp = self._backend.xp
        failed = self._backend.to_numpy(xp.stack(self._flags))
        self._flags, messages = [], self._messages
        self._messages = []
        for bad, message in zip(failed, messages):
            if bad:
                raise ValueError(message)
