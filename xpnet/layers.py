"""Dense: a fully connected layer, ``Y = f(X @ W + b)``.

The layer's kernels are pure functions of its parameters and inputs:
``forward(X) -> (Y, cache)`` and ``backward(cache, dY) -> (dX, dW, db)``. They
never update anything; the :class:`~xpnet.network.Network` that owns the
layer commits new parameters in one place. A layer gets its backend, dtype
and initial weights from that network (see ``Network.__init__``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ._random import Initializer, draw_weights, initial_bias, resolve_init
from .activations import Activation, get_activation

__all__ = ["Dense", "LayerCache"]


class LayerCache(NamedTuple):
    """What ``backward`` needs from ``forward``: input, potential, output."""

    x: Any
    v: Any
    y: Any


class Dense:
    """A fully connected layer of ``n_out`` neurons over ``n_in`` inputs.

    ``weights`` has shape ``(n_in, n_out)``, ``bias`` shape ``(n_out,)`` or is
    ``None`` when ``bias=False``. ``init`` picks the initial weights: a name
    from :data:`xpnet._random.INITIALIZERS` or a callable
    ``(rng, n_in, n_out) -> array``; default He-normal for ReLU-family
    activations, Glorot-uniform otherwise. Biases start at zero.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        activation: str | Activation = "identity",
        bias: bool = True,
        *,
        init: str | Initializer | None = None,
    ) -> None:
        self.n_in = _positive_int(n_in, "n_in")
        self.n_out = _positive_int(n_out, "n_out")
        self.activation = get_activation(activation)
        self.use_bias = bool(bias)
        self._init = resolve_init(init, self.activation.name)
        self._init_name = init if isinstance(init, str) else None
        self._backend = None
        self._dtype = None
        self._weights = None
        self._bias = None

    # -- construction by a Network -------------------------------------------

    @property
    def built(self) -> bool:
        return self._backend is not None

    def _build(self, backend: Any, dtype: str, rng: Any) -> None:
        """Draw initial weights on the host and move them to the backend once."""
        self._backend, self._dtype = backend, dtype
        w = draw_weights(self._init, rng, self.n_in, self.n_out, dtype)
        self._weights = backend.asarray(w, dtype)
        self._bias = backend.asarray(initial_bias(self.n_out, dtype)) if self.use_bias else None

    def _adopt(self, backend: Any, dtype: str, weights: Any, bias: Any) -> None:
        """Take existing parameters (``Network.to``, ``load``) instead of drawing."""
        self._backend, self._dtype = backend, dtype
        self.weights = weights
        if self.use_bias:
            self.bias = bias

    def _require_built(self) -> None:
        if self._backend is None:
            raise RuntimeError(
                "this Dense layer has no parameters yet: put it in a Network (or MLP), "
                "which gives it a backend, a dtype and initial weights"
            )

    # -- parameters ----------------------------------------------------------

    @property
    def weights(self) -> Any:
        return self._weights

    @weights.setter
    def weights(self, value: Any) -> None:
        self._require_built()
        self._weights = _checked_param(self._backend, value, self._dtype, (self.n_in, self.n_out), "Dense.weights")

    @property
    def bias(self) -> Any:
        return self._bias

    @bias.setter
    def bias(self, value: Any) -> None:
        self._require_built()
        if not self.use_bias:
            if value is None:
                return
            raise ValueError("this layer was built with bias=False; its bias can only be None")
        self._bias = _checked_param(self._backend, value, self._dtype, (self.n_out,), "Dense.bias")

    # -- kernels ---------------------------------------------------------------

    def forward(self, X: Any) -> tuple[Any, LayerCache]:
        """``Y = f(X @ W + b)`` and the cache ``backward`` needs."""
        return self._forward(self._backend.xp, X, self._weights, self._bias)

    def _forward(self, xp: Any, X: Any, W: Any, b: Any) -> tuple[Any, LayerCache]:
        v = X @ W
        if b is not None:
            v = v + b
        y = self.activation._forward(xp, v)
        return y, LayerCache(X, v, y)

    def backward(self, cache: LayerCache, dY: Any, *, input_grad: bool = True) -> tuple[Any, Any, Any]:
        """``(dX, dW, db)`` from dL/dY; ``dX`` is ``None`` if not ``input_grad``."""
        xp = self._backend.xp
        dV = self.activation._backward(xp, cache.v, cache.y, dY)
        return self._backward_potential(xp, cache, dV, self._weights, input_grad)

    def _backward_potential(self, xp: Any, cache: LayerCache, dV: Any, W: Any, input_grad: bool):
        """``(dX, dW, db)`` from dL/dV (the delta of the seeds' delta rule)."""
        dW = cache.x.T @ dV
        db = xp.sum(dV, axis=0) if self.use_bias else None
        dX = dV @ W.T if input_grad else None
        return dX, dW, db

    # -- description -----------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The architecture of this layer as plain JSON-able data."""
        return {
            "type": "Dense",
            "n_in": self.n_in,
            "n_out": self.n_out,
            "activation": self.activation.name,
            "bias": self.use_bias,
        }

    def _copy_unbuilt(self) -> Dense:
        new = Dense(self.n_in, self.n_out, self.activation, self.use_bias, init=self._init)
        return new

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation.name!r}, bias={self.use_bias})"


def _positive_int(n: Any, what: str) -> int:
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"{what} must be a positive int, got {n!r}")
    n = int(n)
    if n < 1:
        raise ValueError(f"{what} must be a positive int, got {n}")
    return n


def _checked_param(backend: Any, value: Any, dtype: str, shape: tuple[int, ...], what: str) -> Any:
    """A user-given parameter as a private copy on the backend: shape, NaN,
    inf and dtype overflow checked (:func:`xpnet.validation.checked_param`)."""
    from .validation import checked_param

    return checked_param(backend, value, dtype, shape, what)
