"""Dense: a fully connected layer, ``Y = f(X @ W + b)``, the seeds' layer.

Its kernels follow the layer protocol (:mod:`xpnet.layers.base`): pure
functions of the parameters handed in. Backward is the seeds' delta rule:
``delta = dY * f'(v)``, ``dW = X.T @ delta``, ``db = sum(delta)``,
``dX = delta @ W.T``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._random import InitFunction, draw_weights, initial_bias, resolve_init
from .._xp import affine, column_sum
from ..activations import Activation, get_activation
from ..registry import component_spec, register
from ..validation import checked_param, positive_int, true_or_false
from .base import Layer, read_only

__all__ = ["Dense", "LayerCache"]


class LayerCache(NamedTuple):
    """What ``backward`` needs from ``forward``: input, potential, output."""

    x: Any
    v: Any
    y: Any


@register
class Dense(Layer):
    """A fully connected layer of ``n_out`` neurons over ``n_in`` inputs.

    ``weights`` has shape ``(n_in, n_out)``, ``bias`` shape ``(n_out,)`` or is
    ``None`` when ``bias=False``. ``init`` picks the initial weights: a
    registered initialiser's name, an :class:`~xpnet.Initializer`, or a
    callable ``(rng, n_in, n_out) -> array``; default He-normal for
    ReLU-family activations, Glorot-uniform otherwise. Biases start at zero.
    """

    name = "Dense"
    _setting_checks = {"n_in": None, "n_out": None, "use_bias": None, "activation": get_activation}

    def __init__(
        self,
        n_in: int,
        n_out: int,
        activation: str | dict | Activation = "identity",
        bias: bool = True,
        *,
        init: str | InitFunction | None = None,
    ) -> None:
        super().__init__()
        self.n_in = positive_int(n_in, "n_in")
        self.n_out = positive_int(n_out, "n_out")
        self.activation = get_activation(activation)
        self.use_bias = true_or_false(bias, "bias")
        self._init = resolve_init(init, self.activation.name)
        self._default_init = init is None  # then the activation's at drawing time: one assigned later picks it

    # -- protocol: settings, widths, parameters -------------------------------

    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "activation": component_spec(self.activation), "bias": self.use_bias}

    def input_width(self) -> int:
        return self.n_in

    def output_width(self, n_in: int | None) -> int:
        return self.n_out

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"weight": (self.n_in, self.n_out)}
        if self.use_bias:
            shapes["bias"] = (self.n_out,)
        return shapes

    def decayed(self) -> tuple[str, ...]:
        return ("weight",)

    def init_parameters(self, rng: np.random.Generator, dtype: str) -> dict[str, np.ndarray]:
        init = resolve_init(None, self.activation.name) if self._default_init else self._init
        out = {"weight": draw_weights(init, rng, self.n_in, self.n_out, dtype)}
        if self.use_bias:
            out["bias"] = initial_bias(self.n_out, dtype)
        return out

    # -- protocol: kernels -------------------------------------------------------

    def forward(self, xp: Any, params: Any, buffers: Any, X: Any, ctx: Any) -> tuple[Any, LayerCache, Any]:
        v = affine(xp, X, params[0], params[1] if self.use_bias else None)
        act = self.activation  # a user's gets v read-only on NumPy: v is cached for backward
        y = act._forward(xp, v if type(act).__module__.startswith("xpnet.") else read_only(v))
        return y, LayerCache(X, v, y), buffers

    def backward(self, xp: Any, params: Any, cache: LayerCache, dY: Any, need_dx: bool) -> tuple[Any, list[Any]]:
        dV = self.activation._backward(xp, cache.v, cache.y, dY)
        return self.backward_from_potential(xp, params, cache, dV, need_dx)

    def output_activation(self) -> Activation:
        return self.activation

    def backward_from_potential(self, xp: Any, params: Any, cache: LayerCache, dV: Any, need_dx: bool):
        """``(dX, [dW, db])`` from dL/dV (the delta of the seeds' delta rule)."""
        grads = [xp.matmul(cache.x.T, dV)]
        if self.use_bias:
            grads.append(column_sum(xp, dV))
        return (xp.matmul(dV, params[0].T) if need_dx else None), grads

    def named_gradients(self, grads: Any) -> tuple[Any, Any]:
        """``(dW, db)``; ``db`` is ``None`` without a bias."""
        return (grads[0], grads[1] if self.use_bias else None)

    # -- the seeds' named parameters ---------------------------------------------

    @property
    def weights(self) -> Any:
        """The ``(n_in, n_out)`` weight matrix, a device array (``None`` until
        a network holds the layer); assigning checks shape and values."""
        return self._params[0] if self._params else None

    @weights.setter
    def weights(self, value: Any) -> None:
        self._require_built()
        self._params[0] = checked_param(self._backend, value, self._dtype, (self.n_in, self.n_out), "Dense.weights")

    @property
    def bias(self) -> Any:
        """The ``(n_out,)`` bias, a device array (``None`` without a bias, or
        until a network holds the layer); assigning checks shape and values."""
        return self._params[1] if self.use_bias and self._params else None

    @bias.setter
    def bias(self, value: Any) -> None:
        self._require_built()
        if not self.use_bias:
            if value is None:
                return
            raise ValueError("this layer was built with bias=False; its bias can only be None")
        self._params[1] = checked_param(self._backend, value, self._dtype, (self.n_out,), "Dense.bias")

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out}, activation={component_spec(self.activation)!r}, bias={self.use_bias})"

