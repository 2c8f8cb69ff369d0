"""Metrics reported during ``fit`` on validation data, computed on the device.

A metric is called as ``metric(y_true, y_pred) -> 0-d array`` on targets
already shaped like the outputs (one-hot for classes) and takes its namespace
from them, so ``fit`` fetches every metric in the same transfer as
the losses. Named metrics are :class:`Metric` subclasses registered with
:func:`xpnet.register`; a plain callable of the same signature is accepted
too (it is named after the function).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat as compat
import numpy as np
from array_api_compat import array_namespace

from ._xp import over_count, widest_float
from .registry import component_spec, register, registry_for

__all__ = ["METRICS", "Accuracy", "MeanAbsoluteError", "MeanSquaredError", "Metric", "R2", "get_metric"]


class Metric:
    """Base class: subclasses set ``name`` and define ``__call__(y_true, y_pred)``."""

    name: str = ""
    #: Is a higher value better (an F1 score) or a lower one (an error)?
    #: ``mode="auto"`` of EarlyStopping and ReduceLROnPlateau reads it from
    #: the metric object ``fit`` is given (registered or not; inherited: an
    #: error rate derived from Accuracy says ``False``); ``None``: maximise
    #: accuracies, minimise the rest.
    greater_is_better: bool | None = None
    #: Is it the mean over rows of a figure per row (an error)? Then ``fit``
    #: averages it over chunks of the validation rows, which never hold all
    #: their outputs at once. Read from the class itself, never inherited: a
    #: subclass that changes ``__call__`` must say so again.
    rows_mean: bool = False

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(y_true, y_pred)")

    def config(self) -> dict[str, Any]:
        """Settings as plain values: ``type(self)(**config)`` rebuilds it."""
        return {}

    def __repr__(self) -> str:
        return f"Metric({component_spec(self)!r})"


#: The registry of metrics: name -> class (see :func:`xpnet.register`).
METRICS = registry_for("metric", Metric)


class _RowsMetric(Metric):
    """A built-in metric of ``(N, outputs)`` targets and outputs, brought to
    that shape and dtype by :func:`_rows_of_outputs` first."""

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        texts = _texts(y_true), _texts(y_pred)
        if texts[0] is not None or texts[1] is not None:  # labels such as 'cat': no library's arrays hold them
            return self._of_texts(y_true, y_pred, texts)
        y_true, y_pred = _together(y_true, y_pred, self.name)
        xp = array_namespace(y_true, y_pred)
        if xp.isdtype(y_pred.dtype, "real floating"):
            return self._of_rows(xp, *_rows_of_outputs(xp, y_true, y_pred, self.name))
        # Integer or bool predictions are labels (a classifier's predict), not outputs: compared as numbers,
        # in floats (torch has no mean of integers, nor array-api-strict a division of them).
        floating = xp.isdtype(y_true.dtype, "real floating")
        y_pred = xp.astype(y_pred, y_true.dtype if floating else widest_float(xp, y_pred))
        return self._of_labels(xp, *_rows_of_outputs(xp, y_true, y_pred, self.name))

    def _of_rows(self, xp: Any, y_true: Any, y_pred: Any) -> Any:
        raise NotImplementedError

    def _of_labels(self, xp: Any, y_true: Any, y_pred: Any) -> Any:
        """The metric of predicted labels (as floats): the same as of outputs but for accuracy."""
        return self._of_rows(xp, y_true, y_pred)

    def _of_texts(self, y_true: Any, y_pred: Any, texts: tuple[Any, Any]) -> Any:
        """The metric where ``y_true`` or ``y_pred`` holds text labels
        (``texts``: either as a host array, or ``None``): refused but by accuracy."""
        found = _first_text(*[t for t in texts if t is not None])
        raise TypeError(f"{self.name} needs numbers, got text labels (such as {found!r}); accuracy compares text "
                        "labels")


@register
class Accuracy(_RowsMetric):
    """Fraction of rows classified right: argmax over several outputs that
    are class probabilities (rows summing to 1: softmax) for targets of one
    class a row, else a 0.5 threshold on each output, a row right when all
    its outputs are (a single sigmoid output; several, multi-label, as
    scikit-learn's ``accuracy_score``: multi-hot targets are multi-label
    even where each predicted row holds one 1.0). Integer or bool
    predictions are labels, right where equal to the targets. Decided on
    the device, so it compiles."""

    name = "accuracy"
    greater_is_better = True
    #: Namespace operations only: ``fit`` may compile it into its epoch report (a subclass must say so again).
    compilable = True

    def _of_rows(self, xp: Any, y_true: Any, y_pred: Any) -> Any:
        each = xp.all((y_pred > 0.5) == (y_true > 0.5), axis=-1)
        if y_pred.shape[-1] == 1:
            return _mean(xp, xp.astype(each, y_pred.dtype))
        top = xp.argmax(y_pred, axis=-1) == xp.argmax(y_true, axis=-1)
        probabilities = xp.all(xp.abs(xp.sum(y_pred, axis=-1) - 1.0) < 1e-3)  # softmax rows; sigmoid ones rarely
        one_class = xp.all(xp.abs(xp.sum(y_true, axis=-1) - 1.0) < 1e-3)  # multi-hot targets are multi-label
        return _mean(xp, xp.astype(xp.where(xp.logical_and(probabilities, one_class), top, each), y_pred.dtype))

    def _of_labels(self, xp: Any, y_true: Any, y_pred: Any) -> Any:
        # labels match or not: a 0.5 threshold would call every label above 0 the same class
        return _mean(xp, xp.astype(xp.all(y_pred == y_true, axis=-1), y_pred.dtype))

    def _of_texts(self, y_true: Any, y_pred: Any, texts: tuple[Any, Any]) -> Any:
        # text labels ('cat', a classifier's classes_), on the host as scikit-learn's accuracy_score compares them
        y_true, y_pred = _text_rows(y_true, y_pred, texts, self.name)
        return np.float64(np.count_nonzero(np.all(y_true == y_pred, axis=-1)) / y_true.shape[0])


@register(aliases=("mse",))
class MeanSquaredError(_RowsMetric):
    """The mean over rows and outputs of ``(y_pred - y_true)**2``, as
    scikit-learn's ``mean_squared_error`` (unweighted, outputs averaged)."""

    name = "mean_squared_error"
    greater_is_better = False
    compilable = True
    rows_mean = True

    def _of_rows(self, xp: Any, y_true: Any, y_pred: Any) -> Any:
        return _mean(xp, (y_pred - y_true) ** 2)


@register(aliases=("mae",))
class MeanAbsoluteError(_RowsMetric):
    """The mean over rows and outputs of ``|y_pred - y_true|``, as
    scikit-learn's ``mean_absolute_error``."""

    name = "mean_absolute_error"
    greater_is_better = False
    compilable = True
    rows_mean = True

    def _of_rows(self, xp: Any, y_true: Any, y_pred: Any) -> Any:
        return _mean(xp, xp.abs(y_pred - y_true))


@register(aliases=("r2_score",))
class R2(_RowsMetric):
    """The coefficient of determination per output, averaged over outputs,
    as scikit-learn's ``r2_score``: 1 is a perfect fit, 0 predicting the
    mean. An output whose targets are constant scores 1 when predicted
    exactly, else 0 (scikit-learn's ``force_finite``), never a NaN that
    would stop early stopping from deciding."""

    name = "r2"
    greater_is_better = True
    compilable = True

    def _of_rows(self, xp: Any, y_true: Any, y_pred: Any) -> Any:
        residual = xp.sum((y_true - y_pred) ** 2, axis=0)
        total = xp.sum((y_true - xp.mean(y_true, axis=0)) ** 2, axis=0)
        varies = total > 0
        explained = 1.0 - residual / xp.where(varies, total, xp.ones_like(total))
        exact = xp.astype(residual == 0, y_pred.dtype)
        return _mean(xp, xp.where(varies, explained, exact))


def _together(y_true: Any, y_pred: Any, metric: str) -> tuple[Any, Any]:
    """Both as arrays of one library: host data (a list, a NumPy array)
    beside another library's array moves to that array's device, as
    ``predict`` takes host ``X`` (``metric(y, net.predict(X))``); arrays of
    two other libraries are refused, naming them: moving one would go
    through the host at every call."""
    host_true, host_pred = _is_host(y_true), _is_host(y_pred)
    if host_true and host_pred:
        return _host_array(y_true), _host_array(y_pred)
    if host_true or host_pred:
        on = y_pred if host_true else y_true
        host = _in_dtype_of(np.array(y_true if host_true else y_pred), on)  # a copy: pandas' read-only view warns
        moved = array_namespace(on).asarray(host, device=compat.device(on))
        return (moved, y_pred) if host_true else (y_true, moved)
    libraries = [_library(y_true), _library(y_pred)]
    if libraries[0] != libraries[1]:
        raise TypeError(f"{metric}: y_true is a {libraries[0]} array and y_pred a{'n' * (libraries[1][0] in 'aeiou')} "
                        f"{libraries[1]} one; pass both of one library (the targets where the outputs are)")
    return y_true, y_pred


def _texts(value: Any) -> np.ndarray | None:
    """Host data of text labels (strings, bytes, Python objects among which
    a string: a categorical Series of words) as a NumPy array; ``None`` for
    anything else (numbers, another library's array)."""
    if not _is_host(value) or isinstance(value, np.generic):
        return None
    try:
        host = _host_array(value)
    except ValueError:  # ragged: the numbers' path names it
        return None
    if host.dtype.kind in "US" or (host.dtype.kind == "O" and any(isinstance(v, str | bytes) for v in host.flat)):
        return host.astype(object)
    return None


def _text_rows(y_true: Any, y_pred: Any, texts: tuple[Any, Any], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Text labels ``y_true`` and ``y_pred`` as ``(N, outputs)`` host object
    arrays of one shape; text beside numbers (a network's outputs, class
    indices) is refused, naming both."""
    if texts[0] is None or texts[1] is None:
        numbers, name = (y_pred, "y_pred") if texts[1] is None else (y_true, "y_true")
        kind = f"{_library(numbers)} array of dtype {numbers.dtype}" if hasattr(numbers, "dtype") else "numbers"
        found = _first_text(*[t for t in texts if t is not None])
        raise TypeError(f"{metric}: {'y_true' if name == 'y_pred' else 'y_pred'} holds text labels (such as "
                        f"{found!r}) but {name} is a {kind}; compare labels "
                        "of one kind (a classifier's predict gives its labels; a network's outputs compare with class "
                        "indices 0..K-1, such as numpy.unique(y, return_inverse=True)[1])")  # fmt: skip
    rows = [t.reshape(-1, 1) if t.ndim == 1 else t for t in texts]
    if rows[0].shape != rows[1].shape or rows[0].ndim != 2:
        raise ValueError(f"{metric} compares y_true and y_pred of the same shape, got {texts[0].shape} and "
                         f"{texts[1].shape}")  # fmt: skip
    if rows[0].shape[0] == 0:
        raise ValueError(f"{metric}: y_pred of shape {texts[1].shape} hold no row; a metric needs at least one")
    return rows[0], rows[1]


def _first_text(*hosts: np.ndarray) -> Any:
    return next((v for h in hosts for v in h.flat if isinstance(v, str | bytes)), None)


def _is_host(value: Any) -> bool:
    """NumPy's arrays, and data that is no array of any library (a list, a pandas Series)."""
    return isinstance(value, np.ndarray | np.generic) or not compat.is_array_api_obj(value)


def _in_dtype_of(host: np.ndarray, on: Any) -> np.ndarray:
    """Host floats in the float dtype they are compared in anyway, that of
    ``on`` (float32 for a narrower one: :func:`_rows_of_outputs`; for
    labels, the widest float their device holds): a device
    without float64 (torch's MPS, array-api-strict's ``no_float64``) takes
    no NumPy float64 array."""
    xp = array_namespace(on)
    if host.dtype.kind != "f":
        return host
    if not xp.isdtype(on.dtype, "real floating"):  # predicted labels: compared in the widest float their device holds
        return host.astype(str(widest_float(xp, on)).rsplit(".", 1)[-1])
    name = str(on.dtype).rsplit(".", 1)[-1]
    return host.astype(name if name in ("float32", "float64") else "float32")


def _host_array(value: Any) -> Any:
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def _library(value: Any) -> str:
    return type(value).__module__.split(".", 1)[0].replace("jaxlib", "jax")


def _mean(xp: Any, values: Any) -> Any:
    """The mean as scikit-learn computes it, the sum divided by the count:
    JAX's ``mean`` multiplies by the count's reciprocal, one unit in the
    last place off (34 of 38 right: 0.894736842105263), as torch on CUDA
    does for a host divisor (:func:`~xpnet._xp.over_count`)."""
    return over_count(xp, xp.sum(values), math.prod(values.shape))


def _rows_of_outputs(xp: Any, y_true: Any, y_pred: Any, metric: str) -> tuple[Any, Any]:
    """Both as ``(N, outputs)``: a vector is N rows of one output (as
    scikit-learn reads it), class labels beside one column per class become
    one-hot. Any other mismatch is named: broadcasting ``(N,)`` against
    ``(N, 1)`` compared every row with every row, silently. Outputs
    narrower than float32 (float16, bfloat16) are compared in float32."""
    if y_pred.ndim and y_pred.shape[0] == 0:  # a mean over nothing: NaN, and r2 a perfect 1.0
        raise ValueError(f"{metric}: y_pred of shape {tuple(y_pred.shape)} hold no row; a metric needs at least one")
    y_pred = xp.reshape(y_pred, (-1, 1)) if y_pred.ndim == 1 else y_pred
    y_true = xp.reshape(y_true, (-1, 1)) if y_true.ndim == 1 else y_true
    if xp.isdtype(y_pred.dtype, "real floating") and xp.finfo(y_pred.dtype).bits < 32:
        y_pred = xp.astype(y_pred, xp.float32)  # float16's sum (and count) overflow past 65504 rows: NaN
    if xp.isdtype(y_pred.dtype, "real floating") and y_true.dtype != y_pred.dtype:  # integer targets: no promotion
        y_true = xp.astype(y_true, y_pred.dtype)
    if y_true.shape == y_pred.shape:
        return y_true, y_pred
    if y_pred.ndim == 2 and y_true.shape == (y_pred.shape[0], 1) and y_pred.shape[1] > 1:
        classes = xp.arange(y_pred.shape[1], dtype=y_true.dtype, device=compat.device(y_true))
        return xp.astype(y_true == classes, y_pred.dtype), y_pred
    raise ValueError(f"{metric} compares y_true and y_pred of the same shape (or class labels beside one column "
                     f"per class), got {tuple(y_true.shape)} and {tuple(y_pred.shape)}")  # fmt: skip


class _FunctionMetric(Metric):
    """A user's plain callable ``(y_true, y_pred) -> 0-d array``; a
    ``greater_is_better`` it declares (``f.greater_is_better = True``) is
    the metric's, as a :class:`Metric`'s would be."""

    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)
        declared = getattr(fn, "greater_is_better", None)
        if isinstance(declared, bool):
            self.greater_is_better = declared

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        return self.fn(y_true, y_pred)


def get_metric(spec: str | dict | Metric | Callable[[Any, Any], Any]) -> Metric:
    """A metric from a name, a spec, a :class:`Metric`, or a callable."""
    if callable(spec) and not isinstance(spec, Metric | type):
        return _FunctionMetric(spec)
    if isinstance(spec, Metric | str | dict) or (isinstance(spec, type) and issubclass(spec, Metric)):
        return METRICS.resolve(spec)
    raise TypeError(f"a metric is a name, a Metric or a callable (y_true, y_pred) -> 0-d array, got {type(spec).__name__}")
