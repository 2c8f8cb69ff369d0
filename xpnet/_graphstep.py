"""Recorded training steps: captured once per batch shape, then replayed.

A small network's step costs more in launches (GPU) or in Python (CPU) than
in arithmetic. :class:`GraphStep` captures the step as a CUDA graph on
torch, :class:`BridgedGraphStep` a CuPy network's through torch and DLPack,
and :class:`TapeStep` records a NumPy step as a flat list of calls
(:mod:`xpnet._tape`). Each works on static buffers it owns, copies in what
the loop passes, and runs the eager :class:`xpnet._trainstep.TrainStep`
for a step it cannot take.
"""

from __future__ import annotations

import contextlib
import gc
import math
import operator
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._device_random import TracedRandom, UnknownStream, step_words
from ._inplace import _layout_key
from ._kernels import Donated, _mode, _Scalars, host_scalars
from ._programs import held_arrays
from ._tape import static_arrays
from ._trainstep import Rows, TrainStep, _own_arrays, _state_lists, averaging_one, take_rows
from ._warnings import caller_stacklevel
from .layers.base import check_rebuildable

__all__ = ["BridgedGraphStep", "GraphStep", "TapeStep", "bridged_step", "tape_step"]


class _TorchArrays:
    """How :class:`GraphStep` copies torch tensors (:class:`xpnet._tape.NumpyArrays` for NumPy)."""

    @staticmethod
    def clone(a: Any) -> Any:
        return a.clone()

    @staticmethod
    def own(arrays: Sequence[Any], held: set[int]) -> bool:
        return _own_arrays(arrays, held)

    @staticmethod
    def copy(dst: Any, src: Any) -> None:
        dst.copy_(src)

    @staticmethod
    def slots(like: Any, n: int) -> Any:
        return like.new_zeros((n,))

    @staticmethod
    def fill(slots: Any, values: list[float]) -> None:
        import torch

        # pinned host memory: the copy does not wait for the stream
        slots.copy_(torch.tensor(values, dtype=slots.dtype, pin_memory=slots.is_cuda), non_blocking=True)

    @staticmethod
    def words(like: Any, words: np.ndarray) -> Any:
        """A static tensor for a step's random key words, by ``like``: int64,
        as torch's uint32 has no shifts (:class:`xpnet._device_random.TracedRandom`
        takes the same words from either)."""
        return like.new_zeros(words.shape, dtype=_torch().int64)

    @staticmethod
    def put_words(dst: Any, words: np.ndarray) -> None:
        # torch.tensor(ndarray, pin_memory=True) is refused ("Can't pin tensor constructed from numpy")
        host = _torch().from_numpy(words.astype(np.int64))
        dst.copy_(host.pin_memory() if dst.is_cuda else host, non_blocking=True)


def _torch() -> Any:
    import torch

    return torch


class GraphStep(TrainStep):
    """The whole step captured once per batch shape and replayed
    (``torch.cuda.CUDAGraph``): one launch instead of one per operation.

    The graph works on static buffers: parameters, buffers and optimizer
    state live in tensors it owns (the update writes them in place), the
    minibatch is copied into static inputs, and the optimizer's scalars into
    a static vector filled from the host each step
    (:func:`xpnet._kernels.host_scalars`). Arrays the loop passes in that
    are not those buffers (the network's committed weights, a kept epoch's)
    are copied in, never written; with ``keep`` the step returns copies, so
    a later replay cannot change what the loop keeps. Row weights are a
    static input too (each minibatch's, scaled inside the graph as JAX's
    program does), and so are a Dropout step's random key words (as
    :class:`xpnet._device_random.TracedRandom` reads them). ``graph``
    makes the graph (a class with ``capture(fn)`` and ``replay()``): the
    CUDA one, or a stand-in in the CPU tests."""

    mode = "cuda graph"
    #: How the static arrays are copied and filled.
    _arrays: Any = _TorchArrays

    def __init__(self, eager: TrainStep, graph: Any, warn: bool = False) -> None:
        """``warn``: say why a step runs eagerly (``compile=True`` asked for the graph)."""
        self.__dict__.update(eager.__dict__)
        self._graph_kind, self._warn = graph, warn
        self._graphs: dict[tuple, Any] = {}
        self._static: dict[str, Any] | None = None
        self._returned: list[Any] = []  # the copies handed out with keep, equal to the static parameters
        self._filled: list[float] | None = None  # the scalars in the static vector
        self._memo: tuple | None = None  # the last host_scalars call
        self._spares: dict[tuple, list[Any]] = {}  # superseded kept parameters by layout (reuse)
        self._draws_eagerly = False  # a layer read its random source's key or step
        self._loss_arrays: list[tuple[str, Any]] | None = None  # the loss's arrays the recordings hold

    def __call__(self, params, buffers, state, X, T, ctx=None, *, loss=None, opt=None, donate=False, keep=False):
        step_ctx, words = self._drawn(ctx)
        if not self._compiles(step_ctx, loss, opt):
            return self._eager(params, buffers, state, X, T, ctx, loss, opt, keep)
        return self._run(params, buffers, state, (X, T), ctx, opt or self.opt, keep, words)

    def new_epoch(self) -> None:
        """See :meth:`TrainStep.new_epoch`: a recording holds the loss's
        arrays (:func:`~xpnet._programs.held_arrays`) as they were when it was
        made; where a callback gave the loss others since, the recordings are
        dropped, made again on first use. Kept, they trained on with the old
        arrays, where the eager step reads the loss as it is."""
        now = list(held_arrays(self.net.backend, self.loss).items())
        old, self._loss_arrays = self._loss_arrays, now
        if old is not None and (len(old) != len(now) or any(a != b or x is not y for (a, x), (b, y) in zip(old, now))):
            self._forget_recordings()

    def callbacks_ran(self) -> None:
        """The parameters it returned with ``keep`` are copied in again: a
        callback may have written them in place (``w *= 0.5``), and the static
        ones, taken as their equal, trained on from before the edit."""
        self._returned = []

    def _forget_recordings(self) -> None:
        self._graphs.clear()

    def step_rows(self, params, buffers, state, rows, total, ctx=None, *, loss=None, opt=None, donate=False,
                  keep=False):  # fmt: skip
        """Weighted rows too: their weights are one more input of the graph
        (a weighted loss per minibatch would leave the graph's own loss)."""
        step_ctx, words = self._drawn(ctx)
        if not self._compiles(step_ctx, loss, opt):
            return TrainStep.step_rows(self, params, buffers, state, rows, total, ctx, loss=loss, opt=opt,
                                       donate=donate, keep=keep)  # fmt: skip
        params, buffers, state, value = self._run(params, buffers, state, self._rows_batch(rows), ctx,
                                                  opt or self.opt, keep, words)  # fmt: skip
        return params, buffers, state, value if total is None else total + value

    def _drawn(self, ctx):
        """``(ctx, None)``, or for a step's own random source (Dropout's) the
        construction's context and the source's key words, an input of the
        graph (:func:`xpnet._device_random.step_words`); a layer that asked
        the graph's source for more than those words draws eagerly."""
        if self._draws_eagerly:
            return ctx, None
        return step_words(ctx, self.ctx, self.net._rng_streams)

    def _rows_batch(self, rows):
        return _batch(self.rows_xp, rows)

    def _run(self, params, buffers, state, batch, ctx, opt, keep, words):
        """The graph's step, or the eager one where a layer reads its random
        source's key or step (which the graph's key words do not hold)."""
        try:
            return self._replayed(params, buffers, state, batch, opt, keep, words)
        except UnknownStream as exc:
            if words is None:
                raise
            self._draws_eagerly = True
            if self._warn:
                warnings.warn(f"xpnet: compile=True cannot capture this step in a CUDA graph ({exc}); it runs eagerly",
                              RuntimeWarning, stacklevel=caller_stacklevel())  # fmt: skip
            return self._eager(params, buffers, state, *batch[:2], ctx, _loss_of(self, batch), opt, keep)

    def _replayed(self, params, buffers, state, batch, opt, keep, words=None):
        """The step by the graph of this batch's shapes (captured on first
        use); ``batch``: ``(X, T)``, or ``(X, T, W)`` with the rows' weights;
        ``words``: the step's random key words (Dropout) or ``None``."""
        host = {k: v for k, v in state.items() if type(v) is not list}
        seen, host_out = self._host_scalars(opt, host, state)
        st = self._static
        if st is None:
            st = self._static = self._make_static(params, buffers, state, len(seen))
        if len(seen) != st["slots"].shape[0]:
            raise RuntimeError("the optimizer's scalars changed in number since the step was captured")
        self._take_in(params, buffers, state, st)
        if seen != self._filled:  # the scalars' memory keeps the last step's until they change
            self._arrays.fill(st["slots"], seen)
            self._filled = seen
        graph, out = self._inputs(batch, words)
        graph.replay()
        params_out, buffers_out = list(st["params"]), list(st["buffers"])
        if keep:
            params_out, buffers_out = self._kept(params_out, buffers_out)
        self._returned = params_out if keep else []
        if st["state"]:
            host_out = {**host_out, **{k: list(v) for k, v in st["state"].items()}}
        return params_out, buffers_out, host_out, self._arrays.clone(out["value"])

    def _take_in(self, params, buffers, state, st):
        """Copy into the static arrays what the loop passes that is not them
        (the network's weights at the start, a kept epoch's after a report)."""
        how = self._arrays
        _copy_in(how, st["params"], params, skip=_same(params, st["params"]) or _same(params, self._returned))
        if buffers:
            _copy_in(how, st["buffers"], buffers, skip=_same(buffers, st["buffers"]))
        for k, held in st["state"].items():
            _copy_in(how, held, state[k], skip=_same(state[k], held))

    def _kept(self, params, buffers):
        """Copies of the static parameters and buffers that no later replay
        writes: parameters into spare arrays (:meth:`reuse`) where there are."""
        clone = self._arrays.clone
        if not self._spares:  # a small network's (its lookups would cost a tiny step 7%)
            return [clone(p) for p in params], [clone(b) for b in buffers]
        return [self._copy_of(p) for p in params], [clone(b) for b in buffers]

    def _copy_of(self, a):
        spares = self._spares.get(_layout_key(a))
        if not spares:
            return self._arrays.clone(a)
        out = spares.pop()
        self._arrays.copy(out, a)
        return out

    def reuse(self, arrays):
        """Superseded kept parameters take later epochs' copies (see :meth:`xpnet._trainstep.TrainStep.reuse`)."""
        if self._large:
            static = self._static["params"] if self._static is not None else []
            self._keep_spares(arrays, self._spares, busy=[*static, *self._returned])

    def _host_scalars(self, opt, host, state):
        """:func:`xpnet._kernels.host_scalars`, remembered while a built-in optimizer's
        settings (plain numbers) and host state (``host``: ``state`` less its
        arrays) stay the same (plain SGD's every step: the call costs
        microseconds, which a small network's replay feels). Another
        optimizer may keep mutable settings (xpnet.sklearn's batch plan):
        asked every step."""
        if type(opt).__module__ != _OPTIMIZERS_MODULE:  # a class of elsewhere may keep more than plain numbers
            return host_scalars(opt, state)
        memo = self._memo
        if memo is not None and memo[0] is opt and memo[1] == host and memo[2] == vars(opt):
            return memo[3][0], dict(memo[3][1])
        found = host_scalars(opt, state)
        self._memo = (opt, host, dict(vars(opt)), found)
        return found

    def _inputs(self, batch, words=None):
        """The graph of this minibatch's shapes (captured on first use), the
        minibatch (its weights, the step's random key words) copied into its
        static inputs; and its output box."""
        key = (*(tuple(a.shape) for a in batch), words is not None)
        if key not in self._graphs:
            self._graphs[key] = self._capture(batch, words)
        graph, statics, sw, out = self._graphs[key]
        for s, a in zip(statics, batch):
            self._arrays.copy(s, a)
        if sw is not None:
            self._arrays.put_words(sw, words)
        return graph, out

    def update(self, params, grads, state, *, opt=None, donate=False):
        return TrainStep.update(self, params, grads, state, opt=opt)

    def _eager(self, params, buffers, state, X, T, ctx, loss, opt, keep):
        """A step the graph cannot take, eagerly: on copies of the static
        buffers when they are what the loop passes (they must not change
        under a kept array), after which the graph's buffers are stale."""
        static = self._static
        if static is not None and (_same(params, static["params"]) or _same(params, self._returned)):
            params = [self._arrays.clone(p) for p in params]
        out = TrainStep.__call__(self, params, buffers, state, X, T, ctx, loss=loss, opt=opt)
        self._returned = []
        return out

    def _make_static(self, params, buffers, state, n_scalars):
        clone = self._arrays.clone
        return {
            "params": [clone(p) for p in params],
            "buffers": [clone(b) for b in buffers],
            "state": {k: [clone(a) for a in v] for k, v in _state_lists(state).items()},
            "host": {k: v for k, v in state.items() if not isinstance(v, list)},
            "slots": self._arrays.slots(params[0], n_scalars) if params else None,
        }

    def _body(self, X, T, W=None, *, words=None, st=None):
        """The step on the static buffers ``st`` (default: the step's own),
        writing its results into them; ``W``: the rows' weights (``None``:
        equal), scaled here as :meth:`xpnet._trainstep.Rows.weights` does;
        ``words``: the step's random key words (Dropout)."""
        st = self._static if st is None else st
        ctx = self.ctx if words is None else self.ctx._replace(rng=TracedRandom(words, self.net._rng_streams))
        params, buffers = st["params"], st["buffers"]
        state = {**st["host"], **{k: Donated(v, self._scratch) for k, v in st["state"].items()}}
        scalars = _Scalars(st["slots"]) if st["slots"] is not None else None
        with _mode(scalars=scalars, fuse=self.fuse, in_place_min=0):
            loss = self.loss if W is None else self.loss.weighted(averaging_one(W))
            value, grads, new_buffers = self.net._loss_and_grads(params, X, T, loss, buffers, ctx)
            # the gradients backprop just made are read once: a parameter's new value may go into its gradient
            held = {id(a) for a in (X, T, *params, *buffers)} | ({id(W)} if W is not None else set())
            grads = Donated(grads, self._scratch) if self._arrays.own(grads, held) else grads
            new_params, new_state = self.opt.step(Donated(params, self._scratch), grads, state, decay=self.decay)
        _copy_in(self._arrays, params, new_params, skip=_same(new_params, params))
        _copy_in(self._arrays, buffers, new_buffers, skip=_same(new_buffers, buffers))
        for k, v in st["state"].items():
            _copy_in(self._arrays, v, new_state[k], skip=_same(new_state[k], v))
        return value

    def _capture(self, batch, words=None):
        statics = tuple(a.clone() for a in batch)
        sw = None if words is None else self._static_words(words)
        out: dict[str, Any] = {}
        graph = self._graph_kind()
        graph.capture(lambda: out.__setitem__("value", self._body(*statics, words=sw)), self._static)
        return graph, statics, sw, out

    def _static_words(self, words):
        """The graph's input for a step's random key words, holding ``words``."""
        sw = self._arrays.words(self._static["params"][0], words)
        self._arrays.put_words(sw, words)
        return sw


class TapeStep(GraphStep):
    """The step recorded once per batch shape and replayed as a flat list of
    NumPy calls into fixed buffers (:mod:`xpnet._tape`): a CUDA graph's
    bargain on the CPU, where a small network's step costs more in Python
    than in arithmetic. A full batch (the loop's own arrays, every epoch) is
    recorded on those arrays themselves, so nothing is copied in. A step the
    recording cannot follow (one that reads a value on the host) runs
    eagerly from then on, with a warning where ``compile=True`` asked."""

    mode = "numpy tape"

    def __init__(self, eager: TrainStep, warn: bool, max_bytes: int | None = None) -> None:
        """``max_bytes``: a recording holding more buffers than this is
        dropped, and the step runs eagerly (``"auto"``)."""
        from . import _tape

        super().__init__(eager, _tape.Tape, warn)
        self._tape, self._arrays = _tape, _tape.NumpyArrays
        self._whole: tuple[Any, ...] | None = None  # the loop's full-batch (X, T) or (X, T, W)
        self._uses: dict[Any, int] = {}  # steps each recording served
        self._refused, self._max_bytes = False, max_bytes

    def _drawn(self, ctx):
        return (ctx, None) if self._refused else super()._drawn(ctx)

    def _forget_recordings(self) -> None:
        """Each recording made again is checked again against the eager step."""
        super()._forget_recordings()
        self._uses.clear()

    def _rows_batch(self, rows):
        if rows.order is None and rows.lo == 0 and rows.hi == rows.X.shape[0]:  # the loop's own arrays, every epoch
            self._whole = (rows.X, rows.T) if rows.W is None else (rows.X, rows.T, rows.W)
            return self._whole
        return _batch(self.rows_xp, rows)

    def _run(self, params, buffers, state, batch, ctx, opt, keep, words):
        """The step by its recording (``batch``: ``(X, T)``, or ``(X, T, W)``
        with the rows' weights; ``words``: the step's random key words), made
        on first use and checked against the eager step on its second;
        eagerly where it cannot be recorded."""
        if self._refused:
            return self._eager(params, buffers, state, *batch[:2], ctx, _loss_of(self, batch), opt, keep)
        key = self._key(batch, words)
        uses = self._uses.get(key, 0)
        if uses > 1:  # recorded and checked
            return self._replayed(params, buffers, state, batch, opt, keep, words)
        expected = None
        if uses == 1:  # a recording's second step: checked once against the eager step
            copies = [p.copy() for p in params], [b.copy() for b in buffers]
            state_copy = {k: ([a.copy() for a in v] if isinstance(v, list) else v) for k, v in state.items()}
            expected = TrainStep.__call__(self, *copies, state_copy, *batch[:2], ctx, loss=_loss_of(self, batch),
                                          opt=opt)  # fmt: skip
        try:
            out = self._replayed(params, buffers, state, batch, opt, keep, words)
        except (self._tape.Untraceable, UnknownStream) as exc:
            self._refuse(str(exc))
            return self._eager(params, buffers, state, *batch[:2], ctx, _loss_of(self, batch), opt, keep)
        self._uses[key] = uses + 1
        if expected is not None and not _same_results(out, expected):
            self._refuse("its replay computed other numbers than the step itself: it depends on something "
                         "the recording froze")  # fmt: skip
            return expected
        return out

    def _refuse(self, why: str) -> None:
        self._refused = True
        if self._warn:
            warnings.warn(f"xpnet: compile=True cannot record this step on NumPy ({why}); it runs eagerly",
                          RuntimeWarning, stacklevel=caller_stacklevel())  # fmt: skip

    def _key(self, batch, words=None):
        whole = self._whole
        if whole is not None and _same(batch, whole):
            return ("whole", len(batch), words is not None)
        return (*(tuple(a.shape) for a in batch), words is not None)

    def _inputs(self, batch, words=None):
        key = self._key(batch, words)
        if key[0] != "whole":
            return super()._inputs(batch, words)
        if key not in self._graphs or not _same(self._graphs[key][1], batch):  # recorded on these arrays
            self._graphs[key] = self._capture(batch, words, copy=False)
        graph, _, sw, out = self._graphs[key]
        if sw is not None:
            self._arrays.put_words(sw, words)
        return graph, out

    def _capture(self, batch, words=None, copy=True):
        statics = tuple(a.copy() for a in batch) if copy else tuple(batch)
        sw = None if words is None else self._static_words(words)
        traced, out = self._tape.traced, {}
        static = traced(self._static)
        graph = self._tape.Tape()
        graph.capture(lambda: out.__setitem__("value", self._body(*traced(statics), words=traced(sw), st=static)),
                      self._static)  # fmt: skip
        if self._max_bytes is not None and graph.nbytes > self._max_bytes:
            raise self._tape.Untraceable(f"its recording holds {graph.nbytes} bytes of buffers")
        out["value"] = self._tape.plain(out["value"])
        return graph, statics, sw, out


def _batch(xp: Any, rows: Rows) -> tuple[Any, ...]:
    """A compiled step's inputs for ``rows``: ``(X, T)``, and the rows' weights
    as given (scaled inside the step) where there are."""
    X, T = rows.take(xp)
    return (X, T) if rows.W is None else (X, T, take_rows(xp, rows.W, rows.order, rows.lo, rows.hi))


def _loss_of(step: TrainStep, batch: tuple[Any, ...]) -> Any:
    """The eager step's loss for ``batch``: weighted by its weights, scaled as in the recording."""
    return step.loss if len(batch) == 2 else step.loss.weighted(averaging_one(batch[2]))


#: Where the built-in optimizers live (their settings are plain numbers).
_OPTIMIZERS_MODULE = __name__.rpartition(".")[0] + ".optimizers"


def _same_results(out: tuple, expected: tuple) -> bool:
    """Are two steps' ``(params, buffers, state, value)`` equal to the bit (NaN equal to NaN)?"""
    (p, b, s, v), (p2, b2, s2, v2) = out, expected
    arrays = [*p, *b, v] + [a for k in s if isinstance(s[k], list) for a in s[k]]
    arrays2 = [*p2, *b2, v2] + [a for k in s2 if isinstance(s2[k], list) for a in s2[k]]
    hosts = {k: x for k, x in s.items() if not isinstance(x, list)}, {k: x for k, x in s2.items() if not isinstance(x, list)}
    return (
        len(arrays) == len(arrays2)
        and hosts[0] == hosts[1]
        and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(arrays, arrays2))
    )


#: ``compile="auto"`` records a NumPy step only for networks of at most this
#: many parameters whose recording holds at most :data:`TAPE_MAX_BYTES` of
#: buffers: there Python costs more than the arithmetic (the 2-2-1 XOR step:
#: 20 against 25 us per step). Larger steps gain little or lose: each result
#: keeps a buffer of its own, where eager NumPy reuses memory the cache still
#: holds (784-1024-1024-10, batch 1024: 8% slower recorded; 64-128-10,
#: batch 32, Adam: 5% slower).
TAPE_MAX_PARAMS = 2**12
TAPE_MAX_BYTES = 2**15


def tape_step(eager: TrainStep, compile: Any) -> TrainStep:
    """The NumPy step as a :class:`TapeStep`, where it can be recorded:
    NumPy's own arrays, and (for ``"auto"``) only small networks of xpnet's
    own components, whose steps the tests replay against eager ones;
    ``compile=True`` records any."""
    from ._backend import Backend

    net = eager.net
    if type(net.backend) is not Backend or not all(type(p) is np.ndarray for p in net._params()):
        return eager
    if compile is True:
        return TapeStep(eager, warn=True)
    small = sum(math.prod(p.shape) for p in net._params()) <= TAPE_MAX_PARAMS
    if small and all(type(c).__module__.split(".")[0] == "xpnet" for c in _components(net, eager.loss)):
        return TapeStep(eager, warn=False, max_bytes=TAPE_MAX_BYTES)
    return eager


def _components(net: Any, loss: Any) -> list[Any]:
    """The loss and every layer and activation of ``net``, nested ones too."""
    found, todo = [loss], list(net.layers)
    while todo:
        layer = todo.pop()
        found.append(layer)
        act = getattr(layer, "activation", None)
        found += [act] if act is not None else []
        todo += list(getattr(layer, "layers", ()))
    return found


class BridgedGraphStep(GraphStep):
    """A CuPy network's step as a torch CUDA graph of the same layers on the
    same memory. CuPy (14) cannot capture cuBLAS calls in a CUDA graph;
    torch can, and DLPack lets both libraries share device memory without a
    copy. The layers run on torch tensors that are views of the CuPy
    arrays' memory (or of the graph's static tensors, handed out as CuPy
    views and recognised when they come back), so the loop and the user see
    CuPy arrays only. ``to_inner``/``to_outer`` convert one array each way
    (``torch.from_dlpack``/``cupy.from_dlpack``; NumPy and CPU torch with a
    stand-in graph in the CPU tests). A step the graph cannot take runs
    ``outer``, the CuPy step, as written."""

    mode = "cuda graph (torch, shared through DLPack)"

    def __init__(self, outer: TrainStep, inner_net: Any, graph: Any, to_inner: Callable, to_outer: Callable,
                 warn: bool = False) -> None:  # fmt: skip
        inner = TrainStep(inner_net, outer.loss, outer.opt, outer.decay, outer.ctx, None, outer.fuse)
        super().__init__(inner, graph, warn)
        self._outer, self._to_inner, self._to_outer = outer, to_inner, to_outer
        self.rows_xp = outer.rows_xp
        self._views: dict[int, tuple[Any, Any]] = {}  # id(outer view) -> (the view, its static torch tensor)
        self._view_of: dict[int, Any] = {}  # id(static torch tensor) -> its outer view
        self._static_ids: set[int] | None = None

    def __call__(self, params, buffers, state, X, T, ctx=None, *, loss=None, opt=None, donate=False, keep=False):
        if not self._compiles(self._drawn(ctx)[0], loss, opt):  # the views are not the outer step's own:
            return self._outer(params, buffers, state, X, T, ctx, loss=loss, opt=opt)  # it never writes them
        return GraphStep.__call__(self, params, buffers, state, X, T, ctx, loss=loss, opt=opt, keep=keep)

    def _eager(self, params, buffers, state, X, T, ctx, loss, opt, keep):
        return self._outer(params, buffers, state, X, T, ctx, loss=loss, opt=opt)

    def _replayed(self, params, buffers, state, batch, opt, keep, words=None):
        """The graph's step on torch views of the outer arrays, its results as outer views."""
        inner_state = {k: (self._inner(v) if isinstance(v, list) else v) for k, v in state.items()}
        p, b, st, value = GraphStep._replayed(self, self._inner(params), self._inner(buffers), inner_state,
                                              tuple(map(self._to_inner, batch)), opt, keep, words)  # fmt: skip
        outer_state = {k: (self._outer_views(v) if isinstance(v, list) else v) for k, v in st.items()}
        return self._outer_views(p), self._outer_views(b), outer_state, self._to_outer(value)

    def _inner(self, arrays: Sequence[Any]) -> list[Any]:
        out = []
        for a in arrays:
            hit = self._views.get(id(a))
            out.append(hit[1] if hit is not None and hit[0] is a else self._to_inner(a))
        return out

    def _outer_views(self, tensors: Sequence[Any]) -> list[Any]:
        """CuPy views of the graph's static tensors (the same view objects
        every step, so they are recognised when the loop passes them back);
        other tensors (a kept epoch's copies) as new views."""
        statics = self._static_ids
        if statics is None:  # the static tensors are made once, on the first compiled step
            statics = self._static_ids = {id(t) for t in static_arrays(self._static)}
        out = []
        for t in tensors:
            if id(t) not in statics:
                out.append(self._to_outer(t))
                continue
            if id(t) not in self._view_of:
                view = self._view_of[id(t)] = self._to_outer(t)
                self._views[id(view)] = (view, t)
            out.append(self._view_of[id(t)])
        return out


def bridged_step(outer: TrainStep, warn: bool = False) -> TrainStep:
    """The CuPy step as a torch CUDA graph (:class:`BridgedGraphStep`); the
    eager step where the torch network, rebuilt from the config's names,
    would not be this one (a component its name would not bring back), or
    where either library computes on a stream of the user's."""
    try:
        check_rebuildable(outer.net._root)
    except ValueError:
        return outer
    if not _on_default_streams():
        return outer
    return _bridged(outer, warn)


def _on_default_streams() -> bool:  # pragma: no cover - needs a GPU
    """Are CuPy's and torch's current streams both the legacy default one?
    The bridged step hands arrays between the libraries without events, and
    only that stream orders one library's work after the other's (under a
    user's ``cupy.cuda.Stream``, a replay could overwrite weights CuPy still
    reads)."""
    import cupy
    import torch

    return cupy.cuda.get_current_stream().ptr == 0 and torch.cuda.current_stream().cuda_stream == 0


def _bridged(outer: TrainStep, warn: bool) -> TrainStep:  # pragma: no cover - needs a GPU
    import cupy
    import torch

    from ._backend import get_backend

    net = outer.net
    inner_backend = get_backend("torch", f"cuda:{net.backend.device.id}")
    inner_net = type(net)._assemble(net.config(), inner_backend, net.dtype,
                                    [torch.from_dlpack(p) for p in net._params()],
                                    [torch.from_dlpack(b) for b in net._buffers()])  # fmt: skip
    return BridgedGraphStep(outer, inner_net, _CudaGraph, torch.from_dlpack, cupy.from_dlpack, warn)


def _same(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return len(a) == len(b) and all(map(operator.is_, a, b))


def _copy_in(how: Any, static: list[Any], arrays: Sequence[Any], skip: bool) -> None:
    if not skip:
        for s, a in zip(static, arrays):
            how.copy(s, a)


class _CudaGraph:
    """``torch.cuda.CUDAGraph`` with the warm-up torch asks for: a few
    eager runs on a side stream (lazy cuBLAS/allocator set-up happens there),
    on copies of the static tensors so the warm-up changes no weight; the
    capture itself with Python's garbage collector held (:func:`_no_collection`)."""

    def capture(self, fn: Callable[[], None], static: dict[str, Any]) -> None:
        import torch

        snapshot = _snapshot(static)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        _restore(static, snapshot)
        self.graph = torch.cuda.CUDAGraph()
        with _no_collection(), torch.cuda.graph(self.graph):
            fn()

    def replay(self) -> None:  # pragma: no cover - needs a GPU
        self.graph.replay()


@contextlib.contextmanager
def _no_collection():
    """Dead reference cycles collected now, and none while a graph captures.
    A collection inside the capture runs the finalizers of whatever died in
    a cycle earlier (an earlier fit's ``CUDAGraph``, kept alive by a failed
    test's traceback, say): destroying a graph and releasing its memory pools
    are CUDA calls a capture refuses, reported only as warnings, and the
    capture then fails at an innocent operation of the step ("operation
    failed due to a previous error during capture"). torch itself collects
    before a capture only with ``torch.compiler.config.force_cudagraph_gc``."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _snapshot(static: dict[str, Any]) -> list[Any]:
    return [a.clone() for a in static_arrays(static)]


def _restore(static: dict[str, Any], snapshot: list[Any]) -> None:
    for a, b in zip(static_arrays(static), snapshot):
        a.copy_(b)
