"""Input checks at the public entry points, kept off the per-step path.

Shapes, types and names are checked on the host at once. Value checks (NaN,
inf, label ranges) need the data. Data that comes from the host (NumPy
arrays, lists) is checked there, with NumPy, before it moves (``host=True``
of :func:`as_numeric` and friends: the caller moves it once, after the
checks, the one-hot encoding and the split); data that already lives on a
device is checked there: its checks are queued as 0-d boolean device arrays
in a :class:`DeferredChecks` and fetched in one transfer, so a whole ``fit``
call's input checks cost at most one host sync, and on JAX compile nothing
for host data.
"""

from __future__ import annotations

import decimal
import functools
import numbers
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import array_api_compat as compat
import numpy as np

from ._backend import Backend, quiet_float_errors, to_numpy
from ._dtypes import dtype_name, is_ml_dtype
from ._files import path_text, through_links
from ._programs import one_program
from ._sparse import features as sparse_features
from ._sparse import is_sparse
from ._xp import index_dtype

__all__ = [
    "DeferredChecks", "as_features", "as_numeric", "as_targets", "check_distributed", "check_fit_options",
    "checked_param", "positive", "positive_int", "queue_loss_targets", "queue_output_check",
]


def as_numeric(
    backend: Backend, value: Any, dtype: Any, what: str, *, copy: bool = False, fits: Any = None, host: bool = False
) -> Any:
    """``value`` on ``backend`` as ``dtype`` (``None``: keep integer/bool
    dtypes, floats become ``float64``), refusing non-numbers with a ``TypeError``
    that says what came, and host values too large for ``dtype`` (or for
    ``fits``) with a ``ValueError`` (device arrays: the cast's ``inf`` is
    left to the deferred finite checks). ``host=True``: host values stay a
    NumPy array (cast to ``dtype``), for checks on the host; the caller moves
    it (``backend.asarray``)."""
    if value is None:
        raise TypeError(f"{what} must be an array of numbers, got None")
    if compat.is_array_api_obj(value) and not isinstance(value, np.ndarray | np.generic):
        refuse_without_data(value, what)
        xp = compat.array_namespace(value)
        if not _numbers_or_bools(xp, value.dtype):
            raise TypeError(f"{what} must hold numbers, got dtype {value.dtype}")
        if xp.isdtype(value.dtype, "complex floating"):
            raise TypeError(f"{what} must hold real numbers, got dtype {value.dtype}")
        refuse_torch_layouts(value, what)
        if backend.owns(value):
            with quiet_float_errors():
                out = backend.asarray(_in_movable_dtype(backend, value, fits), dtype, copy=copy)
            return out if dtype is not None else _comparable(backend, out)
        value = to_numpy(value)  # another library's array comes through the host anyway: checked as host data
    staged = host
    if is_sparse(value):  # numpy.asarray makes a 0-d array of one Python object of it
        raise TypeError(f"{what} is a SciPy sparse matrix; only X may be one (on the numpy backend): pass "
                        f"{what}.toarray()")  # fmt: skip
    if isinstance(value, np.ma.MaskedArray) and np.ma.getmaskarray(value).any():
        raise ValueError(f"{what} is a masked array with masked entries, and a mask is not a missing value here: "
                         "fill them (np.ma.filled) or leave those rows out")  # fmt: skip
    try:
        host = _pandas_numbers(value)
        host = np.asarray(value) if host is None else host
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{what} must be a rectangular array of numbers: {exc}") from None
    host = _object_numbers(_without_ml_dtypes(host))
    _refuse_host_non_numbers(host, value, what)
    _refuse_overflow(host, dtype if fits is None else fits, what)
    if dtype is None:
        host = _kept_kind(backend, host, fits)
    if staged:
        with quiet_float_errors():  # an overflowing cast shows as inf in the finite checks
            return host if dtype is None else host.astype(_host_dtype(backend, dtype), copy=False)
    return backend.asarray(host, dtype, copy=copy)


def _refuse_host_non_numbers(host: np.ndarray, value: Any, what: str) -> None:
    """A ``TypeError`` unless ``host`` (made from ``value``) holds real
    numbers, saying what it holds instead and how to make numbers of it."""
    fields = host.dtype.names or ()  # np.genfromtxt(..., names=True), a record array: one row per element
    if fields and all(host.dtype[n].kind in "biuf" for n in fields):
        raise TypeError(f"{what} is a structured array with fields {', '.join(fields)}; expected a 2-D array of "
                        f"numbers: pass numpy.lib.recfunctions.structured_to_unstructured({what})")  # fmt: skip
    if host.dtype.kind not in "biuf":
        kind = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers"}.get(
            host.dtype.kind, f"dtype {host.dtype}"
        )
        raise TypeError(f"{what} must hold real numbers, got {kind}{_columns_not_numbers(value)}")


def _numbers_or_bools(xp: Any, dtype: Any) -> bool:
    """``xp.isdtype`` raises on a dtype outside the standard's (JAX's PRNG
    key arrays: "Cannot interpret 'key<fry>' as a data type")."""
    try:
        return bool(xp.isdtype(dtype, "numeric") or xp.isdtype(dtype, "bool"))
    except (TypeError, ValueError):
        return False


def refuse_traced(method: str, *values: Any) -> None:
    """A JAX tracer (``jax.jit``, ``grad`` or ``vmap`` around a call), or a
    tensor of torch.func's transforms (``vmap``, ``grad``, ``jacrev``): xpnet
    checks its inputs on the host with one transfer and cuts them in chunks,
    which a trace cannot do; say so rather than fail deep in a check (torch:
    "Cannot access data pointer of Tensor that doesn't have storage")."""
    jax = sys.modules.get("jax")
    if jax is not None and any(isinstance(v, jax.core.Tracer) for v in values):
        raise TypeError(f"{method} cannot run under jax.jit, grad or vmap: it checks its input on the host and "
                        "computes in chunks; call it on arrays (on JAX it runs as compiled programs already)")
    if any(_under_torch_func(v) for v in values):
        raise TypeError(f"{method} cannot run under torch.func's transforms (vmap, grad, jacrev, ...): it checks its "
                        "input on the host and computes in chunks; call it on plain tensors")  # fmt: skip


def _under_torch_func(value: Any) -> bool:
    if not compat.is_torch_array(value):
        return False
    import torch

    wrapped = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None)
    return bool(wrapped is not None and wrapped(value))


def refuse_without_data(value: Any, what: str) -> None:
    """A torch tensor on the ``meta`` device, or a JAX array whose buffer was
    deleted (donated to a ``jax.jit`` function), holds no values: say so,
    rather than fail deep in the first copy."""
    if compat.is_torch_array(value) and value.device.type == "meta":
        raise ValueError(f"{what} is a torch tensor on the 'meta' device, which holds shapes without data; "
                         "expected a tensor on 'cpu' or a CUDA device")  # fmt: skip
    is_deleted = getattr(value, "is_deleted", None)
    if compat.is_jax_array(value) and callable(is_deleted) and is_deleted():
        raise ValueError(f"{what} is a JAX array whose buffer was deleted (.delete(), or donated to a jax.jit "
                         "function); expected an array that still holds its values")  # fmt: skip


def _object_numbers(host: np.ndarray) -> np.ndarray:
    """An object array of real numbers (a DataFrame column of object dtype,
    Decimals, a list with None for a missing value) as float64, as
    scikit-learn's ``check_array`` reads it: None becomes NaN, which the
    finite checks name. They were refused as "Python objects ... encode
    them as numbers". Anything else (text, ``pd.NA``, complex numbers, ints
    beyond float64) stays, for the refusal to name."""
    if host.dtype.kind != "O" or not all(v is None or isinstance(v, _REAL) for v in host.flat):
        return host
    try:
        with quiet_float_errors():
            return host.astype(np.float64)
    except (OverflowError, ValueError, TypeError):
        return host


_REAL = (numbers.Real, decimal.Decimal, np.bool_)


def _without_ml_dtypes(host: np.ndarray) -> np.ndarray:
    """ml_dtypes' numbers (JAX's bfloat16 on the host, float8s, int4s), which
    NumPy counts as raw bytes (kind ``V``), as float32 or int64: both hold
    them exactly, and every backend takes them."""
    if host.dtype.kind != "V" or not is_ml_dtype(host.dtype):
        return host
    return host.astype(np.float32 if "float" in host.dtype.name else np.int64)


def refuse_torch_layouts(value: Any, what: str) -> None:
    """A torch sparse tensor has no strides: slicing it into minibatches and
    chunks failed deep in torch (or worked only for some layouts and sizes).
    Nor has a nested tensor (ragged rows): its first size failed in torch."""
    if compat.is_torch_array(value) and value.is_nested:
        raise TypeError(f"{what} is a torch nested tensor; xpnet takes a rectangular tensor of rows: pass "
                        f"torch.cat({what}.unbind()) for pieces of equal width, or pad them")  # fmt: skip
    layout = getattr(value, "layout", None)
    if compat.is_torch_array(value) and str(layout) != "torch.strided":
        raise TypeError(f"{what} is a torch sparse tensor ({layout}); xpnet takes dense tensors: pass "
                        f"{what}.to_dense() (on the numpy backend a SciPy sparse matrix trains as it is)")  # fmt: skip


def _kept_kind(backend: Backend, host: np.ndarray, fits: Any) -> np.ndarray:
    """A host array whose kind is kept (``dtype=None``: class labels stay
    integers) in a dtype every backend holds and compares: bools and unsigned
    integers as int64 (torch compares no uint16/uint32; array-api-strict no
    bools), floats as ``fits`` (their range was checked against it; float16
    or float64 would not land on every device), and int64 beyond int32 on
    JAX in its 32-bit mode, which would wrap them silently, as floats."""
    if host.dtype.kind == "u" and host.dtype.itemsize == 8 and host.size and int(host.max()) > np.iinfo(np.int64).max:
        host = host.astype(np.float64)
    elif host.dtype.kind in "bu":
        host = host.astype(np.int64)
    index = np.dtype(str(index_dtype(backend.xp)).rsplit(".", 1)[-1])  # torch.int64, array_api_strict.int64
    if host.dtype.kind == "i" and index.itemsize < host.dtype.itemsize:
        small = np.iinfo(np.int32)
        if host.size and (int(host.min()) < small.min or int(host.max()) > small.max):
            host = host.astype(np.float64)
    if host.dtype.kind == "f" and (fits is not None or host.dtype not in (np.float32, np.float64)):
        with quiet_float_errors():  # the range was checked against fits
            host = host.astype(np.float64 if fits is None else _host_dtype(backend, fits), copy=False)
    return host


def _in_movable_dtype(backend: Backend, value: Any, fits: Any) -> Any:
    """A float device array that the backend's device cannot hold (a float64
    array of array-api-strict's CPU device, bound for its ``no_float64``
    device) as ``fits`` before it moves; an overflow is inf, which the
    caller's finite checks report. Others move as they are, so that an
    overflow is named as such."""
    xp = compat.array_namespace(value)
    if fits is None or not xp.isdtype(value.dtype, "real floating"):
        return value
    try:
        backend.dtype(value.dtype)
        return value
    except ValueError:
        return xp.astype(value, getattr(xp, dtype_name(fits)))


def _comparable(backend: Backend, out: Any) -> Any:
    """A device array of kept kind that the namespace can compare and index:
    bools and unsigned integers as its default integer dtype (see
    :func:`_kept_kind`)."""
    xp = backend.xp
    if xp.isdtype(out.dtype, "bool") or xp.isdtype(out.dtype, "unsigned integer"):
        return xp.astype(out, index_dtype(xp))
    return out


def _pandas_numbers(value: Any) -> np.ndarray | None:
    """A pandas Series or DataFrame of numbers as float64 (NaN where missing),
    or None: nullable columns (``Float64``, ``Int64``, ``boolean``, Arrow's)
    and bool columns beside number columns are numbers (0/1 for bools, as
    scikit-learn reads them), though ``numpy.asarray`` makes Python objects
    of them."""
    if type(value).__module__.split(".")[0] != "pandas" or not hasattr(value, "to_numpy"):
        return None
    import pandas as pd

    dtypes = list(value.dtypes) if hasattr(value, "columns") else [value.dtype]
    if not dtypes or not all(pd.api.types.is_numeric_dtype(d) or pd.api.types.is_bool_dtype(d) for d in dtypes):
        return None
    if all(isinstance(d, np.dtype) for d in dtypes) and len({d.kind == "b" for d in dtypes}) == 1:
        return None  # plain NumPy columns, all bool or none: numpy.asarray keeps their dtype
    return value.to_numpy(dtype=np.float64, na_value=np.nan)


def _columns_not_numbers(value: Any) -> str:
    """For a pandas DataFrame, which of its columns are not numbers (a
    category, strings, dates), with their dtypes: "Python objects" alone
    does not say which column to encode."""
    if type(value).__module__.split(".")[0] != "pandas" or not hasattr(value, "columns"):
        return ""
    import pandas as pd

    bad = [f"{name!r} ({d})" for name, d in value.dtypes.items()
           if not (pd.api.types.is_numeric_dtype(d) or pd.api.types.is_bool_dtype(d))]  # fmt: skip
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return f" in the columns {', '.join(bad[:5])}{more}: encode them as numbers (one-hot for categories)" if bad else ""


def _host_dtype(backend: Backend, dtype: Any) -> np.dtype:
    """NumPy's ``dtype``, refused as the backend refuses it (float64 on JAX needs its 64-bit mode)."""
    backend.dtype(dtype)
    return np.dtype(dtype_name(dtype))


def _refuse_overflow(host: np.ndarray, dtype: Any, what: str) -> None:
    """Finite host floats beyond ``dtype``'s range would become ``inf`` in the
    cast (and be reported as infinite, after a NumPy warning): say so."""
    if dtype is None or host.dtype.kind != "f":
        return
    target = np.dtype(str(dtype).rsplit(".", 1)[-1])
    if target.kind != "f" or host.dtype.itemsize <= target.itemsize:
        return
    if _finite_beyond(host, float(np.finfo(target).max)):
        raise ValueError(_overflow_message(what, target.name))


def _finite_beyond(host: np.ndarray, limit: float) -> bool:
    """Whether a finite value of ``host`` is beyond ``+-limit``, without a
    temporary of ``host``'s size (``abs(X)`` of a float64 table cost 1.25x
    its memory): the extremes first (NaN ignored), then, only when one is
    beyond (an inf, or a value the cast refuses), the exact test row block
    by row block."""
    if host.size == 0:
        return False
    with np.errstate(invalid="ignore"):
        if -limit <= np.fmin.reduce(host, axis=None) and np.fmax.reduce(host, axis=None) <= limit:
            return False
        rows = np.atleast_1d(host)
        step = max(1, (1 << 16) // max(1, rows[0].size))
        blocks = (rows[i : i + step] for i in range(0, len(rows), step))
        return any(bool(np.any(np.isfinite(b) & (np.abs(b) > limit))) for b in blocks)


def _overflow_message(what: str, dtype: str) -> str:
    limit = float(np.finfo(dtype).max)
    return (
        f"{what} has values beyond the {dtype} range (largest magnitude {limit:.4g}), which would become inf; "
        f"scale them down{_WIDER.get(dtype, '')}"
    )


#: The wider dtype an overflow message suggests (float64 has none).
_WIDER = {"float32": " or use dtype='float64'"}


def checked_param(backend: Backend, value: Any, dtype: str, shape: tuple[int, ...], what: str,
                  nonnegative: bool = False) -> Any:  # fmt: skip
    """A user-given parameter (or buffer) as a private copy on ``backend`` in ``dtype``.

    Refuses a wrong shape (it would broadcast silently in ``X @ W + b``), NaN,
    infinity, finite values beyond the dtype's range (``1e39`` would
    become ``inf`` in float32) and, if ``nonnegative`` (a variance), negative
    values, saying which. The value checks cost one transfer."""
    refuse_traced(f"Setting {what}", value)
    if isinstance(value, np.ndarray | np.generic | list | tuple | float):  # host data: its range, before any cast
        host = np.asarray(value) if not isinstance(value, list | tuple) else _host_floats(value)
        if host is not None and host.dtype.kind == "f":
            _refuse_overflow(host, dtype, what)  # JAX without 64-bit mode casts float64 on the way in
    raw = as_numeric(backend, value, None, what, fits=dtype)
    if tuple(raw.shape) != shape:
        raise ValueError(f"{what} must have shape {shape}, got {tuple(raw.shape)}")
    with quiet_float_errors():  # an overflowing cast is reported below
        arr = backend.asarray(raw, dtype, copy=True)
    xp = backend.xp
    checks = DeferredChecks(backend)
    if xp.isdtype(raw.dtype, "real floating"):
        checks.add(xp.any(xp.isnan(raw)), f"{what} contains NaN; a parameter must be a finite number")
        checks.add(xp.any(xp.isinf(raw)), f"{what} contains inf (infinite values); a parameter must be finite")
    checks.add(xp.any(xp.isinf(arr)), _overflow_message(what, dtype))
    if nonnegative:
        checks.add(xp.any(arr < 0), f"{what} holds negative values; a variance is never negative")
    checks.run()
    return arr


def _host_floats(value: Any) -> np.ndarray | None:
    """Nested lists of numbers as a float64 array (``None`` for anything
    else: :func:`as_numeric` says what is wrong with it)."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):  # 10**400: as_numeric names it
        return None


def as_features(backend: Backend, X: Any, dtype: str, n_in: int, what: str = "X", host: bool = False) -> Any:
    """``X`` as a 2-D ``(n_samples, n_in)`` array of the model's dtype
    (``host``: see :func:`as_numeric`); a SciPy sparse ``X`` on NumPy stays
    sparse, as CSR (:mod:`xpnet._sparse`)."""
    if is_sparse(X):
        host_dtype = None if dtype is None else _host_dtype(backend, dtype)
        X = sparse_features(backend, X, host_dtype, what, check=lambda values: _refuse_overflow(values, dtype, what))
    else:
        X = as_numeric(backend, X, dtype, what, host=host)
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
        raise ValueError(f"{what} has {X.shape[1]} features, but the network expects {n_in} (its n_in)")
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
    host: bool = False,
) -> tuple[Any, bool]:
    """``y`` checked against ``n_samples`` and ``n_out``; value checks queued.

    Returns ``(array, is_labels)``. With ``labels`` (cross-entropy over
    ``n_out > 1`` classes) a 1-D ``y`` or an ``(N, 1)`` column is integer
    class labels, left for :func:`one_hot` once the checks have run;
    otherwise a 1-D ``y`` is one output per sample and becomes a column.
    ``host``: see :func:`as_numeric`."""
    y = as_numeric(backend, y, None, what, fits=dtype, host=host)
    xp = compat.array_namespace(y)
    if y.ndim not in (1, 2):
        raise ValueError(f"{what} must be 1-D or 2-D, got {y.ndim}-D shape {tuple(y.shape)}")
    if y.shape[0] != n_samples:
        raise ValueError(f"{x_what} has {n_samples} samples but {what} has {y.shape[0]}; they must match")
    if labels and y.ndim == 2 and y.shape[1] == 1:  # class labels as an (N, 1) column
        y = xp.reshape(y, (n_samples,))
    if y.ndim == 1 and labels:
        if xp.isdtype(y.dtype, "real floating"):
            checks.finite(y, what)
            checks.add(xp.any(y != xp.round(y)), f"{what}: class labels must be integers, got non-integral values")
        checks.add(
            one_program(_labels_outside(n_out), y)(y),
            f"{what}: class labels must lie in 0..{n_out - 1} for a network with {n_out} outputs",
        )
        return y, True
    if y.ndim == 1:
        if n_out != 1:
            raise ValueError(
                f"{what} has shape {tuple(y.shape)} (one value per sample) but the network has {n_out} outputs; "
                f"give {what} as ({n_samples}, {n_out}), or integer class labels with loss='cross_entropy' (or a "
                "loss whose class_targets is 'classes')"
            )
        y = xp.reshape(y, (n_samples, 1))
    elif y.shape[1] != n_out:
        raise ValueError(f"{what} has {y.shape[1]} columns, but the network has {n_out} outputs")
    with quiet_float_errors():  # an overflow shows as inf in the checks
        if host and isinstance(y, np.ndarray):
            y = y.astype(_host_dtype(backend, dtype), copy=False)
        else:
            y = backend.asarray(y, dtype)
    checks.finite(y, what)
    return y, False


@functools.cache
def _labels_outside(n_out: int) -> Callable[[Any], Any]:
    """A test of labels outside ``0..n_out - 1`` (a 0-d boolean), one per
    ``n_out`` so that on JAX its bounds are constants of the program, not
    Python numbers sent to the device at each eager comparison."""

    def outside(y: Any) -> Any:
        xp = compat.array_namespace(y)
        return xp.any(y < 0) | xp.any(y >= n_out)

    return outside


def queue_loss_targets(checks: DeferredChecks, T: Any, loss: Any, labels: bool, what: str = "y") -> None:
    """Queue what a loss needs of its (non-label) targets: cross-entropy and
    binary cross-entropy take probabilities in [0, 1] (outside, they train
    to negative losses), and a cross-entropy row over several classes must
    not be all zero (it would name no class and teach nothing)."""
    kind, loss_name = getattr(loss, "class_targets", None), loss.name
    if labels or kind is None:
        return
    checks.add(
        one_program(_outside_unit_range, T)(T),
        f"{what}: {loss_name} targets must lie in [0, 1] (one-hot rows or probabilities), got values outside",
    )
    if kind == "classes" and T.ndim == 2 and T.shape[1] > 1:
        checks.add(
            one_program(_any_zero_row, T)(T),
            f"{what}: some rows of the cross_entropy targets are all zero; each row needs its class "
            "(one-hot) or its probabilities (or give integer class labels)",
        )


def _outside_unit_range(T: Any) -> Any:
    """Does ``T`` hold a value outside [0, 1] (a 0-d boolean)?"""
    xp = compat.array_namespace(T)
    return xp.any((T < 0) | (T > 1))


def _any_zero_row(T: Any) -> Any:
    """Is a row of ``T`` all zero (a 0-d boolean)?"""
    xp = compat.array_namespace(T)
    return xp.any(xp.all(T == 0, axis=1))


def queue_output_check(
    checks: DeferredChecks, Y: Any, dtype: str, weights: Callable[[], Mapping[str, Any]] | None = None
) -> None:
    """Queue a ``FloatingPointError`` for outputs that are not finite although
    the inputs are (checked in the same transfer): the computation
    overflowed in ``dtype``, or, found only then, one of the arrays
    ``weights()`` names holds NaN or inf (an array edited in place, past the
    setters' checks). ``weights`` is called on that failure path only."""
    with quiet_float_errors():
        quick = one_program(sum_not_finite, Y)(Y)
    overflow = (f"the {dtype} computation overflowed (a value beyond {float(np.finfo(dtype).max):.4g}); use scaled "
                f"inputs (e.g. standardised features){_WIDER.get(dtype, '')}")  # fmt: skip

    def message() -> str:  # on the failure path only: the weights are checked when they are set
        named = weights() if weights is not None else {}
        flags = checks.to_host([_not_finite(w) for w in named.values()]) if named else []
        bad = next((name for name, flag in zip(named, flags) if flag), None)
        if bad is not None:
            return (f"the network's outputs contain NaN or inf because its {bad} does (an array changed in "
                    "place, past the checks of the weights' setters): set finite weights")
        return f"the network's outputs contain NaN or inf although its inputs are finite: {overflow}"

    checks.add(quick, message, FloatingPointError, exact=lambda: one_program(_not_finite, Y)(Y))


def sum_not_finite(a: Any) -> Any:
    """Is the sum of ``a`` NaN or inf (a 0-d boolean)? True whenever ``a``
    holds one, and in one pass without a temporary, but also when finite
    values overflow the sum: a quick test for :meth:`DeferredChecks.add`."""
    xp = compat.array_namespace(a)
    return ~xp.isfinite(xp.sum(a))


def _not_finite(Y: Any) -> Any:
    """Does ``Y`` hold NaN or inf (a 0-d boolean)?"""
    xp = compat.array_namespace(Y)
    return ~xp.all(xp.isfinite(Y))


def _check_seed(seed: Any) -> None:
    """``fit``'s seed: ``None`` or an int a checkpoint can keep as the run's
    key (``0..2**63-1``); a generator would leave the validation split and
    the checkpoint without one."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None or an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an int in 0..2**63-1, got {seed}")


def check_fit_options(root: bool = True, **options: Any) -> None:
    """``fit``'s options that are not data, checked before anything moves or
    a step runs (so a wrong one never costs an epoch): switches are bools,
    ``interrupt`` has ``is_set()``, ``resume``/``checkpoint`` are non-empty
    paths and the checkpoint's folder exists and is writable, ``metrics`` a sequence of names,
    :class:`~xpnet.Metric` objects or callables. ``root``: this process
    writes the checkpoint (rank 0 of a distributed run)."""
    for name in ("shuffle", "progress", "warm_start"):
        if name in options and not isinstance(options[name], bool | np.bool_):
            if name == "shuffle" and callable(options[name]):
                if options.get("resume") is not None:
                    raise ValueError("a callable shuffle keeps no state to resume from; pass shuffle=True with resume=")
                continue
            also = " or a callable n -> permutation of range(n)" if name == "shuffle" else ""
            raise TypeError(f"{name} must be True or False{also}, got {options[name]!r}")
    _check_seed(options.get("seed"))
    interrupt = options.get("interrupt")
    if interrupt is not None and not callable(getattr(interrupt, "is_set", None)):
        raise TypeError(f"interrupt must have an is_set() method (e.g. a threading.Event), got {interrupt!r}")
    metrics = options.get("metrics", ())
    if isinstance(metrics, str) or not isinstance(metrics, tuple | list) or not all(
        isinstance(m, str | dict) or callable(m) for m in metrics
    ):
        raise TypeError(
            f"metrics must be a tuple or list of names, Metric objects or callables (y_true, y_pred) -> 0-d array, "
            f"such as ('accuracy',), got {metrics!r}"
        )
    if options.get("warm_start") and options.get("resume") is not None:
        raise ValueError("warm_start=True and resume= both give the optimizer state to start from; pass one of them")
    for name in ("resume", "checkpoint"):
        if options.get(name) is not None:
            _path_option(options[name], name)
    if options.get("checkpoint") is not None and root:  # distributed: only rank 0 writes
        _writable_file_path(Path(options["checkpoint"]), "checkpoint")


def check_distributed(distributed: Any) -> None:
    """``fit``'s ``distributed`` is a bool or a ``DataParallel``."""
    if not isinstance(distributed, bool | np.bool_):
        from .distributed import DataParallel

        if not isinstance(distributed, DataParallel):
            raise TypeError(f"distributed must be True, False or a DataParallel, got {distributed!r}")


def _path_option(value: Any, name: str) -> None:
    text = path_text(value, name)
    if not text.strip() or "\0" in text:
        raise ValueError(f"{name} must be a non-empty file path, got {value!r}")


def _writable_file_path(path: Path, name: str) -> None:
    """What the first checkpoint's write would refuse, refused before the
    first epoch: the write follows links, so a device, a symlink loop or a
    link into a missing folder was refused only after an epoch had run."""
    if path.is_dir():
        raise ValueError(f"{name} {path} is a folder; give a file path such as {path / 'run.safetensors'}")
    path = through_links(path)
    if path.exists() and not path.is_file():
        raise ValueError(f"{name} {path} exists and is not a regular file (a device or a FIFO); give a file path")
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{name} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{name} {path}: the folder {folder} is not writable")


def one_hot(backend: Backend, labels: Any, n_classes: int, dtype: str) -> Any:
    """Checked integer labels ``(N,)`` as one-hot rows ``(N, n_classes)``,
    where they are: on the host for host labels (see :func:`as_numeric`)."""
    import array_api_extra as xpx

    if isinstance(labels, np.ndarray):
        xp, dtype = compat.array_namespace(labels), _host_dtype(backend, dtype)
    else:
        xp, dtype = backend.xp, backend.dtype(dtype)
    if not xp.isdtype(labels.dtype, "integral"):
        labels = xp.astype(labels, index_dtype(xp))
    return xpx.one_hot(labels, n_classes, dtype=dtype, xp=xp)


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


def true_or_false(value: Any, what: str) -> bool:
    """A bool (or NumPy's), refused otherwise: ``bool("no")`` is True."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return bool(value)


class DeferredChecks:
    """Device-side value checks, fetched to the host together in one transfer."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._flags: list[Any] = []
        self._messages: list[str] = []

    def add(self, failed: Any, message: str, error: type[Exception] = ValueError, exact: Any = None) -> None:
        """Queue a 0-d boolean array (on the device, or a host NumPy one) that
        is true when the check failed; ``run`` then raises ``error(message)``.
        ``exact``: ``failed`` is a quick test that may raise a false alarm
        (a sum that overflowed), and ``exact()`` gives the exact flag; it is
        computed (one more transfer) only when the quick test fails."""
        self._flags.append(failed)
        self._messages.append((error, message, exact))

    def finite(self, a: Any, what: str) -> None:
        """Queue the NaN and inf checks of ``a``, computed where it is: one
        sum over ``a`` (NaN and inf always reach it), the exact tests only
        if it is not finite (1M x 50 float32 on torch's CPU: 6 ms against
        230 ms for isnan, isinf and their two reductions)."""
        if is_sparse(a):  # its stored values (the rest are zeros)
            a = a.data
        xp = compat.array_namespace(a)
        if not xp.isdtype(a.dtype, "real floating"):
            return
        beyond = ", or values beyond float32's range that became inf in float32: use dtype='float64'"
        nan, inf = (f"{what} contains NaN; remove or impute those values first",
                    f"{what} contains inf (infinite values{beyond if xp.finfo(a.dtype).bits == 32 else ''}); "
                    "remove or clip them first")  # fmt: skip
        if xp.finfo(a.dtype).bits < 32:  # a half-precision sum overflows early: the exact tests at once
            self.add(xp.any(xp.isnan(a)), nan)
            self.add(xp.any(xp.isinf(a)), inf)
            return
        with quiet_float_errors():  # an overflowing sum is a false alarm the exact tests clear
            quick = one_program(sum_not_finite, a)(a)
        self.add(quick, nan, exact=lambda: xp.any(xp.isnan(a)))
        self.add(quick, inf, exact=lambda: xp.any(xp.isinf(a)))

    def run(self) -> None:
        """One device-to-host transfer (none for checks made on the host);
        raise ``ValueError`` for the first failure."""
        if not self._flags:
            return
        flags = self._flags
        on_device = [i for i, f in enumerate(flags) if not isinstance(f, np.ndarray | np.generic | bool)]
        failed = list(flags)
        if on_device:  # each array once (``finite`` queues one quick flag for two messages)
            unique = {id(flags[i]): flags[i] for i in on_device}
            fetched = dict(zip(unique, self._backend.to_host(list(unique.values()))))
            for i in on_device:
                failed[i] = fetched[id(flags[i])]
        self._flags, messages = [], self._messages
        self._messages = []
        for bad, (error, message, exact) in zip(failed, messages):
            if bad and (exact is None or self._confirmed(exact)):
                raise error(message() if callable(message) else message)

    def to_host(self, flags: list[Any]) -> list[bool]:
        """0-d device booleans as Python bools, in one transfer."""
        return [bool(f) for f in self._backend.to_host(flags)]

    def _confirmed(self, exact: Any) -> bool:
        flag = exact()
        return bool(flag if isinstance(flag, np.ndarray | np.generic | bool) else self._backend.to_host([flag])[0])
