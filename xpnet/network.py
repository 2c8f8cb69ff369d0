"""Network and MLP: a chain of layers, and the one place parameters change.

The layers hold settings and pure kernels (:mod:`xpnet.layers.base`). The
network reads all parameters as one flat list (``W0, b0, W1, b1, ...``) and
all buffers (running statistics) as another, hands them to pure functions
(forward, backprop, the optimizer) and commits what those return with
:meth:`Network._commit`. Nothing else writes a parameter.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import array_api_extra as xpx
import numpy as np

from . import training as _training
from ._backend import Backend, backend_for_unpickling, device_spec, get_backend, own_broadcasting, quiet_float_errors
from ._dtypes import DTYPES, dtype_name
from ._programs import held_arrays, holding, inference, keyed_program, program_key
from ._random import host_rng
from ._sparse import is_sparse
from ._xp import index_dtype, row_range
from .activations import ACTIVATIONS, get_activation
from .layers import INFERENCE, Context, Layer, Sequential, as_layer, layer_from_config, walk
from .layers.base import check_declared_names, check_host_arrays, check_rebuildable, check_step_arrays, other_library
from .layers.containers import takes_potential
from .layers.dense import Dense
from .losses import Loss, _Weighted, checked_delta, declared_fusion, get_loss, value_and_delta
from .modelfile import model_metadata, model_tensors, write_atomic
from .records import check_figure
from .validation import (
    DeferredChecks,
    _overflow_message,
    as_features,
    as_numeric,
    as_targets,
    one_hot,
    positive,
    queue_loss_targets,
    queue_output_check,
    refuse_traced,
    sum_not_finite,
)  # fmt: skip

__all__ = ["CHUNK_VALUES", "DTYPES", "MLP", "Network", "check_dtype"]

#: Inference runs in chunks of rows holding about this many values in the
#: widest of the input and the layers' outputs (2 MiB in float32): large
#: enough for efficient matrix products and few Python calls per row, small
#: enough that memory does not grow with the data and that the allocator
#: keeps reusing the same memory.
#: At 2**22 values (16 MiB) each chunk's arrays were mapped from the kernel
#: and faulted in afresh in some calls: 1M rows x 50 features, 50-256-256-10,
#: one core: NumPy 1.87 s against 1.25 s at 2**19, torch 2.2-3.8 s against 2.1.
CHUNK_VALUES = 2**19
#: On a GPU a chunk holds this many times more: there each operation on a
#: chunk is a kernel launch, and at 2**22 values (61 chunks of 1M rows at
#: width 256) the launches cost xpnet 1.8x torch's one-piece ``no_grad``
#: time on an H100; 2**25 values is 128 MiB per layer in float32.
GPU_CHUNK_FACTOR = 64
#: Host class labels become one-hot rows on the host (which then move with
#: the other inputs: nothing to compile or dispatch on the device) unless
#: the rows would take more than this; then the labels move and the device
#: encodes them.
HOST_ONE_HOT_BYTES = 2**27

#: The context of ``gradients`` and ``gradcheck``: training behaviour
#: (batch statistics), and no random source, so Dropout is the identity and
#: the gradient is of a deterministic function.
_GRADIENT_CONTEXT = Context(training=True)


def check_dtype(dtype: Any) -> str:
    """``"float32"`` or ``"float64"`` from any spelling (see :mod:`xpnet._dtypes`)."""
    return dtype_name(dtype)


class Network:
    """A feed-forward chain of layers (:class:`~xpnet.layers.Layer`).

    ``layers``: layers such as :class:`~xpnet.Dense`, containers, or
    activation names. ``backend`` is a name or a :class:`Backend` (default:
    auto), ``dtype`` float32 or float64 (the name or a library's dtype),
    ``seed`` an int for reproducible initial weights (the same on every
    backend) or ``None``.
    """

    def __init__(
        self,
        layers: Iterable[Any],
        *,
        backend: str | Backend | None = None,
        dtype: Any = "float32",
        seed: int | None = None,
    ) -> None:
        root = _root_of(layers)
        backend = get_backend(backend)
        dtype = check_dtype(dtype)
        rng = host_rng(seed)
        params = root.init_parameters(rng, dtype)  # fixed draw order: layer by layer, W then b
        check_host_arrays(root, params, root.parameter_shapes(), "init_parameters")
        buffers = root.init_buffers(dtype)
        check_host_arrays(root, buffers, root.buffer_shapes(), "init_buffers")
        self._setup(root, backend, dtype)
        self._commit([backend.asarray(p, dtype) for p in params.values()],
                     [backend.asarray(b, dtype) for b in buffers.values()])  # fmt: skip

    def _setup(self, root: Sequential, backend: Backend, dtype: str) -> None:
        backend.dtype(dtype)  # refuses float64 where the backend would compute it in float32 (JAX without x64)
        self._root = root
        self._lock = threading.RLock()  # a commit and a predict in other threads: one epoch's arrays, not a mix
        self._fitting = threading.Lock()  # held by a fit: a second one at once is refused (see training.fit)
        self.backend = backend
        self.dtype = dtype
        #: JSON-able facts saved with the model (the CLI stores feature names here).
        self.info: dict[str, Any] = {}
        root._bind(backend, dtype)
        self._step_arrays_checked = False  # the first step's gradients and buffers: see _loss_and_grads
        self._takes_potential = takes_potential(root)  # may a fused delta enter the last layer (see _loss_and_grads)
        for k, layer in enumerate(walk(root)):
            layer.stream = k
        #: The random streams of the layers that draw in training (Dropout), and whether there are any.
        self._rng_streams = tuple(layer.stream for layer in walk(root) if layer.uses_rng)
        self._uses_rng = bool(self._rng_streams)
        check_declared_names(root)
        decayed = set(root.decayed())
        self._decay = [name in decayed for name in root.parameter_shapes()]

    @classmethod
    def _assemble(cls, configs: Sequence[dict], backend: Backend, dtype: str, params: Sequence[Any], buffers: Sequence[Any] = ()) -> Network:
        """A network with given parameters (``to``, ``load``): nothing is drawn."""
        root = _root_of(layer_from_config(c) for c in configs)
        net = cls.__new__(cls)
        net._setup(root, backend, dtype)
        net._commit(list(params), list(buffers))
        return net

    @property
    def layers(self) -> list[Layer]:
        """The layers, in order (read-only: see :class:`~xpnet.layers.containers.FixedLayers`)."""
        return self._root.layers

    # -- shape ---------------------------------------------------------------

    @property
    def n_in(self) -> int:
        """The number of input features (columns of ``X``)."""
        return self._root.input_width()

    @property
    def n_out(self) -> int:
        """The number of outputs (columns of ``predict``'s result)."""
        return self._root.output_width(self.n_in)

    def config(self) -> list[dict[str, Any]]:
        """The architecture as plain data (saved with the model)."""
        return [layer.spec() for layer in self.layers]

    def _rebuild_config(self) -> list[dict[str, Any]]:
        """:meth:`config` for what rebuilds the network from it (a copy, a
        move, pickle, a file): refused where a name would not bring back the
        class that was trained."""
        check_rebuildable(self._root)
        return self.config()

    # -- parameters: read as one list, committed in one place ----------------

    def _named_params(self) -> dict[str, Any]:
        """The parameters by the names files use (``layers.0.weight``)."""
        return {f"parameter layers.{name}": p for name, p in zip(self._root.parameter_shapes(), self._params())}

    def _params(self) -> list[Any]:
        return self._root._all_params()

    def _buffers(self) -> list[Any]:
        return self._root._all_buffers()

    def _arrays(self) -> tuple[list[Any], list[Any]]:
        """Parameters and buffers as one commit left them (another thread's
        fit replaces them layer by layer)."""
        with self._lock:
            return self._params(), self._buffers()

    def _commit(self, params: Sequence[Any], buffers: Sequence[Any] | None = None) -> None:
        """The only place a trained network's parameters and buffers are replaced."""
        with self._lock:
            self._root._set(params, self._buffers() if buffers is None else buffers)

    def _decay_mask(self) -> list[bool]:
        """Per parameter: does weight decay apply (weights yes; biases, norms no)?"""
        return list(self._decay)

    def _parameter_names(self) -> list[str]:
        """``layers.<i>.<name>`` per parameter, as model files name them."""
        return [f"layers.{name}" for name in self._root.parameter_shapes()]

    def _buffer_names(self) -> list[str]:
        return [f"layers.{name}" for name in self._root.buffer_shapes()]

    # -- inference -----------------------------------------------------------

    @own_broadcasting
    def forward(self, X: Any, batch_size: int | None = None) -> Any:
        """Outputs for ``X`` of shape ``(n_samples, n_in)``, as a backend array.

        Computed ``batch_size`` rows at a time (default: :meth:`chunk_rows`)
        without keeping what backprop would need, so memory grows with the
        chunk, not with ``X``; the outputs are those of one piece to rounding
        (every backend's matrix product may depend on the row count: NumPy's
        BLAS multiplies one row or two by other kernels than a block, and in
        float64 their last bits differ)."""
        refuse_traced("Network.predict (forward)", X)
        checks = DeferredChecks(self.backend)
        X = self.backend.asarray(self._features(X, checks=checks))  # checked on the host, if from there
        rows = positive(batch_size, "batch_size", integer=True, allow_none=True)
        with quiet_float_errors():  # NaN/inf inputs or an overflow: reported below, once
            Y = self._predict(*self._arrays(), X, rows)
        if tuple(Y.shape) != (X.shape[0], self.n_out):  # metadata only: a layer's forward broke its declared width
            raise ValueError(f"the layers' forward returned outputs of shape {tuple(Y.shape)} for {X.shape[0]} rows, "
                             f"but they declare {self.n_out} outputs (a layer's output_width)")  # fmt: skip
        _check_output_dtype(Y, self.dtype, self.backend)
        queue_output_check(checks, Y, self.dtype, self._named_params)
        checks.run()  # one transfer: the inputs' checks, then the outputs'
        return Y

    __call__ = forward

    def predict(self, X: Any, batch_size: int | None = None) -> Any:
        """Same as :meth:`forward`: the network's outputs (probabilities after softmax)."""
        return self.forward(X, batch_size)

    def chunk_rows(self, sparse_input: bool = False) -> int:
        """Rows per chunk of inference: about :data:`CHUNK_VALUES` values in
        the widest of the input and the layers' outputs (2048 rows at width
        256, 104 for ``MLP([5000, 10])``; on a GPU :data:`GPU_CHUNK_FACTOR`
        times more), at least 1. A sparse input's width does not count: its
        rows are never made dense."""
        widths = [w for w in self._root._widths[1 if sparse_input else 0 :] if w]
        values = CHUNK_VALUES * (GPU_CHUNK_FACTOR if _on_gpu(self.backend) else 1)
        return max(1, values // max(widths, default=1))

    @own_broadcasting
    def evaluate(self, X: Any, y: Any, loss: str | Loss, batch_size: int | None = None) -> float:
        """The loss of the network on ``(X, y)`` as a Python float; the
        outputs are computed ``batch_size`` rows at a time, as in
        :meth:`predict` (default: :meth:`chunk_rows`), and so is the loss
        (with class labels' one-hot rows): memory holds one chunk's outputs,
        not ``N x n_out`` (see :meth:`_chunked_loss`)."""
        refuse_traced("Network.evaluate", X, y)
        loss = get_loss(loss)
        rows = positive(batch_size, "batch_size", integer=True, allow_none=True)
        checks = DeferredChecks(self.backend)
        X, T, labels = self._queue_inputs(X, y, loss, checks)
        loss = _weights_here(loss, self.backend, self.dtype, X.shape[0], checks)
        checks.run()
        rows = rows or self.chunk_rows(is_sparse(X))
        if X.shape[0] > rows and not isinstance(loss, _Weighted):  # its weights are N rows: whole
            with quiet_float_errors():
                total = self._chunked_loss(self.backend.asarray(X), self.backend.asarray(T), labels, loss, rows)
            if total is not None:
                return total
        return self._whole_loss(self.backend.asarray(X), self.backend.asarray(self._one_hot_if(T, labels)), loss, rows)

    def _whole_loss(self, X: Any, T: Any, loss: Loss, rows: int) -> float:
        """:meth:`evaluate`'s loss on all outputs at once (one chunk, or the
        outputs' check failed in chunks: its error, or its false alarm cleared)."""
        value = _evaluate_value(loss, self.backend.xp)
        with quiet_float_errors():
            Y = self._predict(*self._arrays(), X, rows)  # in chunks: inference's programs on JAX
            checks = DeferredChecks(self.backend)
            queue_output_check(checks, Y, self.dtype, self._named_params)  # an overflow: predict's error, not a loss
            checks.run()
            # On JAX the loss as one small program, not a compile and a dispatch per operation.
            program = keyed_program(self.backend, ("evaluate", *program_key(loss)), value)
            return float(self.backend.to_numpy(program(T, Y, held_arrays(self.backend, loss))))

    def _chunked_loss(self, X: Any, T: Any, labels: bool, loss: Loss, rows: int) -> float | None:
        """The loss, ``rows`` at a time: per chunk its value times its row
        count for a ``reduction="mean"`` loss (as to split it across
        processes) and a quick finite check of its outputs, one program on
        JAX; all fetched in one transfer, summed on the host. ``None`` if a
        check failed: :meth:`_whole_loss` then names the error (or clears it)."""
        forward, params, buffers = inference(self, INFERENCE), *self._arrays()
        key = ("evaluate_rows", labels, *program_key(loss))
        program = keyed_program(self.backend, key, _rows_loss(loss, self.backend.xp, labels))
        n, parts, held = X.shape[0], [], held_arrays(self.backend, loss)
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            Y = forward(params, buffers, row_range(X, lo, hi))
            parts += program(row_range(T, lo, hi), Y, held)
        got = self.backend.to_host(parts)
        if any(bool(bad) for bad in got[1::2]):
            return None
        total = math.fsum(float(v) for v in got[::2])
        return total / n if loss.reduction == "mean" else total

    @own_broadcasting
    def gradients(self, X: Any, y: Any, loss: str | Loss) -> list[tuple[Any, ...]]:
        """One tuple per layer, in its parameter order (``(dW, db)`` for
        :class:`Dense`, ``db`` ``None`` without a bias): the gradient of
        ``loss.value`` on this batch, in training mode without Dropout.

        Except where the loss clips a saturated output: a sigmoid output
        with binary_cross_entropy, or softmax with cross_entropy, gets the
        fused ``(y - t)`` delta, the derivative of the unclipped loss. Where
        ``y`` is clipped (into ``[eps, 1 - eps]``; cross_entropy only below)
        the value is flat, but ``(y - t)`` still pulls a wrong output back,
        as training needs (``fit`` uses the same delta)."""
        refuse_traced("Network.gradients", X, y)
        X, T, loss = self._weighted_inputs(X, y, get_loss(loss))
        params, buffers = self._arrays()  # one commit's, as predict (another thread may be fitting)
        with quiet_float_errors():
            _, grads, _ = self._loss_and_grads(params, X, T, loss, buffers)
        out, i = [], 0
        for layer in self.layers:
            n = len(layer.parameter_shapes())
            out.append(layer.named_gradients(grads[i : i + n]))
            i += n
        return out

    # -- conversion ------------------------------------------------------------

    def to(self, backend: str | Backend, device: Any = None, dtype: Any = None) -> Network:
        """A copy of this network on another backend/device, and in ``dtype``
        if given (a float64 network to JAX in its 32-bit mode needs
        ``dtype="float32"``); this one is untouched."""
        target = get_backend(backend, device)
        dtype = self.dtype if dtype is None else check_dtype(dtype)
        target.dtype(dtype)  # a dtype the target cannot hold is named before anything is copied
        params, buffers = self._arrays()  # one commit's, not a mix with another thread's fit
        with quiet_float_errors():  # an overflowing cast is named below
            params = [target.asarray(p, dtype, copy=True) for p in params]
            buffers = [target.asarray(b, dtype, copy=True) for b in buffers]
        if np.dtype(dtype).itemsize < np.dtype(self.dtype).itemsize:
            self._refuse_overflow(target, dtype, params, buffers)
        net = type(self)._assemble(self._rebuild_config(), target, dtype, params, buffers)
        net.info = dict(self.info)
        fit_state = self._moved_fit_state(target, dtype)
        if fit_state is not None:  # fit(warm_start=True) on the copy continues the run, as after pickle
            net._fit_state = fit_state
        return net

    def _refuse_overflow(self, target: Backend, dtype: str, params: list[Any], buffers: list[Any]) -> None:
        """Refuse a narrowing copy whose (finite) values became inf: a BatchNorm
        variance of 1e40 would normalise every row to 0 in float32, silently."""
        checks, xp = DeferredChecks(target), target.xp
        for kind, names, arrays in (("parameter", self._parameter_names(), params),
                                    ("buffer", self._buffer_names(), buffers)):  # fmt: skip
            for name, a in zip(names, arrays):
                checks.add(xp.any(xp.isinf(a)), _overflow_message(f"Network.to: {kind} {name!r}", dtype))
        checks.run()

    def _moved_fit_state(self, backend: Backend, dtype: str) -> tuple[Any, dict[str, Any]] | None:
        """The optimizer state this network's last ``fit`` left (what
        ``warm_start`` continues), copied onto ``backend`` in ``dtype``."""
        fit_state = getattr(self, "_fit_state", None)
        if fit_state is None:
            return None
        opt, state = fit_state
        move = lambda a: backend.asarray(a, dtype, copy=True)  # noqa: E731
        with quiet_float_errors():  # a narrowing cast's overflow: named by fit(warm_start=True), which would use it
            return opt, {k: _state_value(v, move) for k, v in state.items()}

    def _astype(self, dtype: Any) -> Network:
        """A copy in another dtype on the same backend (``gradcheck`` uses float64)."""
        return self.to(self.backend, dtype=dtype)

    # -- pickling: through the state, never module objects ----------------------

    def __getstate__(self) -> dict[str, Any]:
        """Config, host copies of the arrays and the backend's name and device:
        what ``pickle``, ``copy.deepcopy`` and joblib need, and nothing
        that holds a module."""
        from ._backend import to_numpy

        params, buffers = self._arrays()  # one commit's, not a mix with another thread's fit
        return {
            "config": self._rebuild_config(),
            "backend": self.backend.name,
            "device": device_spec(self.backend),
            "dtype": self.dtype,
            "params": [np.array(to_numpy(p)) for p in params],
            "buffers": [np.array(to_numpy(b)) for b in buffers],
            "info": self.info,
            "fit_state": _host_fit_state(getattr(self, "_fit_state", None)),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        backend = backend_for_unpickling(state["backend"], state["device"])
        other = Network._assemble(
            state["config"], backend, state["dtype"],
            [backend.asarray(p) for p in state["params"]], [backend.asarray(b) for b in state["buffers"]],
        )  # fmt: skip
        self.__dict__.update(other.__dict__)
        self.info = state["info"]
        fit_state = state.get("fit_state")
        if fit_state is not None:  # the optimizer state that fit(warm_start=True) continues
            opt, arrays = fit_state
            self._fit_state = (opt, {k: _state_value(v, backend.asarray) for k, v in arrays.items()})

    # -- training, saving ------------------------------------------------------

    #: Train on ``(X, y)``: :func:`xpnet.training.fit`, bound as a method so
    #: that ``help(net.fit)`` shows its signature and documentation.
    fit = _training.fit

    def save(self, path: Any) -> None:
        """Write weights, buffers, architecture and dtype to a safetensors file
        (atomically; :func:`xpnet.load` reads it)."""
        write_atomic(path, model_tensors(self), model_metadata(self))

    # -- input conversion --------------------------------------------------------

    def _features(self, X: Any, what: str = "X", checks: DeferredChecks | None = None) -> Any:
        """``X`` checked (queued on ``checks``, else run now), where it came
        from: host data stays on the host for the caller to move once."""
        X = as_features(self.backend, X, self.dtype, self.n_in, what, host=True)
        if is_sparse(X) and not isinstance(self.layers[0], Dense):
            raise TypeError(
                f"{what} is a SciPy sparse matrix, which only a Dense first layer multiplies as it is; this network "
                f"starts with {type(self.layers[0]).__name__}: pass it dense (its .toarray(), if that fits in memory)"
            )
        run = checks is None
        checks = checks or DeferredChecks(self.backend)
        checks.finite(X, what)
        if run:
            checks.run()
        return X

    def _inputs(self, X: Any, y: Any, loss: Loss) -> tuple[Any, Any]:
        """``(X, T)`` converted once, value-checked in one transfer, labels one-hot."""
        X, T, _ = self._weighted_inputs(X, y, loss)
        return X, T

    def _weighted_inputs(self, X: Any, y: Any, loss: Loss) -> tuple[Any, Any, Loss]:
        """:meth:`_inputs` and ``loss``, a ``loss.weighted(w)``'s weights
        moved and checked with them (:func:`_weights_here`)."""
        checks = DeferredChecks(self.backend)
        X, T, labels = self._queue_inputs(X, y, loss, checks)
        loss = _weights_here(loss, self.backend, self.dtype, X.shape[0], checks)
        checks.run()
        return self.backend.asarray(X), self.backend.asarray(self._one_hot_if(T, labels)), loss

    def _queue_inputs(self, X: Any, y: Any, loss: Loss, checks: DeferredChecks, what: str = "") -> tuple[Any, Any, bool]:
        """Convert ``X`` and ``y`` and queue their value checks on ``checks``;
        the caller runs them, then calls :meth:`_one_hot_if`, then moves
        them (host data stays on the host until then: ``backend.asarray``)."""
        self._check_loss_fits(loss)
        X = self._features(X, f"{what}X", checks)
        T, labels = as_targets(
            self.backend, y, self.dtype, X.shape[0], self.n_out, self._uses_labels(loss), checks, f"{what}y",
            f"{what}X", host=True,
        )  # fmt: skip
        queue_loss_targets(checks, T, loss, labels, f"{what}y")
        return X, T, labels

    def _check_loss_fits(self, loss: Loss) -> None:
        if loss.class_targets == "classes" and self.n_out == 1:
            raise ValueError(
                f"{loss.name} needs one output per class (softmax over n_out >= 2); this network has one output: "
                "use loss='binary_cross_entropy' with a sigmoid output for two classes"
            )

    def _one_hot_if(self, T: Any, labels: bool) -> Any:
        """One-hot rows for labels, made where the labels are; host labels
        whose rows would exceed :data:`HOST_ONE_HOT_BYTES` move first."""
        if not labels:
            return T
        size = T.shape[0] * self.n_out * np.dtype(self.dtype).itemsize
        if isinstance(T, np.ndarray) and size > HOST_ONE_HOT_BYTES:
            T = self.backend.asarray(T)
        return one_hot(self.backend, T, self.n_out, self.dtype)

    def _uses_labels(self, loss: Loss) -> bool:
        return loss.class_targets == "classes" and self.n_out > 1

    # -- internals: pure functions of parameter and buffer lists ---------------

    def _predict(self, params: Sequence[Any], buffers: Sequence[Any], X: Any, rows: int | None = None) -> Any:
        """Inference outputs (no caches kept, buffers unchanged), ``rows`` at
        a time (default :meth:`chunk_rows`), concatenated."""
        forward = inference(self, INFERENCE)
        rows = rows or self.chunk_rows(is_sparse(X))
        n = X.shape[0]
        if n <= rows:
            return forward(params, buffers, X)
        parts = [forward(params, buffers, row_range(X, i, min(i + rows, n))) for i in range(0, n, rows)]
        return self.backend.xp.concat(parts, axis=0)

    def _loss_and_grads(
        self, params: Sequence[Any], X: Any, T: Any, loss: Loss, buffers: Sequence[Any] | None = None,
        ctx: Context = _GRADIENT_CONTEXT,
    ) -> tuple[Any, list[Any], list[Any]]:  # fmt: skip
        """Forward, loss value (a 0-d device array) and backprop: the delta rule.

        Returns ``(value, grads, buffers)``. The output delta is the fused
        ``(y - t)`` form when the loss pairs with the last layer's output
        activation (softmax + cross-entropy), else the loss gradient goes
        back through every layer's ``backward``."""
        xp, root = self.backend.xp, self._root
        Y, cache, new_buffers = root.forward(xp, params, self._buffers() if buffers is None else buffers, X, ctx)
        first = not self._step_arrays_checked
        if first:
            _check_outputs(loss, Y, None, (X.shape[0], self.n_out), self.backend)
            _check_output_dtype(Y, self.dtype, self.backend)
        act = root.output_activation()
        fused = self._takes_potential and _fuses(loss, act)
        value, delta = value_and_delta(loss, xp, T, Y, fused)
        if first:
            _check_outputs(loss, Y, delta, (X.shape[0], self.n_out), self.backend, value)
        backward = root.backward_from_potential if fused else root.backward
        _, grads = backward(xp, params, cache, delta, False)
        if not self._step_arrays_checked:  # shapes and dtypes: the same in every later step
            check_step_arrays(root, params, grads)
            check_step_arrays(root, self._buffers() if buffers is None else buffers, new_buffers, "new buffer")
            self._step_arrays_checked = True
        return value, grads, new_buffers

    def _loss_value(self, params: Sequence[Any], X: Any, T: Any, loss: Loss, ctx: Context = _GRADIENT_CONTEXT) -> Any:
        """The loss alone (``gradcheck``'s finite differences), in ``ctx``."""
        Y = self._root.forward(self.backend.xp, params, self._buffers(), X, ctx)[0]
        return loss._value(self.backend.xp, T, Y)

    # -- description -----------------------------------------------------------

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"{type(self).__name__}([{inner}], backend={self.backend.name!r}, dtype={self.dtype!r})"

    def summary(self) -> str:
        """A table of layers, widths and parameter counts."""
        rows = [f"{type(self).__name__} on {self.backend.name} ({self.backend.device}, {self.dtype})"]
        total, n = 0, self.n_in
        for i, layer in enumerate(self.layers):
            count = sum(int(np.prod(s)) for s in layer.parameter_shapes().values())
            total += count
            n_next = layer.output_width(n)
            rows.append(f"  {i}: {layer!r}  {n} -> {n_next}  params {count}")
            n = n_next
        rows.append(f"  total parameters: {total}")
        return "\n".join(rows)


def _check_outputs(loss: Loss, Y: Any, delta: Any | None, shape: tuple[int, int], backend: Backend,
                   value: Any = None) -> None:  # fmt: skip
    """At a fit's first step: the layers give the outputs they declare, and
    the loss a delta of their shape and a value and delta of their library
    (else a later layer's check would blame the wrong one, predict return
    fewer columns without a word, or a NumPy delta or value fail in torch's
    matmul or its report, naming nothing)."""
    if tuple(Y.shape) != shape:
        raise ValueError(f"the layers' forward returned outputs of shape {tuple(Y.shape)}, but they declare "
                         f"{shape} ({shape[1]} outputs): a layer's forward must give the width its output_width says")
    if delta is not None:
        checked_delta(loss, delta, shape)
        for what, array in (("its value", value), ("a gradient", delta)):
            other = other_library(backend, array) if hasattr(array, "shape") else None  # a float: check_figure's
            if other:
                raise ValueError(f"the loss {loss.name or type(loss).__name__!r} gave {what} as {other}")


def _check_output_dtype(Y: Any, dtype: str, backend: Backend) -> None:
    """The outputs in the network's library and dtype (metadata only): a
    layer whose forward casts would make predict hand back float64 from a
    float32 network (or NumPy from a torch one), and fit blame the gradient
    of an earlier layer (or fail in the loss)."""
    other = other_library(backend, Y)
    if other:
        raise ValueError(f"the layers' forward returned outputs as {other}")
    got = str(Y.dtype).rsplit(".", 1)[-1]
    if got != dtype:
        raise ValueError(f"the layers' forward returned outputs of dtype {got} in a {dtype} network: every layer's "
                         "forward must keep the network's dtype (a cast, or an array of another dtype multiplied in)")


def _fuses(loss: Loss, act: Any) -> bool:
    """Does ``loss``'s combined delta with the output activation apply? Only
    where the loss's own class (or the loss object itself) declares
    ``fused_with``, and the activation is the class registered under that
    name: a subclass that changes a loss's ``_gradient`` or an activation's
    formula, and keeps its parent's names, must go through its own code."""
    name = declared_fusion(loss)
    return name is not None and act is not None and _is_registered_as(act, name) and _same_author(loss, act)


def _is_registered_as(act: Any, name: str) -> bool:
    return act.name == name and type(act) is ACTIVATIONS.get(name)


def _same_author(loss: Loss, act: Any) -> bool:
    """xpnet's own losses fuse only with xpnet's own activations: a class
    registered over ``softmax`` (``replace=True``) computes another
    function, for which ``y - t`` is not the delta. A user's loss declaring
    a fusion vouches for whatever is registered under the name."""
    author = getattr(loss, "wraps", type(loss))  # a weighted or rescaled loss: the author of the one inside
    return not _ours(author) or _ours(type(act))


@functools.cache
def _ours(cls: type) -> bool:  # asked every step: once per class
    return cls.__module__.split(".", 1)[0] == "xpnet"


def _has_state(layer: Layer) -> bool:
    """Parameters, buffers or a random stream of its own (a stateless layer,
    an activation, may appear in several places)."""
    return bool(layer.parameter_shapes() or layer.buffer_shapes() or layer.uses_rng)


def _root_of(layers: Iterable[Any]) -> Sequential:
    """The network's layers as one checked chain."""
    if isinstance(layers, Layer | str):
        raise TypeError("Network takes a list of layers, e.g. Network([Dense(2, 2), Dense(2, 1)])")
    layers = [as_layer(item) for item in layers]
    if not layers:
        raise ValueError("a Network needs at least one layer, got none")
    seen: set[int] = set()
    for i, layer in enumerate(layers):
        for inner in walk(layer):
            if "_backend" not in vars(inner):
                raise TypeError(f"{type(inner).__name__}.__init__ must call super().__init__(): Layer.__init__ "
                                "sets up the state a network fills in")  # fmt: skip
            if id(inner) in seen and _has_state(inner):  # two slots of one layer's parameters: one update lost
                raise ValueError(f"{inner!r} appears twice in this network; layers do not share weights: create "
                                 "a new layer for each place")  # fmt: skip
            seen.add(id(inner))
        if any(inner.built for inner in walk(layer)):
            raise ValueError(
                f"layer {i} ({layer!r}) already belongs to a network; create a new layer for each network"
            )
    root = Sequential(layers)
    if root.input_width() is None:
        raise ValueError(
            f"no layer fixes the number of input features (the first is {layers[0]!r}); put a layer that does, "
            "such as Dense(n_in, n_out), first or after layers that keep the width (Dropout, an activation)"
        )
    return root


def _host_fit_state(fit_state: Any) -> Any:
    """The optimizer and its state after the last ``fit``, arrays copied to the host."""
    if fit_state is None:
        return None
    from ._backend import to_numpy

    opt, state = fit_state
    return opt, {k: _state_value(v, lambda a: np.array(to_numpy(a))) for k, v in state.items()}


def _state_value(value: Any, convert: Any) -> Any:
    """An optimizer state entry with its arrays (a list of them, or one)
    converted; Python numbers (a step count) stay as they are."""
    import array_api_compat

    if isinstance(value, list):
        return [convert(a) for a in value]
    return convert(value) if array_api_compat.is_array_api_obj(value) else value


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
        dtype: Any = "float32",
        seed: int | None = None,
    ) -> None:
        if isinstance(sizes, str) or not isinstance(sizes, Iterable):  # MLP(5): "'int' object is not iterable"
            raise TypeError(f"MLP takes a list of layer sizes, input first (e.g. [64, 128, 10]), got {sizes!r}")
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least an input and an output size, got sizes={sizes}")
        if len(sizes) == 2:  # no hidden layer takes it: a misspelt name would pass until sizes grew
            get_activation(activation)
        layers = [
            Dense(n_in, n_out, activation if i < len(sizes) - 2 else output_activation, bias)
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))
        ]
        super().__init__(layers, backend=backend, dtype=dtype, seed=seed)


def _on_gpu(backend: Any) -> bool:
    """Does ``backend`` compute on a CUDA (or other non-CPU) device?"""
    device = backend.device
    platform = getattr(device, "platform", None)  # JAX devices
    return backend.name == "cupy" or "cuda" in str(device).lower() or (platform is not None and platform != "cpu")


def _weights_here(loss: Loss, backend: Backend, dtype: str, n: int, checks: DeferredChecks) -> Loss:
    """``loss.weighted(w)`` with its weights ``w`` as ``(n,)`` of the
    model's dtype on its device (a list, NumPy or another library's array
    moved once, as ``X`` is), their finiteness queued on ``checks``: as
    given, they met the outputs of a torch or array-api-strict network in
    that library's words ("unsupported operand type(s) for *"), and a
    wrong length in a broadcasting error. Other losses as they are."""
    if not isinstance(loss, _Weighted):
        return loss
    what = "the weights of loss.weighted(w)"
    w = as_numeric(backend, loss.w, dtype, what)
    if tuple(w.shape) != (n,):
        raise ValueError(f"{what} must hold one weight per row of X, shape ({n},), got shape {tuple(w.shape)}")
    checks.finite(w, what)
    return _Weighted(_weights_here(loss.base, backend, dtype, n, checks), w)


def _evaluate_value(loss: Loss, xp: Any) -> Any:
    """``(T, Y, held) -> loss._value``, checked to be one number (a 0-d
    array); ``held``: the loss's arrays (its weights), the program's
    arguments (:func:`~xpnet._programs.held_arrays`)."""

    def value(T: Any, Y: Any, held: dict[str, Any]) -> Any:
        bound = holding(loss, held)
        return check_figure(bound._value(xp, T, Y), f"loss {loss.name or type(loss).__name__!r}: its _value")

    return value


def _rows_loss(loss: Loss, xp: Any, labels: bool) -> Any:
    """``(T, Y, held) -> [value x rows (for a mean) or value, outputs not finite?]``
    of one chunk, labels one-hot encoded first: all read from the arrays, as
    a :func:`keyed_program` needs (its key names ``loss`` and ``labels``)."""
    value = _evaluate_value(loss, xp)

    def rows_loss(T: Any, Y: Any, held: dict[str, Any]) -> list[Any]:
        if labels:
            T = xpx.one_hot(xp.astype(T, index_dtype(xp)), Y.shape[1], dtype=Y.dtype, xp=xp)
        out = value(T, Y, held)
        return [out * Y.shape[0] if loss.reduction == "mean" else out, sum_not_finite(Y)]

    return rows_loss
