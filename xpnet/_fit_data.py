"""fit's data: the rows held out by ``validation_split`` and the per-row
weights of ``sample_weight`` and ``class_weight``.

The weights are converted with the inputs and checked in the same single
transfer (length, finite, not negative, not all zero; on the host for host
weights). The held-out rows are drawn on the host from the run's key
(``numpy.random.default_rng``), stratified by class for class targets, and
taken where the arrays are: host data is split on the host and then moved. Class weights are computed on the device from the targets'
(one-hot) rows: ``"balanced"`` gives each class present ``n_rows /
(n_classes * count)``, as scikit-learn's ``compute_class_weight``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

from ._backend import to_numpy
from ._programs import one_program
from ._sparse import is_sparse
from .preprocessing import split_indices
from .validation import as_numeric

__all__ = ["check_class_weight", "check_validation_split", "class_row_weights", "queue_sample_weight", "split_rows"]

def check_validation_split(share: Any, validation_data: Any) -> float | None:
    if share is None:
        return None
    if isinstance(share, bool) or not isinstance(share, numbers.Real) or not 0.0 < share < 1.0:
        raise ValueError(f"validation_split must be a number in (0, 1) (the share of rows held out), got {share!r}")
    if validation_data is not None:
        raise ValueError("pass validation_data or validation_split, not both")
    return float(share)


def check_class_weight(class_weight: Any, loss: Any, n_out: int) -> Any:
    """``None``, ``"balanced"`` or ``{label: weight}`` with labels of this
    network's classes (0..n_out-1; 0 and 1 for one sigmoid output)."""
    if class_weight is None:
        return None
    if loss.class_targets is None:
        raise ValueError(
            f"class_weight needs class targets (a loss such as 'cross_entropy' or 'binary_cross_entropy', whose "
            f"class_targets says so), got loss {loss.name!r}; use sample_weight to weigh rows of other targets"
        )
    if loss.class_targets == "binary" and n_out > 1:
        raise ValueError(
            f"class_weight weighs each row by its one class, but {loss.name!r} on {n_out} outputs takes a 0/1 "
            "target per output (multi-label): a row may have none or several; use sample_weight to weigh rows"
        )
    if isinstance(class_weight, str) and class_weight == "balanced":  # a Series or an array compares elementwise
        return "balanced"
    if not isinstance(class_weight, dict):
        kind = type(class_weight).__name__
        got = repr(class_weight) if isinstance(class_weight, str) else f"an object of type {kind}"
        hint = " (pass its .to_dict())" if hasattr(class_weight, "to_dict") else ""
        raise TypeError(f"class_weight must be None, 'balanced' or a dict {{label: weight}}, got {got}{hint}")
    n_classes = 2 if n_out == 1 else n_out
    out = {}
    for label, w in class_weight.items():
        label = _class_index(label, n_classes)
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not (math.isfinite(w) and w >= 0):
            raise ValueError(f"class_weight: the weight of class {label} must be a finite number >= 0, got {w!r}")
        out[label] = float(w)
    return out


def _class_index(label: Any, n_classes: int) -> int:
    """A ``class_weight`` key as the class index it names: an int, or a
    whole float (float labels, as ``dict(zip(np.unique(y), weights))`` gives
    for ``xpnet.datasets.xor()``'s 0.0 and 1.0: they train as classes 0, 1)."""
    whole = (not isinstance(label, bool) and isinstance(label, numbers.Real) and math.isfinite(label)
             and float(label).is_integer())  # fmt: skip
    if not whole or not 0 <= label < n_classes:
        raise ValueError(f"class_weight: label {label!r} is not a class of this network (the integers "
                         f"0..{n_classes - 1})")  # fmt: skip
    return int(label)


def queue_sample_weight(backend: Any, w: Any, n: int, dtype: str, checks: Any) -> Any:
    """``sample_weight`` as ``(n,)`` of ``dtype``, its value checks queued on
    ``checks`` (the inputs' transfer); host weights stay on the host (checked
    there) for the caller to move."""
    w = as_numeric(backend, _holdable(backend, w, dtype), None, "sample_weight", host=True)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must hold one weight per row of X ({n}), got shape {tuple(w.shape)}")
    xp = array_namespace(w)
    if isinstance(w, np.ndarray):  # scaled in float64 first: weights of 1e-50 are not all zero in float32 then
        w = scaled_to_one(xp, w.astype(np.float64)).astype(np.dtype(dtype))
    else:  # device floats scaled in their own dtype first, as host ones: float64 1e300 is no inf in float32 then
        w = w if xp.isdtype(w.dtype, "real floating") else xp.astype(w, backend.dtype(dtype))
        w = xp.astype(one_program(_scaled_to_one, w)(w), backend.dtype(dtype))
    checks.finite(w, "sample_weight")
    checks.add(one_program(_any_negative, w)(w), "sample_weight must not hold negative weights")
    checks.add(one_program(_all_zero, w)(w), "sample_weight: every weight is zero, so nothing would be learned")
    return w


def _holdable(backend: Any, w: Any, dtype: str) -> Any:
    """Device float weights in a dtype the network's device cannot hold
    (float64 bound for array-api-strict's ``no_float64``, as torch's MPS)
    scaled where they are, then cast to ``dtype``: moved as they were, they
    failed in the library's words, where X and y of that dtype train."""
    if isinstance(w, np.ndarray | np.generic) or not is_array_api_obj(w):
        return w
    xp = array_namespace(w)
    if not xp.isdtype(w.dtype, "real floating"):
        return w
    try:
        backend.dtype(w.dtype)
        return w
    except ValueError:
        return xp.astype(one_program(_scaled_to_one, w)(w), getattr(xp, dtype))


# As programs on JAX (one_program): there an eager operation sends each Python number to the device.
def _scaled_to_one(w: Any) -> Any:
    return scaled_to_one(array_namespace(w), w)


def _any_negative(w: Any) -> Any:
    return array_namespace(w).any(w < 0)


def _all_zero(w: Any) -> Any:
    return array_namespace(w).all(w == 0)


def scaled_to_one(xp: Any, w: Any) -> Any:
    """Weights times the power of two that brings the largest into [1, 2),
    where they are (no transfer): exact, and what a batch divides by (the
    sum of its weights) can then neither overflow nor be subnormal, in
    float32 too (constant weights of 1e37 or 1e-40 changed nothing in exact
    arithmetic, but trained on 0 or NaN). The power of two goes in two
    halves, each representable in float32 even for subnormal weights.
    Weights that the checks refuse (none above 0, not finite) are left as
    they are."""
    top = xp.max(w)
    usable = (top > 0) & (top < math.inf)
    e = xp.where(usable, -xp.floor(xp.log2(xp.where(usable, top, xp.ones_like(top)))), xp.zeros_like(top))
    half = xp.floor(e / 2)
    return w * (2.0**half) * (2.0 ** (e - half))


def split_rows(
    backend: Any, arrays: list[Any], share: float, key: int, strata: np.ndarray | None
) -> tuple[list[Any], list[Any]]:
    """``arrays`` (rows first; ``None`` passes through) split into the kept
    rows and the ``share`` held out, drawn from ``key``, stratified by
    ``strata`` (host labels) when given; each where it is (host NumPy
    arrays on the host, the backend's on its device)."""
    n = arrays[0].shape[0]
    keep, held = split_indices(n, share, key, strata)
    if len(held) == 0 or len(keep) == 0:
        raise ValueError(
            f"validation_split={share} of {n} rows leaves {len(keep)} to train on and {len(held)} to validate; "
            "each needs at least one"
        )
    xp = backend.xp
    on_host = lambda a: isinstance(a, np.ndarray) or is_sparse(a)  # noqa: E731
    on_device = [a for a in arrays if a is not None and not on_host(a)]
    keep_d, held_d = (backend.asarray(keep), backend.asarray(held)) if on_device else (None, None)

    def rows(a: Any, host: np.ndarray, device: Any) -> Any:
        if a is None:
            return None
        return a[host] if on_host(a) else xp.take(a, device, axis=0)

    return [rows(a, keep, keep_d) for a in arrays], [rows(a, held, held_d) for a in arrays]


def strata(y: Any, T: Any, loss: Any) -> np.ndarray | None:
    """Host class labels to stratify a split by, for class targets (integer
    labels, one-hot rows, a 0/1 column); ``None`` for other targets. Host
    inputs cost nothing; a device ``y`` is fetched (one transfer)."""
    if loss.class_targets is None:
        return None
    host = np.asarray(y) if isinstance(y, np.ndarray | list | tuple) else to_numpy(T)
    if host.ndim == 2 and host.shape[1] > 1:
        return np.argmax(host, axis=1)
    host = host.reshape(-1)
    return (host > 0.5).astype(np.int64) if loss.class_targets == "binary" else host.astype(np.int64)


def class_row_weights(backend: Any, T: Any, class_weight: Any) -> Any:
    """Each row's class weight, ``(N,)`` on the device, from targets ``T``
    (one-hot or probability rows; a single 0/1 column is two classes): one
    program on JAX, whose eager operations send each Python number."""
    if class_weight == "balanced":
        return one_program(_balanced_row_weights, T)(T)
    n_classes = 2 if T.shape[1] == 1 else T.shape[1]
    host = np.array([class_weight.get(k, 1.0) for k in range(n_classes)])
    host = scaled_to_one(array_namespace(host), host)  # before the cast: 1e39 is beyond float32
    return one_program(_row_weights, T)(T, backend.asarray(host, T.dtype))


def _class_columns(T: Any) -> Any:
    xp = array_namespace(T)
    return xp.concat([1.0 - T, T], axis=1) if T.shape[1] == 1 else T


def _row_weights(T: Any, cw: Any) -> Any:
    return array_namespace(T).matmul(_class_columns(T), cw)  # through the namespace: its precision (JAX: full float32)


def _balanced_row_weights(T: Any) -> Any:
    """scikit-learn's "balanced": ``N / (classes present * count)``, 0 for an absent class."""
    xp, P = array_namespace(T), _class_columns(T)
    counts = xp.sum(P, axis=0)
    present = counts > 0
    n_present = xp.sum(xp.astype(present, T.dtype))
    safe = xp.where(present, counts, xp.ones_like(counts))
    return _row_weights(T, xp.where(present, T.shape[0] / (n_present * safe), xp.zeros_like(counts)))


def _some_positive(w: Any) -> Any:
    return array_namespace(w).any(w > 0)


def check_some_weight(w: Any, why: str | None = None) -> None:
    """Some training row must keep a weight (one transfer, only where the
    weights passed their own check and may still zero every row: a class
    weighed 0, a validation split); else nothing would be learned and the
    loss would read 0. ``why``: what zeroed them (default: class_weight)."""
    if not bool(to_numpy(one_program(_some_positive, w)(w))):  # on JAX one program and an explicit fetch
        why = why or "class_weight (with sample_weight, if given) gives every row a weight of zero"
        hint = ("weigh at least one class that occurs in y above 0" if why.startswith("class_weight") else
                "give more rows a weight, or hold out validation_data of your own")  # fmt: skip
        raise ValueError(f"{why}, so nothing would be learned; {hint}")
