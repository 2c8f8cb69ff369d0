"""Network and MLP: a stack of Dense layers, and the one place parameters change.

The parameters live in the layers; the network reads them as one flat list
(``W0, b0, W1, b1, ...``, absent biases skipped), hands that list to pure
functions (forward, backprop, the optimizer) and commits the list they return
with :meth:`Network._commit`. Nothing else writes a parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ._backend import Backend, get_backend, quiet_float_errors
from . import training as _training
from ._random import host_rng
from .layers import Dense, LayerCache
from .losses import Loss, get_loss
from .validation import DeferredChecks, as_features, as_targets, one_hot, queue_loss_targets, queue_output_check

__all__ = ["MLP", "Network"]

DTYPES = ("float32", "float64")


def check_dtype(dtype: Any) -> str:
    name = str(dtype).rsplit(".", 1)[-1]
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return name


class Network:
    """A feed-forward stack of :class:`~xpnet.layers.Dense` layers.

    ``backend`` is a name or a :class:`Backend` (default: auto), ``dtype``
    ``"float32"`` or ``"float64"``, ``seed`` an int for reproducible initial
    weights (the same on every backend) or ``None``.
    """

    def __init__(
        self,
        layers: Iterable[Dense],
        *,
        backend: str | Backend | None = None,
        dtype: str = "float32",
        seed: int | None = None,
    ) -> None:
        layers = list(layers)
        _check_layers(layers)
        backend = get_backend(backend)
        dtype = check_dtype(dtype)
        rng = host_rng(seed)
        for layer in layers:  # fixed draw order: layer by layer, W then b
            layer._build(backend, dtype, rng)
        self._setup(layers, backend, dtype)

    def _setup(self, layers: list[Dense], backend: Backend, dtype: str) -> None:
        self.layers = layers
        self.backend = backend
        self.dtype = dtype
        #: JSON-able facts saved with the model (the CLI stores feature names here).
        self.info: dict[str, Any] = {}
        slots, i = [], 0
        for layer in layers:
            slots.append((i, i + 1 if layer.use_bias else None))
            i += 2 if layer.use_bias else 1
        self._slots = slots

    @classmethod
    def _assemble(cls, configs: Sequence[dict], backend: Backend, dtype: str, params: Sequence[Any]) -> Network:
        """A network with given parameters (``to``, ``load``): nothing is drawn."""
        layers = [Dense(c["n_in"], c["n_out"], c["activation"], c["bias"]) for c in configs]
        _check_layers(layers)
        net = cls.__new__(cls)
        net._setup(layers, backend, dtype)
        it = iter(params)
        for layer in layers:
            w = next(it)
            b = next(it) if layer.use_bias else None
            layer._adopt(backend, dtype, w, b)
        return net

    # -- shape ---------------------------------------------------------------

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    def config(self) -> list[dict[str, Any]]:
        """The architecture as plain data (saved with the model)."""
        return [layer.config() for layer in self.layers]

    # -- parameters: read as one list, committed in one place ----------------

    def _params(self) -> list[Any]:
        out = []
        for layer in self.layers:
            out.append(layer._weights)
            if layer.use_bias:
                out.append(layer._bias)
        return out

    def _commit(self, params: Sequence[Any]) -> None:
        """The only place a trained network's parameters are replaced."""
        for layer, (iw, ib) in zip(self.layers, self._slots):
            layer._weights = params[iw]
            if ib is not None:
                layer._bias = params[ib]

    # -- inference -----------------------------------------------------------

    def forward(self, X: Any) -> Any:
        """Outputs for ``X`` of shape ``(n_samples, n_in)``, as a backend array."""
        checks = DeferredChecks(self.backend)
        X = self._features(X, checks=checks)
        with quiet_float_errors():  # NaN/inf inputs or an overflow: reported below, once
            Y = self._forward(self._params(), X)[0]
        queue_output_check(checks, Y, self.dtype)
        checks.run()  # one transfer: the inputs' checks, then the outputs'
        return Y

    __call__ = forward

    def predict(self, X: Any) -> Any:
        """Same as :meth:`forward`: the network's outputs (probabilities after softmax)."""
        return self.forward(X)

    def evaluate(self, X: Any, y: Any, loss: str | Loss) -> float:
        """The loss of the network on ``(X, y)`` as a Python float."""
        loss = get_loss(loss)
        X, T = self._inputs(X, y, loss)
        value = self._loss_value(self._params(), X, T, loss)
        return float(self.backend.to_numpy(value))

    def gradients(self, X: Any, y: Any, loss: str | Loss) -> list[tuple[Any, Any]]:
        """``[(dW, db), ...]`` per layer: the gradient of ``loss.value`` on this batch."""
        loss = get_loss(loss)
        X, T = self._inputs(X, y, loss)
        _, grads = self._loss_and_grads(self._params(), X, T, loss)
        return [(grads[iw], grads[ib] if ib is not None else None) for iw, ib in self._slots]

    # -- conversion ------------------------------------------------------------

    def to(self, backend: str | Backend, device: Any = None) -> Network:
        """A copy of this network on another backend/device; this one is untouched."""
        target = get_backend(backend, device)
        params = [target.asarray(p, copy=True) for p in self._params()]
        net = type(self)._assemble(self.config(), target, self.dtype, params)
        net.info = dict(self.info)
        return net

    def _astype(self, dtype: str) -> Network:
        """A copy in another dtype on the same backend (``gradcheck`` uses float64)."""
        dtype = check_dtype(dtype)
        params = [self.backend.asarray(p, dtype, copy=True) for p in self._params()]
        return type(self)._assemble(self.config(), self.backend, dtype, params)

    # -- training, saving ------------------------------------------------------

    #: Train on ``(X, y)``: :func:`xpnet.training.fit`, bound as a method so
    #: that ``help(net.fit)`` shows its signature and documentation.
    fit = _training.fit

    def save(self, path: Any) -> None:
        """Write weights, architecture and dtype to a safetensors file."""
        from .serialization import save

        save(self, path)

    # -- internals: pure functions of a parameter list -------------------------

    def _features(self, X: Any, what: str = "X", checks: DeferredChecks | None = None) -> Any:
        X = as_features(self.backend, X, self.dtype, self.n_in, what)
        run = checks is None
        checks = checks or DeferredChecks(self.backend)
        checks.finite(X, what)
        if run:
            checks.run()
        return X

    def _inputs(self, X: Any, y: Any, loss: Loss) -> tuple[Any, Any]:
        """``(X, T)`` converted once, value-checked in one transfer, labels one-hot."""
        checks = DeferredChecks(self.backend)
        X, T, labels = self._queue_inputs(X, y, loss, checks)
        checks.run()
        return X, self._one_hot_if(T, labels)

    def _queue_inputs(self, X: Any, y: Any, loss: Loss, checks: DeferredChecks, what: str = "") -> tuple[Any, Any, bool]:
        """Convert ``X`` and ``y`` and queue their value checks on ``checks``;
        the caller runs them, then calls :meth:`_one_hot_if`."""
        X = self._features(X, f"{what}X", checks)
        T, labels = as_targets(
            self.backend, y, self.dtype, X.shape[0], self.n_out, self._uses_labels(loss), checks, f"{what}y", f"{what}X"
        )
        queue_loss_targets(checks, T, loss.name, labels, f"{what}y")
        return X, T, labels

    def _one_hot_if(self, T: Any, labels: bool) -> Any:
        return one_hot(self.backend, T, self.n_out, self.dtype) if labels else T

    def _uses_labels(self, loss: Loss) -> bool:
        return loss.name == "cross_entropy" and self.n_out > 1

    def _forward(self, params: Sequence[Any], X: Any) -> tuple[Any, list[LayerCache]]:
        xp = self.backend.xp
        caches = []
        a = X
        for layer, (iw, ib) in zip(self.layers, self._slots):
            a, cache = layer._forward(xp, a, params[iw], None if ib is None else params[ib])
            caches.append(cache)
        return a, caches

    def _loss_value(self, params: Sequence[Any], X: Any, T: Any, loss: Loss) -> Any:
        return loss._value(self.backend.xp, T, self._forward(params, X)[0])

    def _loss_and_grads(self, params: Sequence[Any], X: Any, T: Any, loss: Loss) -> tuple[Any, list[Any]]:
        """Forward, loss value (a 0-d device array) and backprop: the delta rule.

        The output delta is the fused ``(y - t)`` form when the loss pairs with
        the output activation, else ``activation.backward(loss.gradient)``;
        each earlier layer's delta is ``(delta @ W.T) * f'(v)``."""
        xp = self.backend.xp
        Y, caches = self._forward(params, X)
        value = loss._value(xp, T, Y)
        last = self.layers[-1]
        if loss.fused_with is not None and loss.fused_with == last.activation.name:
            dV = loss._fused_delta(xp, T, Y)
        else:
            c = caches[-1]
            dV = last.activation._backward(xp, c.v, c.y, loss._gradient(xp, T, Y))
        grads: list[Any] = [None] * len(params)
        for i in range(len(self.layers) - 1, -1, -1):
            layer, (iw, ib), cache = self.layers[i], self._slots[i], caches[i]
            if i < len(self.layers) - 1:
                dV = layer.activation._backward(xp, cache.v, cache.y, dA)
            dA, dW, db = layer._backward_potential(xp, cache, dV, params[iw], i > 0)
            grads[iw] = dW
            if ib is not None:
                grads[ib] = db
        return value, grads

    # -- description -----------------------------------------------------------

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"{type(self).__name__}([{inner}], backend={self.backend.name!r}, dtype={self.dtype!r})"

    def summary(self) -> str:
        """A table of layers, shapes and parameter counts."""
        rows = [f"{type(self).__name__} on {self.backend} ({self.dtype})"]
        total = 0
        for i, layer in enumerate(self.layers):
            n = layer.n_in * layer.n_out + (layer.n_out if layer.use_bias else 0)
            total += n
            rows.append(f"  {i}: Dense {layer.n_in:>5} -> {layer.n_out:<5} {layer.activation.name:<11} params {n}")
        rows.append(f"  total parameters: {total}")
        return "\n".join(rows)


def _check_layers(layers: list[Any]) -> None:
    if not layers:
        raise ValueError("a Network needs at least one layer, got none")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Dense):
            raise TypeError(f"layer {i} must be a Dense, got {type(layer).__name__}")
        if layer.built:
            raise ValueError(
                f"layer {i} ({layer!r}) already belongs to a network; create a new Dense for each network"
            )
    for i in range(1, len(layers)):
        if layers[i].n_in != layers[i - 1].n_out:
            raise ValueError(
                f"layer {i} expects {layers[i].n_in} inputs but layer {i - 1} gives {layers[i - 1].n_out} outputs"
            )


class MLP(Network):
    """A multi-layer perceptron from layer sizes, e.g. ``MLP([64, 128, 10],
    output_activation="softmax")``: ``activation`` on every hidden layer,
    ``output_activation`` on the last."""

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        output_activation: str = "identity",
        bias: bool = True,
        *,
        backend: str | Backend | None = None,
        dtype: str = "float32",
        seed: int | None = None,
    ) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least an input and an output size, got sizes={sizes}")
        layers = [
            Dense(n_in, n_out, activation if i < len(sizes) - 2 else output_activation, bias)
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))
        ]
        super().__init__(layers, backend=backend, dtype=dtype, seed=seed)
