"""xpnet's ``jax.jit`` programs, and the cache that keeps them across fits.

On JAX every operation outside a program is a dispatch of its own and, the
first time per shape, a compile of its own. So the training step
(:class:`_JaxStep`), the forward of inference (:func:`inference`), a fit's
set-up (:func:`one_program`) and its reports (:func:`keyed_program`) run as
one program each, kept per architecture and settings (the network held
weakly): fitting again compiles nothing new. Elsewhere each runs as written.
"""

from __future__ import annotations

import copy
import functools
import threading
import traceback
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat as compat
import numpy as np

from ._device_random import TracedRandom, UnknownStream, step_words
from ._kernels import _mode, _Scalars, host_scalars
from ._trainstep import TrainStep, _state_lists, averaging_one, checked_update
from ._warnings import caller_stacklevel
from .registry import component_bases, plain_settings

__all__ = ["held_arrays", "holding", "inference", "keyed_program", "network_key", "one_program", "program_key",
           "program_spec"]


# --------------------------------------------------------------------------
# The training step as one program
# --------------------------------------------------------------------------


class _JaxStep(TrainStep):
    """The whole step under ``jax.jit``: forward, backprop and update fuse
    into one XLA program per batch shape. The optimizer's scalars enter as a
    vector argument (no retrace as Adam's corrections change) and its host
    state advances on the host (:func:`xpnet._kernels.host_scalars`)."""

    mode = "jax.jit"

    def __init__(self, eager: TrainStep, warn: bool = False) -> None:
        self.__dict__.update(eager.__dict__)
        import jax

        # One compiled program per architecture and step settings: fitting
        # again, or another network of the same layers, does not compile again.
        net = self.net
        key = (*network_key(net), *program_key(self.loss), *program_key(self.opt), tuple(self.decay or ()), self.ctx,
               self.fuse)  # fmt: skip
        self._key, self._warn = key, warn  # warn: compile=True asked for a program
        self._eager_only = key in _HOST_READS  # read per step: no hash of the key there
        if self._eager_only and warn:  # found by an earlier fit: compile=True is told each time
            _HostRead.warn(*_HOST_READS[key])
        def programs() -> tuple[Any, ...]:
            frozen = _Frozen()
            step, rows, scan = (functools.partial(f, frozen) for f in (_JaxStep._pure, _JaxStep._pure_rows,
                                                                        _JaxStep._pure_scan))  # fmt: skip
            return (jax.jit(step), jax.jit(rows, static_argnums=0), frozen, jax.jit(scan, static_argnums=(0, 1)),
                    set())  # fmt: skip

        with _CACHE_LOCK:  # programs that compiled many data sizes start afresh: each holds megabytes till dropped
            if len(_JAX_PROGRAMS.get(key, ((),) * 5)[4]) >= _ROW_COUNTS_KEPT:
                _JAX_PROGRAMS.pop(key, None)
        self._jitted, self._jitted_rows, self._frozen, self._jitted_scan, self._shapes = _cached(key, programs)
        #: Device copies of what the last call sent, reused when the next sends the same:
        #: the optimizer's scalars (constant for SGD) and the next minibatch's first row.
        self._slots: tuple[tuple[float, ...], Any] = ((), None)
        self._next_lo: tuple[int, Any] = (-1, None)
        self._zeros: dict[Any, Any] = {}
        self._first_row: Any = None
        self._steps_only = False  # an epoch program failed to trace: one program per step
        self._held_now: dict[str, Any] | None = None  # the loss's arrays, this epoch (_held)

    @staticmethod
    def _pure(frozen, params, buffers, arrays, slots, X, T, w=None, words=None, held=None):
        """The step JAX traces, reading the calling TrainStep (``frozen.step``);
        ``w``: the rows' weights, averaging 1 (``None``: equal); ``words``:
        the step's random key words (Dropout; see :meth:`_drawn`); ``held``:
        the loss's arrays (:func:`held_arrays`)."""
        step = frozen.step()
        state = {**frozen.host, **arrays}
        loss = holding(step.loss, held or {})
        loss = loss if w is None else loss.weighted(w)
        ctx = step.ctx if words is None else step.ctx._replace(rng=TracedRandom(words, step.net._rng_streams))
        with _mode(scalars=_Scalars(slots), fuse=step.fuse):
            value, grads, buffers = step.net._loss_and_grads(params, X, T, loss, buffers, ctx)
            new, new_state = step.opt.step(params, grads, state, decay=step.decay)
            params = checked_update(step.opt, params, new)  # while traced: once per program
        return params, buffers, _state_lists(new_state), value

    @staticmethod
    def _pure_rows(frozen, n, params, buffers, arrays, slots, X, T, order, lo, total, W=None, words=None,
                   held=None):  # fmt: skip
        """:meth:`_pure` on ``n`` rows from ``lo`` (in ``order``), the loss
        added to ``total``: the minibatch, and its share of the row weights
        ``W`` (averaging 1), are taken inside the program."""
        import jax

        arrays_in = (X, T) if W is None else (X, T, W)
        if order is None and n == X.shape[0]:
            batch = arrays_in
        elif order is None:
            batch = tuple(jax.lax.dynamic_slice_in_dim(a, lo, n, axis=0) for a in arrays_in)
        else:
            idx = jax.lax.dynamic_slice_in_dim(order, lo, n, axis=0)
            batch = tuple(jax.numpy.take(a, idx, axis=0) for a in arrays_in)
        w = None if W is None else averaging_one(batch[2])
        params, buffers, arrays, value = _JaxStep._pure(frozen, params, buffers, arrays, slots, *batch[:2], w, words,
                                                        held)  # fmt: skip
        return params, buffers, arrays, value if total is None else total + value, lo + n

    @staticmethod
    def _pure_scan(frozen, n, tail, params, buffers, arrays, slots, X, T, order, lo, total, W=None, words=None,
                   held=None):  # fmt: skip
        """:meth:`_pure_rows` of ``n`` rows once per row of ``slots`` (one
        step's scalars each; and of ``words``, its random key words), as one
        ``jax.lax.scan``, then, with ``tail``, a last step of ``tail`` rows
        on the last row: an epoch's minibatches in one dispatch. The loss
        sum keeps ``total``'s dtype (a scan's carry may not change type)."""
        import jax

        def body(carry, step):
            params, buffers, arrays, total, lo = carry
            params, buffers, arrays, new_total, lo = _JaxStep._pure_rows(
                frozen, n, params, buffers, arrays, step[0], X, T, order, lo, total, W, step[1], held)  # fmt: skip
            return (params, buffers, arrays, new_total.astype(total.dtype), lo), None

        m = slots.shape[0] - bool(tail)
        carry, _ = jax.lax.scan(body, (params, buffers, arrays, total, lo), (slots[:m], None if words is None else
                                                                             words[:m]))  # fmt: skip
        if not tail:
            return carry
        last = None if words is None else words[-1]
        return _JaxStep._pure_rows(frozen, tail, *carry[:3], slots[-1], X, T, order, carry[4], carry[3], W, last,
                                   held)  # fmt: skip

    def __call__(self, params, buffers, state, X, T, ctx=None, *, loss=None, opt=None, donate=False, keep=False):
        step_ctx, words = self._drawn(ctx)
        if not self._compiles(step_ctx, loss, opt) or self._eager_only:
            return TrainStep.__call__(self, params, buffers, state, X, T, ctx, loss=loss, opt=opt, donate=donate)
        slots, host = self._prepare(params, state, opt)
        words = self._sent(words)
        self._shapes.add(("step", X.shape, T.shape))
        try:
            params, buffers, arrays, value = self._jitted(list(params), list(buffers), _state_lists(state), slots, X, T,
                                                          None, words, self._held())  # fmt: skip
        except (*_HostRead.errors(), UnknownStream) as exc:
            self._read_on_host(exc)
            return TrainStep.__call__(self, params, buffers, state, X, T, ctx, loss=loss, opt=opt, donate=donate)
        return list(params), list(buffers), {**host, **arrays}, value

    def step_rows(self, params, buffers, state, rows, total, ctx=None, *, loss=None, opt=None, donate=False,
                  keep=False):  # fmt: skip
        step_ctx, words = self._drawn(ctx)
        if not self._compiles(step_ctx, loss, opt) or self._eager_only:
            return TrainStep.step_rows(self, params, buffers, state, rows, total, ctx, loss=loss, opt=opt)
        try:
            return self._compiled_rows(params, buffers, state, rows, total, opt, self._sent(words))
        except (*_HostRead.errors(), UnknownStream) as exc:
            self._read_on_host(exc)
            return TrainStep.step_rows(self, params, buffers, state, rows, total, ctx, loss=loss, opt=opt)

    def _held(self) -> dict[str, Any]:
        """The loss's arrays, the programs' last argument (:func:`held_arrays`),
        looked for once an epoch (:meth:`new_epoch`), not at every step: a
        walk through the loss's attributes, one level down too. Only a
        callback, between epochs, may give the loss others."""
        if self._held_now is None:
            self._held_now = held_arrays(self.net.backend, self.loss)
        return self._held_now

    def new_epoch(self) -> None:
        """See :meth:`TrainStep.new_epoch`: the loss's arrays found again."""
        self._held_now = None

    def _drawn(self, ctx):
        """``ctx`` as the program takes it: a training step's device random
        source (Dropout's, which changes every step) becomes the context the
        step was built with and its streams' key words (``(streams, 4)``
        uint32 on the host, hashed there), an input of the one program
        (``(ctx, None)`` for any other context): :func:`step_words`."""
        return step_words(ctx, self.ctx, self.net._rng_streams)

    def _compiled_rows(self, params, buffers, state, rows, total, opt, words=None):
        slots, host = self._prepare(params, state, opt)
        lo, total = self._lo(rows.lo), self._total(total, slots.dtype)
        self._shapes.add(("rows", rows.hi - rows.lo, rows.X.shape))
        params, buffers, arrays, total, after = self._jitted_rows(
            rows.hi - rows.lo, list(params), list(buffers), _state_lists(state), slots, rows.X, rows.T, rows.order,
            lo, total, rows.W, words, self._held())  # fmt: skip
        self._next_lo = (rows.hi, after)
        return list(params), list(buffers), {**host, **arrays}, total

    def scan_rows(self, params, buffers, state, rows, count, total, *, tail=0, opt=None, contexts=None):
        """See :meth:`TrainStep.scan_rows`: one program (:meth:`_pure_scan`),
        the epoch's minibatches without a dispatch, a transfer of scalars
        and a trip through Python per step."""
        if count + bool(tail) < 2 or not self._compiles(None, None, opt) or not self.scans:
            return None
        words = self._scan_words(contexts)
        if words is False:
            return None
        slots, host = self._scan_slots(params, state, opt, count + bool(tail))
        if slots is None:  # the optimizer's scalars change in number from step to step: no table holds them
            self._steps_only = True
            return None
        n = rows.hi - rows.lo
        lo, total = self._lo(rows.lo), self._total(total, slots.dtype)
        self._shapes.add(("scan", n, tail, slots.shape[0], rows.X.shape))  # what it compiles for, roughly
        try:
            params, buffers, arrays, total, after = self._jitted_scan(
                n, tail, list(params), list(buffers), _state_lists(state), slots, rows.X, rows.T, rows.order, lo,
                total, rows.W, words, self._held())  # fmt: skip
        except (*_HostRead.errors(), UnknownStream) as exc:
            self._read_on_host(exc)
            return None
        except TypeError:  # a carry that changes type: a loss of more than one number, a buffer that grows
            self._steps_only = True  # step by step, whose checks name it (or which trains with it)
            return None
        self._next_lo = (rows.lo + n * count + tail, after)
        return list(params), list(buffers), {**host, **arrays}, total

    def _scan_words(self, contexts):
        """The random key words of the scanned steps, ``(steps, streams, 4)``
        on the device in one transfer (``None`` for a network that draws
        none; ``False``: the steps' contexts are not all this step's with a
        random source of their own, so no scan)."""
        if not self.net._uses_rng:
            return None
        drawn = [self._drawn(ctx) for ctx in contexts or ()]
        if not drawn or any(words is None for _, words in drawn):
            return False
        return self._sent(np.stack([words for _, words in drawn]))

    def _sent(self, words):
        """Host ``words`` on the device (one explicit transfer), or ``None``."""
        if words is None:
            return None
        import jax

        return jax.device_put(words, self.net.backend.device)

    @property
    def scans(self) -> bool:
        """Until a trace failed: then one program per step, or none."""
        return not (self._eager_only or self._steps_only)

    def _read_on_host(self, exc: BaseException) -> None:
        """A component read an array's value on the host (or a layer drew from
        a stream other than its own, which the program's table lacks): op by
        op from now on, and for later fits of this step too (kept with the
        key: no failed trace per fit, and ``compile=True`` told each time)."""
        _HostRead.found(self._key, exc, self._warn)
        self._eager_only = True

    def _scan_slots(self, params, state, opt, count):
        """The scalars of ``count`` steps, one row each, sent to the device
        (explicitly: the program's call would send a host array too, 18 us
        sooner, but as a transfer ``jax.transfer_guard`` refuses), and the
        optimizer's host state after them (it advances on the host);
        ``(None, None)`` where their number changes between steps."""
        opt = opt or self.opt
        self._freeze(state)
        rows, host = [], state
        for _ in range(count):
            seen, host = host_scalars(opt, {**state, **host})
            rows.append(seen)
        if any(len(r) != len(rows[0]) for r in rows):
            return None, None
        import jax

        slots = np.asarray(rows, dtype=_slot_dtype(params)).reshape(count, -1)
        return jax.device_put(slots, self.net.backend.device), host

    def _freeze(self, state: dict[str, Any]) -> None:
        """What a trace reads: this step (weakly) and the optimizer's host state."""
        self._frozen.step = weakref.ref(self)  # read only when JAX traces (a new batch shape)
        self._frozen.host = {k: v for k, v in state.items() if not isinstance(v, list)}

    def _lo(self, lo: int) -> Any:
        """Row ``lo`` on the device: the one the last program returned where
        it is (a host array would compile the program anew)."""
        if self._next_lo[0] == lo:
            return self._next_lo[1]
        if lo == 0 and self._first_row is not None:  # an epoch's start: sent once
            return self._first_row
        import jax

        row = jax.device_put(np.asarray(lo, dtype=np.int32), self.net.backend.device)
        if lo == 0:
            self._first_row = row
        return row

    def _total(self, total: Any, dtype: Any) -> Any:
        """``total``, or before an epoch's first step a zero of ``dtype`` that
        the step adds to: one program, not two. Sent from the host: creating
        it on the device would compile a program."""
        if total is not None:
            return total
        zero = self._zeros.get(dtype)
        if zero is None:
            import jax

            zero = np.zeros((), dtype=np.dtype(str(dtype)))
            zero = self._zeros[dtype] = jax.device_put(zero, self.net.backend.device)
        return zero

    def _prepare(self, params, state, opt):
        """The optimizer's scalars for this step, on the device (sent only
        when they change), and its next host state."""
        seen, host = host_scalars(opt or self.opt, state)
        self._freeze(state)
        if tuple(seen) != self._slots[0]:
            import jax

            slots = np.asarray(seen, dtype=_slot_dtype(params))
            self._slots = (tuple(seen), jax.device_put(slots, self.net.backend.device))
        return self._slots[1], host

    def update(self, params, grads, state, *, opt=None, donate=False):
        return TrainStep.update(self, params, grads, state, opt=opt)


def _slot_dtype(params: Sequence[Any]) -> np.dtype:
    """The host dtype of a step's scalars: the parameters'."""
    return np.dtype(str(params[0].dtype).rsplit(".", 1)[-1]) if params else np.dtype(np.float64)


def inference(net: Any, ctx: Any) -> Callable[[Sequence[Any], Sequence[Any], Any], Any]:
    """``(params, buffers, X) -> Y``, the network's forward in context
    ``ctx`` (inference). On JAX one ``jax.jit`` program per architecture and
    row count: there every operation outside a program is a dispatch of its
    own and, the first time per shape, a compile of its own (a fit's
    validation, its test rows and ``predict`` each compiled every layer's
    operations). Elsewhere the layers' forward as written."""
    root, xp = net._root, net.backend.xp
    if net.backend.name != "jax":
        return lambda params, buffers, X: root.forward(xp, params, buffers, X, ctx)[0]
    import jax

    key = ("inference", *network_key(net), ctx)

    def programs() -> tuple[Any, ...]:
        frozen = _Frozen()

        def forward(params, buffers, X):
            return frozen.step().forward(xp, params, buffers, X, ctx)[0]  # read only when JAX traces

        return (jax.jit(forward), set(), frozen)

    with _CACHE_LOCK:  # a program that compiled many row counts starts afresh: each holds memory till dropped
        if len(_JAX_PROGRAMS.get(key, (None, ()))[1]) >= _ROW_COUNTS_KEPT:
            _JAX_PROGRAMS.pop(key, None)
    program, row_counts, frozen = _cached(key, programs)

    def run(params, buffers, X):
        frozen.step = weakref.ref(root)
        row_counts.add(X.shape[0])
        return _HostRead.program_or_eager(key, program, eager, list(params), list(buffers), X)

    def eager(params, buffers, X):
        return root.forward(xp, params, buffers, X, ctx)[0]

    return run


#: jax.jit programs per network (weakly held) and step settings, the least
#: recently used dropped first: a program compiles again only after this
#: many others were used since (a model search, many small networks).
_JAX_PROGRAMS: dict[tuple, tuple[Any, ...]] = {}
_JAX_PROGRAMS_KEPT = 64
#: Row counts an inference program, or input shapes a small program
#: (:func:`one_program`), compiles before it is dropped (each compiled shape
#: holds megabytes until its jax.jit is released).
_ROW_COUNTS_KEPT = 32
_CACHE_LOCK = threading.RLock()


def _cached(key: tuple, make: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
    """The programs kept under ``key``, made by ``make()`` on a miss (one
    thread at a time: two evicting the same oldest entry raised KeyError).
    An entry dropped takes its record in :data:`_HOST_READS` along (a key
    seen again is traced once more to find out): that record grew with
    every class a model search or a notebook made."""
    with _CACHE_LOCK:
        found = _JAX_PROGRAMS.pop(key, None)
        if found is None:
            while len(_JAX_PROGRAMS) >= _JAX_PROGRAMS_KEPT:
                oldest = next(iter(_JAX_PROGRAMS))
                _JAX_PROGRAMS.pop(oldest)
                _HOST_READS.pop(oldest, None)  # forgotten with its programs: bounded, and its classes released
            found = make()
        _JAX_PROGRAMS[key] = found  # the most recently used last
        return found


# --------------------------------------------------------------------------
# Small programs: a fit's set-up and reports as one program each on JAX
# --------------------------------------------------------------------------


def one_program(fn: Callable[..., Any], like: Any) -> Callable[..., Any]:
    """``fn``, a pure module-level function of arrays (taking ``xp`` from
    them), for the arrays of ``like`` (a Backend, or an array): on JAX one
    ``jax.jit`` program (compiled once per input shapes), where each
    operation outside a program is compiled on first use and dispatched on
    its own (an optimizer's zeros, a report's sums); ``fn`` itself elsewhere."""
    if getattr(like, "name", None) == "jax" or compat.is_jax_array(like):
        return _jitted(fn)
    return fn


@functools.cache
def _jitted(fn: Callable[..., Any]) -> _ShapeBoundedJit:
    return _ShapeBoundedJit(fn)


class _ShapeBoundedJit:
    """``jax.jit(fn)``, started afresh after :data:`_ROW_COUNTS_KEPT` input
    shapes: a jax.jit keeps one compiled program per shape for good, and
    predict's output check, kept for the process, held about 1.5 MB per row
    count it was ever given (600 row counts: 1 GB), as the forward did."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.program, self.shapes = fn, None, set()

    def __call__(self, *args: Any) -> Any:
        import jax

        leaves = jax.tree_util.tree_leaves(args)
        shapes = tuple((getattr(a, "shape", None), str(getattr(a, "dtype", type(a)))) for a in leaves)  # or a number
        with _CACHE_LOCK:
            if self.program is None or (shapes not in self.shapes and len(self.shapes) >= _ROW_COUNTS_KEPT):
                self.program, self.shapes = jax.jit(self._fresh()), set()
            self.shapes.add(shapes)
            program = self.program
        # Outputs that depend on no input (zeros) would come back uncommitted, and a
        # program that later takes them with committed arrays would compile again.
        out = program(*args)
        return jax.device_put(out, leaves[0].sharding) if leaves else out  # no copy: the same buffers

    def _fresh(self) -> Callable[..., Any]:
        """``fn`` as a function object of its own: JAX keeps compiled programs
        per function, not per jax.jit, so a new jax.jit of ``fn`` itself
        would find (and keep) the old ones."""
        fn = self.fn

        @functools.wraps(fn)
        def fresh(*args: Any) -> Any:
            return fn(*args)

        return fresh


def keyed_program(backend: Any, key: tuple, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a pure function of arrays, ``None`` and tuples of them), on JAX
    as one ``jax.jit`` program per ``key``, kept across calls and fits (a
    fit's epoch report: its loss, validation loss and metrics in one program
    instead of one per operation). ``fn`` is traced only for a new key or
    new shapes, so ``key`` must name everything it computes with, as the
    step's key does; the cache holds ``fn`` weakly."""
    if backend.name != "jax":
        return fn
    import jax

    def programs() -> tuple[Any, ...]:
        frozen = _Frozen()

        def traced(*args: Any) -> Any:
            return frozen.step()(*args)

        traced.__name__ = traced.__qualname__ = str(key[0])  # jit(figures) in JAX's logs
        return (jax.jit(traced), set(), frozen)

    def run(*args: Any) -> Any:
        with _CACHE_LOCK:  # one that compiled many shapes starts afresh, as inference's: each holds memory
            shapes = tuple(getattr(a, "shape", None) for a in jax.tree_util.tree_leaves(args))
            if len(_JAX_PROGRAMS.get(key, (None, ()))[1]) >= _ROW_COUNTS_KEPT and shapes not in _JAX_PROGRAMS[key][1]:
                _JAX_PROGRAMS.pop(key, None)
            program, seen, frozen = _cached(key, programs)
            seen.add(shapes)
        frozen.step = weakref.ref(fn)  # read only when JAX traces
        return _HostRead.program_or_eager(key, program, fn, *args)

    return run


#: Program keys whose functions read array values on the host (``float()``,
#: ``bool()``, ``.item()``, NumPy on an array), index with a boolean mask (a
#: shape that depends on values), or, for a step, draw from a random stream its
#: program lacks (:class:`UnknownStream`), which JAX cannot trace: they run op
#: by op from then on.
_HOST_READS: dict[tuple, tuple[str, str]] = {}  # key -> the error's name, where it was raised


class _HostRead:
    """What a JAX program does when a component reads values on the host."""

    @staticmethod
    def errors() -> tuple[type, ...]:
        import jax.errors as e

        return (e.ConcretizationTypeError, e.TracerArrayConversionError, e.TracerIntegerConversionError,
                e.NonConcreteBooleanIndexError)  # eager JAX indexes with a mask, a program cannot: a shape of values

    @staticmethod
    def found(key: tuple, exc: BaseException, warn: bool) -> None:
        _HOST_READS[key] = (type(exc).__name__, _HostRead.where(exc))
        if warn:
            _HostRead.warn(*_HOST_READS[key])

    @staticmethod
    def where(exc: BaseException) -> str:
        """The user's code that raised ``exc`` while JAX traced, as
        ``Class.method, file.py:line``: the innermost frame outside JAX and
        xpnet (a custom layer, activation or loss), else xpnet's; in a network
        of many layers the warning names the one to rewrite."""
        import os

        import jax

        own = tuple(os.path.dirname(m.__file__) + os.sep for m in (jax, compat, np) if m.__file__)
        here = os.path.dirname(__file__) + os.sep
        frames = [f for f, _ in traceback.walk_tb(exc.__traceback__)]
        outside = [f for f in frames if not f.f_code.co_filename.startswith((*own, here, os.path.dirname(os.__file__)))]
        frame = (outside or [f for f in frames if f.f_code.co_filename.startswith(here)] or [None])[-1]
        if frame is None:
            return ""
        owner = frame.f_locals.get("self")
        name = f"{type(owner).__name__}.{frame.f_code.co_name}" if owner is not None else frame.f_code.co_name
        return f"{name}, {os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"

    @staticmethod
    def warn(error: str, where: str = "") -> None:
        at = f" at {where}" if where else ""
        if error == UnknownStream.__name__:
            why = ("a layer draws random numbers from a stream other than its own (Layer.stream), or reads the "
                   f"random source's key or step, which the program is not given ({error}{at}); it runs eagerly, "
                   "op by op. Drawn from its own stream it would compile")
        elif error == "NonConcreteBooleanIndexError":
            why = (f"a component indexes with a boolean mask, whose result's shape depends on values ({error}{at}); "
                   "it runs eagerly, op by op. Written with xp.where instead it would compile")
        else:
            why = (f"a component reads array values on the host ({error}{at}); it runs eagerly, op by op. Written "
                   "with the namespace's operations (xp.where instead of if, no float()) it would compile")
        warnings.warn(f"xpnet: compile=True cannot compile this step on JAX: {why}", RuntimeWarning,
                      stacklevel=caller_stacklevel())  # fmt: skip

    @staticmethod
    def program_or_eager(key: tuple, program: Callable[..., Any], eager: Callable[..., Any], *args: Any) -> Any:
        if key not in _HOST_READS:
            try:
                return program(*args)
            except _HostRead.errors() as exc:
                _HostRead.found(key, exc, warn=False)
        return eager(*args)


def program_key(obj: Any) -> tuple[Any, ...]:
    """What names a loss, metric or optimizer in a program's key: its class
    and the settings its program is traced with (:func:`program_spec`). A
    loss or metric adds its plain settings, as :func:`network_key` does for
    a layer: one kept outside ``config()`` (a user's ``self.scale``) is
    traced into the program as a constant, and a second object of the class
    with another value would run the first one's program, silently. An
    optimizer's scalars reach the program through ``update``: its
    ``program_config`` says what its program is traced with. The components
    it holds add theirs (:func:`_nested_settings`), and its arrays that are
    not JAX's, their identities (:func:`_constant_identities`)."""
    if _program_config(type(obj)) is not None:
        return (type(obj), repr(program_spec(obj)))
    return (type(obj), repr(program_spec(obj)), repr(plain_settings(obj)), *_nested_settings(obj),
            *_constant_identities(obj))  # fmt: skip


def _constant_identities(obj: Any) -> tuple[tuple[str, _Identity], ...]:
    """The arrays of libraries other than JAX ``obj`` holds (NumPy class
    weights; :func:`_array_places`), by where and identity. Program keys
    serve JAX's programs only, which take JAX arrays as arguments
    (:func:`held_arrays`) and bake any other in as a constant: keyed by
    settings, a second loss of other host weights ran the first one's."""
    return tuple((label, _Identity(v)) for label, _, v in _array_places(obj, _array_like)
                 if not compat.is_jax_array(v))  # fmt: skip


def _nested_settings(obj: Any) -> tuple[tuple[str, type, str], ...]:
    """Where, of what class and with what plain settings each component
    ``obj`` holds is (in an attribute, a list, tuple or dict in one, or a
    component held there: :func:`_array_places`): ``loss.weighted(w)``
    holds its base loss, whose setting kept outside ``config()`` was traced
    into the program as a constant, and a second base of another value ran
    the first one's program."""
    bases = component_bases()
    return tuple((label, type(v), repr(plain_settings(v)))
                 for label, _, v in _array_places(obj, lambda v: isinstance(v, bases)))  # fmt: skip


def program_spec(obj: Any) -> tuple[str, Any]:
    """``(name, settings)``: an optimizer's ``program_config`` (its class's
    own, else the base class's default: never a parent's, which may not
    hold for a subclass's step), anything else's ``config``."""
    own = _program_config(type(obj))
    if own is not None:
        return (getattr(obj, "name", type(obj).__name__), own(obj))
    config = getattr(obj, "config", None)
    return (getattr(obj, "name", type(obj).__name__), config() if callable(config) else None)


def _program_config(cls: type) -> Callable[[Any], Any] | None:
    defining = [c for c in cls.__mro__ if "program_config" in c.__dict__]
    return cls.__dict__.get("program_config", defining[-1].__dict__["program_config"]) if defining else None


def network_key(net: Any) -> tuple[Any, ...]:
    """What names a network in a program's key: architecture, dtype, backend
    and device, and the class of every component in it. Names and configs
    alone are not enough: a class registered again with ``replace=True`` (or
    re-run in a notebook cell), or two unregistered layers of one name, would
    otherwise run the other's program."""
    return (type(net), repr(net.config()), _component_classes(net._root), net.dtype, net.backend.name,
            str(net.backend.device))  # fmt: skip


def _component_classes(root: Any) -> tuple[tuple[type, str], ...]:
    """The classes of ``root`` and of every component it holds, depth first
    (layers in containers, a layer's activation and initialisers), each
    with its plain settings: a custom layer's setting kept outside its
    config would otherwise run another network's program."""
    bases, found, seen, todo = component_bases(), [], set(), [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        found.append((type(obj), repr(plain_settings(obj)), *_held_identities(obj)))
        for value in reversed(list(getattr(obj, "__dict__", {}).values())):
            items = value if isinstance(value, list | tuple) else (value,)
            todo.extend(v for v in reversed(items) if isinstance(v, bases))
    return tuple(found)


class _Identity:
    """An array in a program's key, by identity: a program bakes in what a
    component holds outside its parameters (a custom layer's fixed mask), so
    another array must name another program. The key holds the array, so its
    ``id`` is not reused while the program is kept."""

    def __init__(self, array: Any) -> None:
        self.array = array

    def __hash__(self) -> int:
        return id(self.array)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.array is self.array


def _held_identities(component: Any) -> tuple[tuple[str, _Identity], ...]:
    """The arrays ``component`` holds in its public attributes, by where
    (:func:`_array_places`) and identity (parameters and buffers are the
    network's, in private lists), one level down too: a mask in a list is
    baked into the program as well. An array is anything with a shape and a
    dtype: array_api_compat's type checks cache every class they are shown,
    a user's component classes too."""
    return tuple((label, _Identity(v)) for label, _, v in _array_places(component, _array_like, public=True))


def _array_like(value: Any) -> bool:
    return not isinstance(value, type) and hasattr(value, "shape") and hasattr(value, "dtype")


#: How many steps below a component :func:`_array_places` looks: an attribute,
#: a list, tuple or dict in it, a component held there and that one's attributes.
_HELD_DEPTH = 4
#: What holds nothing to look into (most of a component's attributes: names, numbers, classes).
_LEAVES = frozenset({str, int, float, bool, type(None), type})


def _array_places(component: Any, wanted: Callable[[Any], bool], public: bool = False
                  ) -> list[tuple[str, tuple[tuple[str, Any], ...], Any]]:  # fmt: skip
    """``(label, path, value)`` for every ``wanted`` value (an array; a
    component for :func:`_nested_settings`) ``component`` reaches through
    its attributes (``public``: those not starting with ``_``), the lists,
    tuples and dicts in them, and the components held there (a loss
    wrapping a loss: ``loss.weighted(w)``'s ``base``), to
    :data:`_HELD_DEPTH` steps, a container once per path (no cycles).
    ``label`` names the place (``parts[0]``, ``base.weights``), ``path``
    its steps (:func:`_replaced`). Looking at attributes only, a program
    baked in the arrays one level down (a custom loss's class weights in a
    dict) and ran a later component of other arrays with them, silently."""

    def attributes(obj: Any) -> list[tuple[str, tuple[str, Any], Any]]:
        return [(f".{k}", ("attr", k), v) for k, v in getattr(obj, "__dict__", {}).items()
                if not (public and k.startswith("_"))]  # fmt: skip

    top = attributes(component)
    if not top:  # most built-in losses: nothing to look at, at every step
        return []
    bases, found = component_bases(), []

    def walk(items: list[tuple[str, tuple[str, Any], Any]], label: str, path: tuple, depth: int, above: set) -> None:
        for name, step, value in items:
            if wanted(value):  # and looked into: a component found may hold more (an array holds nothing)
                found.append(((label + name).lstrip("."), (*path, step), value))
            if depth < _HELD_DEPTH and type(value) not in _LEAVES and id(value) not in above:
                if isinstance(value, dict):
                    inner = [(f"[{k!r}]", ("item", k), v) for k, v in value.items()]
                elif isinstance(value, list | tuple):
                    inner = [(f"[{i}]", ("item", i), v) for i, v in enumerate(value)]
                else:
                    inner = attributes(value) if isinstance(value, bases) else []
                if inner:
                    walk(inner, label + name, (*path, step), depth + 1, above | {id(value)})

    walk(top, "", (), 1, {id(component)})
    return found


def held_arrays(backend: Any, component: Any) -> dict[str, Any]:
    """The backend's arrays ``component`` (a loss or metric) holds, in its
    attributes or one level down (:func:`_array_places`), by where: a
    program's arguments (bound by :func:`holding`). Closed over, JAX baked
    them into the program as constants, which reads them to the host
    (refused under ``jax.transfer_guard`` on a GPU), and the program, keyed
    by plain settings only, ran later components of other arrays with the
    first one's."""
    return {label: v for label, _, v in _array_places(component, backend.owns)}


def holding(component: Any, arrays: dict[str, Any]) -> Any:
    """``component`` reading ``arrays`` (the program's arguments, from
    :func:`held_arrays`) in their places: copies of it and of the lists,
    dicts and components on the way, the caller's left as they are."""
    if not arrays:
        return component
    bound = component
    for label, path, _ in _array_places(component, _array_like):
        if label in arrays:
            bound = _replaced(bound, path, arrays[label])
    return bound


def _replaced(obj: Any, path: tuple[tuple[str, Any], ...], value: Any) -> Any:
    """``obj`` with ``value`` at ``path`` (:func:`_array_places`): a shallow
    copy of ``obj`` and of each container and component on the way (a
    tuple rebuilt, a named one by its ``_make``)."""
    if not path:
        return value
    (kind, key), rest = path[0], path[1:]
    if kind == "attr":
        bound = copy.copy(obj)
        vars(bound)[key] = _replaced(vars(obj)[key], rest, value)
        return bound
    inner = _replaced(obj[key], rest, value)
    if isinstance(obj, tuple):
        items = [*obj[:key], inner, *obj[key + 1 :]]
        return obj._make(items) if hasattr(obj, "_make") else type(obj)(items)
    bound = copy.copy(obj)
    bound[key] = inner
    return bound


class _Frozen(threading.local):
    """The box a cached JAX program reads while it is traced: the TrainStep
    that called it (weakly: the cache holds no network) and that call's host
    optimizer state (its keys; the values are replaced by the scalars); for
    a :func:`keyed_program`, the function of the last call (weakly too).
    One per thread: JAX traces on the calling thread, and another thread's
    call must not swap the box under it."""

    def __init__(self) -> None:
        self.step: Any = None
        self.host: dict[str, Any] = {}

