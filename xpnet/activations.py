"""Activation functions, their derivatives, and their backward passes.

Each activation is stateless and takes its namespace from its input, so one
definition serves every backend. Three methods:

- ``forward(v)``: y = f(v), elementwise (softmax: along the last axis).
- ``derivative(v)``: dy/dv elementwise, as the seeds tabulate it. Softmax has
  no elementwise derivative (its Jacobian couples a row) and raises.
- ``backward(v, y, dy)``: dL/dv from dL/dy, the vector-Jacobian product that
  backprop needs. It may use the cached output ``y`` (sigmoid, tanh) instead
  of recomputing ``f(v)``; for softmax it is the only correct route.
"""

from __future__ import annotations

import math
from typing import Any

from ._backend import quiet_float_errors
from ._xp import as_float_array, keep_positive
from .registry import component_spec, register, registry_for
from .validation import positive

__all__ = ["ACTIVATIONS", "Activation", "get_activation"]

LEAKY_SLOPE = 0.01


class Activation:
    """Base class: subclasses define ``_forward(xp, v)``, ``_derivative(xp, v)``
    and may override ``_backward(xp, v, y, dy)`` (what layers call in training)
    with a cheaper or (softmax) non-elementwise form."""

    name: str = ""
    elementwise: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that writes its own ``_forward`` or ``_derivative`` but
        not ``_backward`` gets the plain ``dy * _derivative(v)``, not its
        parent's cheaper form: that one is the parent's formula in the cached
        output ``y`` (``dy * (1 - y * y)`` for tanh), so a scaled tanh derived
        from ``Tanh`` trained on wrong gradients in silence (as a loss
        subclass inherits no fused delta)."""
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        if "_backward" not in own and ("_forward" in own or "_derivative" in own):
            cls._backward = Activation._backward

    # The public methods wrap results in xp.asarray: NumPy ufuncs turn 0-d
    # arrays into scalars, and callers are promised arrays.
    def forward(self, v: Any) -> Any:
        """The activation of the potential ``v`` (a subclass defines ``_forward``)."""
        xp, v = as_float_array(v)
        with quiet_float_errors():  # an exp that overflows to its limit is not news
            return xp.asarray(self._forward(xp, v))

    def derivative(self, v: Any) -> Any:
        """Its elementwise derivative at ``v`` (a subclass defines ``_derivative``)."""
        xp, v = as_float_array(v)
        with quiet_float_errors():
            return xp.asarray(self._derivative(xp, v))

    def backward(self, v: Any, y: Any, dy: Any) -> Any:
        """dL/dv given the forward pass's ``v``, ``y`` and the incoming dL/dy."""
        xp, dy = as_float_array(dy)
        _, v = as_float_array(v, like=dy)
        _, y = as_float_array(y, like=dy)
        with quiet_float_errors():
            return xp.asarray(self._backward(xp, v, y, dy))

    # The underscored methods take ``xp`` from the caller: layers already know
    # their namespace, and looking it up again per step costs microseconds.
    def _backward(self, xp: Any, v: Any, y: Any, dy: Any) -> Any:
        return dy * self._derivative(xp, v)

    def _forward(self, xp: Any, v: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define _forward(xp, v)")

    def _derivative(self, xp: Any, v: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define _derivative(xp, v) (or _backward(xp, v, y, dy))")

    def config(self) -> dict[str, Any]:
        """Settings as plain values (none for most); ``type(self)(**config)`` rebuilds it."""
        return {}

    def __repr__(self) -> str:
        return f"Activation({component_spec(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and component_spec(other) == component_spec(self)

    def __hash__(self) -> int:
        return hash(self.name)


#: The registry of activations: name -> class (see :func:`xpnet.register`).
ACTIVATIONS = registry_for("activation", Activation)


@register(aliases=("linear",))
class Identity(Activation):
    name = "identity"

    def _forward(self, xp, v):
        return v

    def _derivative(self, xp, v):
        return xp.ones_like(v)

    def _backward(self, xp, v, y, dy):
        return dy


@register
class Sigmoid(Activation):
    """Logistic function, the textbook's ``1 / (1 + e^-v)``: small outputs
    keep their full relative precision, large inputs round to 1 as the seeds
    print (``sigmoid(37) == 1.0``), and below the overflow of ``e^-v``
    (about -709 in float64, -88 in float32) the output is exactly 0, with
    NumPy's overflow warning silenced where xpnet computes. Four array
    operations. (``exp(v - logaddexp(0, v))``, used before, had one fewer
    and no overflow, but subtracted nearly equal numbers near 1: 2% off in
    ``1 - sigmoid(10.8)`` in float32.)"""

    name = "sigmoid"

    def _forward(self, xp, v):
        return _sigmoid(xp, v)

    def _derivative(self, xp, v):
        y = self._forward(xp, v)
        return y * (1.0 - y)

    def _backward(self, xp, v, y, dy):
        return dy * (y * (1.0 - y))


def _sigmoid(xp: Any, v: Any) -> Any:
    """``1 / (1 + exp(-v))``, the seeds' formula: accurate relative to its
    value near 0, exactly 0 past the overflow of ``exp(-v)`` (NumPy's
    warning about it is silenced where xpnet computes: ``fit``, ``predict``,
    the public activation methods), and near 1 it rounds as the seeds print
    (``sigmoid(37) == 1.0`` in float64). ``exp(v - logaddexp(0, v))`` never
    overflowed but lost digits near 1: in float32 a 2% error in
    ``1 - sigmoid(10.8)``, which binary ``predict_proba`` reports."""
    return 1.0 / (1.0 + xp.exp(-v))


@register
class Tanh(Activation):
    name = "tanh"

    def _forward(self, xp, v):
        return xp.tanh(v)

    def _derivative(self, xp, v):
        y = xp.tanh(v)
        return 1.0 - y * y

    def _backward(self, xp, v, y, dy):
        return dy * (1.0 - y * y)


@register
class ReLU(Activation):
    """max(0, v); its derivative is taken as 0 at v = 0 (as PyTorch does)."""

    name = "relu"

    def _forward(self, xp, v):
        return xp.maximum(v, 0.0)

    def _derivative(self, xp, v):
        return xp.astype(v > 0, v.dtype)

    def _backward(self, xp, v, y, dy):
        return keep_positive(xp, v, dy)


@register
class LeakyReLU(Activation):
    name = "leaky_relu"

    def _forward(self, xp, v):
        return xp.where(v > 0, v, LEAKY_SLOPE * v)

    def _derivative(self, xp, v):
        return xp.astype(v > 0, v.dtype) * (1.0 - LEAKY_SLOPE) + LEAKY_SLOPE

    def _backward(self, xp, v, y, dy):
        return xp.where(v > 0, dy, LEAKY_SLOPE * dy)


@register
class Softmax(Activation):
    """Row-wise softmax along the last axis, with the row maximum subtracted
    so that ``exp`` never overflows."""

    name = "softmax"
    elementwise = False

    def _forward(self, xp, v):
        e = xp.exp(v - xp.max(v, axis=-1, keepdims=True))
        return e / xp.sum(e, axis=-1, keepdims=True)

    def _derivative(self, xp, v):
        raise ValueError(
            "softmax has no elementwise derivative (each output depends on the whole row); "
            "use Activation.backward(v, y, dy), which applies its Jacobian"
        )

    def _backward(self, xp, v, y, dy):
        return y * (dy - xp.sum(dy * y, axis=-1, keepdims=True))


@register
class GELU(Activation):
    """Gaussian error linear unit, tanh form (``torch.nn.GELU(approximate="tanh")``):
    ``0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3)))``. Layers default to He
    initialisation, as for ReLU, which GELU approaches for large ``|v|``.

    ``v`` is clipped to +-10 inside the tanh: beyond that the tanh is exactly
    +-1 in float32 and float64 either way, and ``v**3`` can no longer overflow
    (with a warning, and ``0 * inf = nan`` in the derivative) for huge inputs."""

    name = "gelu"
    _K = math.sqrt(2.0 / math.pi)
    _C = 0.044715

    def _tanh(self, xp, v):
        v = xp.minimum(xp.maximum(v, -10.0), 10.0)
        v2 = v * v
        return v, v2, xp.tanh(self._K * (v + self._C * (v2 * v)))

    def _forward(self, xp, v):
        return 0.5 * v * (1.0 + self._tanh(xp, v)[2])

    def _derivative(self, xp, v):
        vc, v2, th = self._tanh(xp, v)
        return 0.5 * (1.0 + th) + (0.5 * self._K) * vc * (1.0 - th * th) * (1.0 + 3.0 * self._C * v2)


@register
class ELU(Activation):
    """Exponential linear unit (``torch.nn.ELU``): ``v`` for ``v > 0``, else
    ``alpha (exp(v) - 1)``, computed with ``expm1`` of ``min(v, 0)`` so that
    large positive inputs never overflow the unused branch. Layers default to
    He initialisation, as for ReLU."""

    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = positive(alpha, "elu alpha")

    def _forward(self, xp, v):
        return xp.where(v > 0, v, self.alpha * xp.expm1(xp.minimum(v, 0.0)))

    def _derivative(self, xp, v):
        return xp.where(v > 0, 1.0, self.alpha * xp.exp(xp.minimum(v, 0.0)))

    def _backward(self, xp, v, y, dy):
        # Not ``dy * (y + alpha)``, which saves the exp but cancels to 0 in
        # float32 once exp(v) < eps: small gradients would lose all digits.
        return xp.where(v > 0, dy, (self.alpha * dy) * xp.exp(xp.minimum(v, 0.0)))

    def config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


@register
class Softplus(Activation):
    """``log(1 + exp(beta v)) / beta``, and ``v`` itself where ``beta v >
    threshold`` (``torch.nn.Softplus``, defaults beta 1, threshold 20).

    Computed as ``max(x, 0) + log1p(exp(-|x|))``, which never overflows and
    keeps tiny outputs exact. Its derivative is ``sigmoid(beta v)``; the
    backward pass gets it from the output as ``1 - exp(-beta y)``. Layers
    default to He initialisation: softplus is a smooth ReLU."""

    name = "softplus"

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        self.beta = positive(beta, "softplus beta")
        self.threshold = positive(threshold, "softplus threshold")

    def _scaled(self, v):
        return v if self.beta == 1.0 else v * self.beta

    def _forward(self, xp, v):
        x = self._scaled(v)
        soft = xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))
        return xp.where(x > self.threshold, v, soft if self.beta == 1.0 else soft / self.beta)

    def _derivative(self, xp, v):
        x = self._scaled(v)
        return xp.where(x > self.threshold, 1.0, _sigmoid(xp, x))

    def _backward(self, xp, v, y, dy):
        x = self._scaled(v)
        return xp.where(x > self.threshold, dy, dy * -xp.expm1(-self._scaled(y)))

    def config(self) -> dict[str, Any]:
        return {"beta": self.beta, "threshold": self.threshold}


@register
class SiLU(Activation):
    """Sigmoid linear unit, or swish (``torch.nn.SiLU``): ``v sigmoid(v)``,
    with the overflow-free sigmoid. Its derivative is ``s (1 + v (1 - s))``,
    with ``1 - s`` taken as ``sigmoid(-v)``, which keeps its digits for large
    ``v`` (the form ``y + s (1 - y)`` cancels to 0 there). Layers default to
    He initialisation, as for ReLU."""

    name = "silu"

    def _forward(self, xp, v):
        return v * _sigmoid(xp, v)

    def _derivative(self, xp, v):
        return _sigmoid(xp, v) * (1.0 + v * _sigmoid(xp, -v))

    def _backward(self, xp, v, y, dy):
        return dy * self._derivative(xp, v)


def get_activation(spec: str | dict | Activation) -> Activation:
    """An activation from a name (case-insensitive; ``linear`` = ``identity``),
    a ``{"name", "config"}`` spec as files store it, or an instance (kept)."""
    return ACTIVATIONS.resolve(spec)
