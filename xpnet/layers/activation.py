"""An activation function used as a layer of its own: ``Y = f(X)``."""

from __future__ import annotations

from typing import Any

from ..activations import Activation, get_activation
from ..registry import component_spec, register
from .base import Layer

__all__ = ["ActivationLayer"]


@register
class ActivationLayer(Layer):
    """``f(X)`` elementwise (softmax: along each row), no parameters.

    A :class:`~xpnet.Network` also takes an activation name or
    :class:`~xpnet.Activation` in its layer list and wraps it in this."""

    name = "Activation"
    _setting_checks = {"activation": get_activation}

    def __init__(self, activation: str | dict | Activation = "identity") -> None:
        super().__init__()
        self.activation = get_activation(activation)

    def config(self) -> dict[str, Any]:
        return {"activation": component_spec(self.activation)}

    def forward(self, xp: Any, params: Any, buffers: Any, X: Any, ctx: Any) -> tuple[Any, Any, Any]:
        Y = self.activation._forward(xp, X)
        return Y, (X, Y), buffers

    def backward(self, xp: Any, params: Any, cache: Any, dY: Any, need_dx: bool) -> tuple[Any, list[Any]]:
        X, Y = cache
        return self.activation._backward(xp, X, Y, dY), []

    def output_activation(self) -> Activation:
        return self.activation

    def backward_from_potential(self, xp: Any, params: Any, cache: Any, dV: Any, need_dx: bool):
        return dV, []
