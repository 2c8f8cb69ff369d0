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

from typing import Any

from ._xp import as_float_array
from .registry import component_spec, register, registry_for

__all__ = ["ACTIVATIONS", "Activation", "get_activation"]

LEAKY_SLOPE = 0.01


class Activation:
    """Base class: subclasses define ``_forward``, ``_derivative`` and may
    override ``backward`` with a cheaper or (softmax) non-elementwise form."""

    name: str = ""
    elementwise: bool = True

    # The public methods wrap results in xp.asarray: NumPy ufuncs turn 0-d
    # arrays into scalars, and callers are promised arrays.
    def forward(self, v: Any) -> Any:
        xp, v = as_float_array(v)
        return xp.asarray(self._forward(xp, v))

    def derivative(self, v: Any) -> Any:
        xp, v = as_float_array(v)
        return xp.asarray(self._derivative(xp, v))

    def backward(self, v: Any, y: Any, dy: Any) -> Any:
        """dL/dv given the forward pass's ``v``, ``y`` and the incoming dL/dy."""
        xp, dy = as_float_array(dy)
        _, v = as_float_array(v, like=dy)
        _, y = as_float_array(y, like=dy)
        return xp.asarray(self._backward(xp, v, y, dy))

    # The underscored methods take ``xp`` from the caller: layers already know
    # their namespace, and looking it up again per step costs microseconds.
    def _backward(self, xp: Any, v: Any, y: Any, dy: Any) -> Any:
        return dy * self._derivative(xp, v)

    def _forward(self, xp: Any, v: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _derivative(self, xp: Any, v: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

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
    """Logistic function, stable for any input: ``exp(min(v, 0)) / (1 +
    exp(-|v|))`` only exponentiates numbers <= 0, so nothing overflows,
    ``forward(-1000.0)`` is exactly 0, and small outputs keep their full
    relative precision. (Equal to the ``where(v >= 0, ...)`` form, without
    ``where``, which costs as much as the rest on small arrays.)"""

    name = "sigmoid"

    def _forward(self, xp, v):
        return xp.exp(xp.minimum(v, 0.0)) / (1.0 + xp.exp(-xp.abs(v)))

    def _derivative(self, xp, v):
        y = self._forward(xp, v)
        return y * (1.0 - y)

    def _backward(self, xp, v, y, dy):
        return dy * (y * (1.0 - y))


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
        # dy * [v > 0]: a multiply by the 0/1 mask streams; where() with a
        # scalar operand takes a slow broadcasting path in NumPy and torch
        # (1024x1024 float32: NumPy 4.1 ms -> 0.32 ms, torch 2.7 ms -> 1.0 ms).
        return dy * xp.astype(v > 0, dy.dtype)


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


def get_activation(spec: str | dict | Activation) -> Activation:
    """An activation from a name (case-insensitive; ``linear`` = ``identity``),
    a ``{"name", "config"}`` spec as files store it, or an instance (kept)."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, type) and issubclass(spec, Activation):
        return spec()
    if not isinstance(spec, str | dict):
        raise TypeError(f"activation must be a name or an Activation, got {type(spec).__name__}")
    return ACTIVATIONS.build(spec)
