"""Loss functions: value, gradient, and the fused output deltas.

A loss takes its namespace from ``outputs``. Definitions (over all ``N``
samples and ``K`` outputs):

- ``mse``: mean of ``(outputs - expected)**2`` over all elements
- ``sse``: sum of the same
- ``mae``: mean of ``|outputs - expected|`` over all elements (``torch.nn.L1Loss``)
- ``huber``: mean over all elements of ``0.5 d**2`` where ``|d| <= delta``,
  else ``delta (|d| - 0.5 delta)``, ``d = outputs - expected``
  (``torch.nn.HuberLoss``; ``delta`` 1.0 by default)
- ``binary_cross_entropy``: mean over all elements of
  ``-(t log y + (1-t) log(1-y))``, ``y`` clipped into ``[eps, 1-eps]``
- ``cross_entropy``: mean over samples of ``-sum_k t_k log y_k`` (one-hot
  targets, or integer class labels), ``y`` clipped below at ``eps`` (only
  below: ``maximum`` is one fast call where the Array API ``clip`` is a
  Python-level wrapper in array-api-compat, and the gradient stays the exact
  derivative for any ``y``)

``eps = finfo(dtype).eps``. Gradients are exact derivatives of the values
(zero where clipping is active). Sigmoid + binary cross-entropy and softmax +
cross-entropy also offer a *fused* delta, ``dL/dv`` in the ``(y - t)`` form:
it skips the ``1/(y(1-y))`` that a saturated output would blow up or clip to
zero, so such an output still learns.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import array_api_compat as compat
import array_api_extra as xpx

from ._backend import quiet_float_errors
from ._xp import as_float_array, index_dtype
from .records import check_figure
from .registry import component_spec, register, registry_for
from .validation import positive

__all__ = ["LOSSES", "Loss", "get_loss", "loss_fcn"]


class Loss:
    """Base class. Subclasses implement ``_value``/``_gradient`` on targets
    already shaped like the outputs; ``fused_with`` names the output
    activation whose combined delta ``_fused_delta`` gives. A subclass
    inherits no fusion unless it declares ``fused_with`` again, so one that
    changes ``_value`` or ``_gradient`` trains on its own code."""

    name: str = ""
    fused_with: str | None = None
    #: The targets it takes: ``"classes"`` (one output per class; integer
    #: labels or one-hot rows, as cross_entropy), ``"binary"`` (0/1 or a
    #: probability per output, as binary_cross_entropy) or ``None`` (any
    #: numbers). ``fit`` reads it, not the name: labels are one-hot encoded,
    #: targets checked to lie in [0, 1], validation splits stratified and
    #: ``class_weight`` applied for class targets.
    class_targets: str | None = None
    #: "mean" (over samples, or over all elements) or "sum": how a batch's loss
    #: relates to its parts, which data-parallel training needs to split it.
    reduction: str = "mean"

    def value(self, expected: Any, outputs: Any) -> Any:
        """The loss as a 0-d array of the outputs' namespace, device and dtype
        (inf where it overflows, without NumPy's warning, as in ``fit``)."""
        xp, t, y = self._prepare(expected, outputs)
        with quiet_float_errors():
            return xp.asarray(self._value(xp, t, y))  # NumPy reductions give scalars

    def gradient(self, expected: Any, outputs: Any) -> Any:
        """d value / d outputs, shaped like ``outputs``."""
        xp, t, y = self._prepare(expected, outputs)
        with quiet_float_errors():
            return self._gradient(xp, t, y)

    # -- shapes ---------------------------------------------------------------

    def _prepare(self, expected: Any, outputs: Any) -> tuple[Any, Any, Any]:
        if not compat.is_array_api_obj(outputs) and compat.is_array_api_obj(expected):
            _, like = as_float_array(expected)
            xp, y = as_float_array(outputs, like=like)
        else:
            xp, y = as_float_array(outputs)
        if y.ndim and y.shape[0] == 0:  # a mean over nothing: NaN from most losses, ZeroDivisionError from one
            raise ValueError(f"{self.name}: outputs of shape {tuple(y.shape)} hold no sample; a loss needs at least "
                             "one")  # fmt: skip
        return xp, self._targets(xp, expected, y), y

    def _targets(self, xp: Any, expected: Any, y: Any) -> Any:
        """``expected`` as a float array shaped exactly like ``y``.

        Only the unambiguous mismatch is reshaped: one output per sample given
        as ``(N,)`` against ``(N, 1)`` (either way). Anything else would
        broadcast into a silently wrong loss, so it is refused."""
        _, t = as_float_array(expected, like=y)
        if t.dtype != y.dtype:
            t = xp.astype(t, y.dtype)
        if t.shape == y.shape:
            return t
        if _is_column_of(t, y) or _is_column_of(y, t):
            return xp.reshape(t, y.shape)
        raise ValueError(
            f"{self.name}: expected (targets) of shape {tuple(t.shape)} do not match "
            f"outputs of shape {tuple(y.shape)}"
        )

    # -- to be defined ---------------------------------------------------------

    def _value(self, xp: Any, t: Any, y: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define _value(xp, t, y)")

    def _gradient(self, xp: Any, t: Any, y: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define _gradient(xp, t, y)")

    def _fused_delta(self, xp: Any, t: Any, y: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} declares fused_with={self.fused_with!r}, so it must "
                                  "define _fused_delta(xp, t, y)")  # fmt: skip

    def _value_and_delta(self, xp: Any, t: Any, y: Any, fused: bool) -> tuple[Any, Any]:
        """The value and the backward pass's start: ``_fused_delta`` when
        ``fused`` (the output activation pairs with this loss), else
        ``_gradient``. A loss whose two share work (``y - t``) overrides this:
        a training step takes both, and every array operation counts."""
        return self._value(xp, t, y), (self._fused_delta(xp, t, y) if fused else self._gradient(xp, t, y))

    def _for_labels(self) -> Loss:
        """The loss to train with when the targets are one-hot rows made from
        class labels, so that every row sums to exactly 1 (cross-entropy's
        fused delta then needs no row sums); the same loss by default."""
        return self

    def _per_sample(self, xp: Any, t: Any, y: Any) -> Any:
        """The loss of each sample, shape ``(N,)``: the loss is their mean
        (``reduction="mean"``) or sum (``"sum"``). Sample weights need it.
        This default evaluates :meth:`_value` row by row, right for any loss
        that is a sum over samples but slow: a loss of your own may define it
        with one vectorised expression, as the built-ins do."""
        rows = [xp.asarray(self._value(xp, t[i : i + 1, ...], y[i : i + 1, ...])) for i in range(y.shape[0])]
        if rows:
            check_figure(rows[0], f"loss {self.name or type(self).__name__!r}: its _value")  # else (N, 1) broadcasts
        return xp.stack(rows)

    def weighted(self, w: Any) -> Loss:
        """This loss with sample weights ``w`` (shape ``(N,)``, their mean 1
        over the global batch: ``fit`` scales them): ``sum(w_i l_i) / N``, or
        ``sum(w_i l_i)`` for a sum. Its gradient is this loss's, row ``i``
        times ``w_i``, so every loss, fused deltas included, is weighted in
        this one place."""
        return _Weighted(self, w)

    def config(self) -> dict[str, Any]:
        """Settings as plain values (none for most); ``type(self)(**config)`` rebuilds it."""
        return {}

    def __repr__(self) -> str:
        return f"Loss({component_spec(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Loss) and component_spec(other) == component_spec(self)

    def __hash__(self) -> int:
        return hash(self.name)


#: The registry of losses: name -> class (see :func:`xpnet.register`).
LOSSES = registry_for("loss", Loss)


class _Weighted(Loss):
    """A loss with per-sample weights for one batch (see :meth:`Loss.weighted`)."""

    def __init__(self, base: Loss, w: Any) -> None:
        self.base, self.w = base, w
        self.name, self.fused_with, self.reduction = base.name, declared_fusion(base), base.reduction
        self.class_targets, self.wraps = base.class_targets, getattr(base, "wraps", type(base))

    def _value(self, xp: Any, t: Any, y: Any) -> Any:
        total = xp.sum(self.w * per_sample(self.base, xp, t, y))
        return total / y.shape[0] if self.reduction == "mean" else total

    def _gradient(self, xp: Any, t: Any, y: Any) -> Any:
        return checked_delta(self.base, self.base._gradient(xp, t, y), y.shape) * self.w[:, None]

    def _fused_delta(self, xp: Any, t: Any, y: Any) -> Any:
        return checked_delta(self.base, self.base._fused_delta(xp, t, y), y.shape) * self.w[:, None]

    def _per_sample(self, xp: Any, t: Any, y: Any) -> Any:
        return self.w * per_sample(self.base, xp, t, y)

    def config(self) -> dict[str, Any]:
        return self.base.config()


def checked_delta(loss: Loss, g: Any, shape: Sequence[int]) -> Any:
    """``loss``'s delta, refused unless it has the outputs' ``shape``: the
    next layer's check would blame that layer, and weights would broadcast
    a ``(k,)`` gradient to ``(n, k)`` and train in silence."""
    if tuple(g.shape) != tuple(shape):
        raise ValueError(f"the loss {loss.name or type(loss).__name__!r} gave a gradient of shape {tuple(g.shape)} "
                         f"for outputs of shape {tuple(shape)}: its _gradient must return one value per output")
    return g


# -- a built-in's shortcuts apply only to the formulas they were written for ---


def declared_fusion(loss: Loss) -> str | None:
    """The output activation whose combined delta ``loss`` gives: only what
    its own class (or the object itself) declares, never a parent's."""
    return vars(loss).get("fused_with", vars(type(loss)).get("fused_with"))


def value_and_delta(loss: Loss, xp: Any, t: Any, y: Any, fused: bool) -> tuple[Any, Any]:
    """``loss._value_and_delta``, or the plain ``_value`` and delta where a
    subclass changed the formulas its parent's combined form computes."""
    if _shortcut_holds(loss, "_value_and_delta", ("_value", "_gradient", "_fused_delta")):
        return loss._value_and_delta(xp, t, y, fused)
    return Loss._value_and_delta(loss, xp, t, y, fused)


def per_sample(loss: Loss, xp: Any, t: Any, y: Any) -> Any:
    """Each row's loss: ``loss._per_sample``, or row by row through
    ``_value`` where a subclass changed ``_value`` and kept its parent's."""
    if _shortcut_holds(loss, "_per_sample", ("_value",)):
        return loss._per_sample(xp, t, y)
    return Loss._per_sample(loss, xp, t, y)


def for_labels(loss: Loss) -> Loss:
    """The loss to train with on one-hot rows made from labels: the class's
    own shortcut, or ``loss`` itself where a subclass changed a formula."""
    if _shortcut_holds(loss, "_for_labels", ("_value", "_gradient", "_fused_delta", "_per_sample", "_targets")):
        return loss._for_labels()
    return loss


def _shortcut_holds(loss: Loss, shortcut: str, formulas: tuple[str, ...]) -> bool:
    """Does every one of ``formulas`` come from the class that defines
    ``shortcut``, or from one after it in ``loss``'s method order? ``class
    HalfMSE(MSE)`` with its own ``_value`` (or ``class HalfMSE(Halved, MSE)``,
    a mixin's) must not train on MSE's combined value and delta."""
    return _holds_for(type(loss), shortcut, formulas)


@functools.cache
def _holds_for(cls: type, shortcut: str, formulas: tuple[str, ...]) -> bool:
    """:func:`_shortcut_holds` per class: asked every training step, and a
    class's method order does not change (re-registering makes a new class)."""
    mro = cls.__mro__
    first = mro.index(_owner(cls, shortcut))
    return all(mro.index(_owner(cls, f)) >= first for f in formulas)


def _owner(cls: type, name: str) -> type:
    return next(c for c in cls.__mro__ if name in vars(c))


def _is_column_of(a: Any, b: Any) -> bool:
    """``a`` is ``(N,)`` and ``b`` is ``(N, 1)``."""
    return a.ndim == 1 and b.ndim == 2 and b.shape == (a.shape[0], 1)


def _clipped(xp: Any, y: Any, eps: float) -> Any:
    """``y`` clipped to ``[eps, 1 - eps]`` (NaN stays NaN): two namespace
    calls (array-api-compat's ``clip`` on NumPy makes an empty array and
    assigns into it, several operations and an array no compiled step sees)."""
    return xp.minimum(xp.maximum(y, eps), 1.0 - eps)


def _size(y: Any) -> int:
    return math.prod(y.shape)


@register
class MSE(Loss):
    name = "mse"

    def _value(self, xp, t, y):
        d = y - t
        return xp.sum(d * d) / _size(y)

    def _gradient(self, xp, t, y):
        return (y - t) * (2.0 / _size(y))

    def _value_and_delta(self, xp, t, y, fused):
        d = y - t
        return xp.sum(d * d) / _size(y), d * (2.0 / _size(y))

    def _per_sample(self, xp, t, y):
        d = y - t
        return xp.sum(d * d, axis=1) / y.shape[1]


@register
class SSE(Loss):
    name = "sse"
    reduction = "sum"

    def _value(self, xp, t, y):
        d = y - t
        return xp.sum(d * d)

    def _gradient(self, xp, t, y):
        return (y - t) * 2.0

    def _value_and_delta(self, xp, t, y, fused):
        d = y - t
        return xp.sum(d * d), d * 2.0

    def _per_sample(self, xp, t, y):
        d = y - t
        return xp.sum(d * d, axis=1)


@register
class MAE(Loss):
    """Mean absolute error. Its gradient is ``sign(y - t) / size``, 0 where
    output and target are equal (as torch's L1Loss)."""

    name = "mae"

    def _value(self, xp, t, y):
        return xp.sum(xp.abs(y - t)) / _size(y)

    def _gradient(self, xp, t, y):
        return xp.sign(y - t) * (1.0 / _size(y))

    def _per_sample(self, xp, t, y):
        return xp.sum(xp.abs(y - t), axis=1) / y.shape[1]


@register
class Huber(Loss):
    """Huber loss: quadratic within ``delta`` of the target, linear beyond, so
    outliers pull with a bounded gradient ``clip(y - t, -delta, delta) / size``.

    The value is written without a branch: with ``a = |d|`` and ``q =
    min(a, delta)``, ``q (a - q / 2)`` is ``a**2 / 2`` inside and ``delta (a -
    delta / 2)`` outside."""

    name = "huber"

    def __init__(self, delta: float = 1.0) -> None:
        self.delta = positive(delta, "huber delta")

    def _value(self, xp, t, y):
        a = xp.abs(y - t)
        q = xp.minimum(a, self.delta)
        return xp.sum(q * (a - 0.5 * q)) / _size(y)

    def _gradient(self, xp, t, y):
        d = xp.minimum(xp.maximum(y - t, -self.delta), self.delta)
        return d * (1.0 / _size(y))

    def _per_sample(self, xp, t, y):
        a = xp.abs(y - t)
        q = xp.minimum(a, self.delta)
        return xp.sum(q * (a - 0.5 * q), axis=1) / y.shape[1]

    def config(self) -> dict[str, Any]:
        return {"delta": self.delta}


@register
class BinaryCrossEntropy(Loss):
    name = "binary_cross_entropy"
    fused_with = "sigmoid"
    class_targets = "binary"

    def _value(self, xp, t, y):
        eps = xp.finfo(y.dtype).eps
        yc = _clipped(xp, y, eps)
        return -xp.sum(t * xp.log(yc) + (1.0 - t) * xp.log(1.0 - yc)) / _size(y)

    def _gradient(self, xp, t, y):
        eps = xp.finfo(y.dtype).eps
        yc = _clipped(xp, y, eps)
        g = (yc - t) / (yc * (1.0 - yc) * _size(y))
        return xp.where((y > eps) & (y < 1.0 - eps), g, 0.0)

    def _fused_delta(self, xp, t, y):
        return (y - t) * (1.0 / _size(y))

    def _per_sample(self, xp, t, y):
        eps = xp.finfo(y.dtype).eps
        yc = _clipped(xp, y, eps)
        return -xp.sum(t * xp.log(yc) + (1.0 - t) * xp.log(1.0 - yc), axis=1) / y.shape[1]


@register
class CrossEntropy(Loss):
    name = "cross_entropy"
    fused_with = "softmax"
    class_targets = "classes"

    def _targets(self, xp, expected, y):
        if y.ndim == 2 and y.shape[1] == 1:
            raise ValueError(
                "cross_entropy needs one output column per class; with a single output column it is "
                "-t*log(y) alone, which any y near 1 minimises: use 'binary_cross_entropy' for two classes"
            )
        if y.ndim == 2 and y.shape[1] > 1:
            _, labels = as_float_array(expected, like=y)
            if labels.ndim == 2 and labels.shape[1] == 1:  # a column of labels, as fit takes it
                labels = xp.reshape(labels, (-1,))
            if labels.ndim == 1:
                return _one_hot_labels(xp, labels, y)
        return super()._targets(xp, expected, y)

    def _value(self, xp, t, y):
        eps = xp.finfo(y.dtype).eps
        n = y.shape[0] if y.ndim == 2 else 1
        return xp.sum(t * xp.log(xp.maximum(y, eps))) * (-1.0 / n)

    def _gradient(self, xp, t, y):
        eps = xp.finfo(y.dtype).eps
        n = y.shape[0] if y.ndim == 2 else 1
        return xp.where(y > eps, -t / (xp.maximum(y, eps) * n), 0.0)

    def _fused_delta(self, xp, t, y):
        n = y.shape[0] if y.ndim == 2 else 1
        return (y * xp.sum(t, axis=-1, keepdims=True) - t) * (1.0 / n)

    def _per_sample(self, xp, t, y):
        eps = xp.finfo(y.dtype).eps
        return -xp.sum(t * xp.log(xp.maximum(y, eps)), axis=1)

    def _for_labels(self) -> Loss:
        return _LabelCrossEntropy()


class _LabelCrossEntropy(CrossEntropy):
    """Cross-entropy on one-hot rows from class labels: the fused delta's row
    sums are exactly 1, so ``y * 1 - t`` is ``y - t`` bit for bit and two
    array operations per step are saved. Not registered: the same loss."""

    fused_with = "softmax"  # declared again: a subclass inherits no fusion (see Network._loss_and_grads)

    def _fused_delta(self, xp, t, y):
        n = y.shape[0] if y.ndim == 2 else 1
        return (y - t) * (1.0 / n)


def _one_hot_labels(xp: Any, labels: Any, y: Any) -> Any:
    """Integer class labels ``(N,)`` -> one-hot ``(N, K)`` like ``y``, refusing
    labels that are not integers in ``0..K-1`` (they would silently vanish)."""
    n, k = y.shape
    if labels.shape[0] != n:
        raise ValueError(f"cross_entropy: {labels.shape[0]} labels for {n} output rows")
    if not bool(xp.all(labels == xp.round(labels))):
        raise ValueError("cross_entropy: class labels must be integers, got non-integral values")
    lab = xp.astype(labels, index_dtype(xp))
    if bool(xp.any(lab < 0)) or bool(xp.any(lab >= k)):
        raise ValueError(f"cross_entropy: class labels must lie in 0..{k - 1} for {k} outputs")
    return xpx.one_hot(lab, k, dtype=y.dtype, xp=xp)


def get_loss(spec: str | dict | Loss) -> Loss:
    """A loss from a name (case-insensitive), a ``{"name", "config"}`` spec,
    or an instance (kept)."""
    return LOSSES.resolve(spec)


def loss_fcn(name: str | Loss, expected: Any, outputs: Any) -> Any:
    """The seeds' name-based loss: ``get_loss(name).value(expected, outputs)``.

    Accepts Python scalars and lists as well as arrays."""
    return get_loss(name).value(expected, outputs)
