"""The eager training step, and which arrays it may donate.

:class:`TrainStep` is one step of :func:`xpnet.training.fit` (forward,
backprop, the optimizer's update) run as written; the compiled steps
(:mod:`xpnet._programs`, :mod:`xpnet._graphstep`) start from it and fall
back on it. Donating is a promise about who holds an array, which only the
loop's step can keep: it donates only arrays that an earlier step of its own
produced and that the network does not hold. Committed parameters (the NaN
guard's last finite weights), a caller's arrays, and anything read-only are
never written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import array_namespace

from ._foreach import _foreach_applies
from ._inplace import SPARES_MAX, _layout_key, _same_layout, _writable
from ._kernels import _MODE, Donated, _mode, _namespace
from ._sparse import is_sparse
from ._sparse import rows as sparse_rows
from ._xp import row_range

__all__ = ["Rows", "TrainStep", "averaging_one", "take_rows"]


class Rows(NamedTuple):
    """A minibatch as the loop names it: rows ``lo:hi`` of ``X`` and ``T`` in
    an epoch's ``order`` (None: stored order). The step takes the rows
    itself, so that a compiled step can take them inside its program: on
    JAX every operation outside the program is a dispatch of its own."""

    X: Any
    T: Any
    order: Any
    lo: int
    hi: int
    #: The rows' weights (``None``: equal), scaled per minibatch to average 1
    #: (:func:`averaging_one`): inside the compiled step too, not per step outside.
    W: Any = None

    def take(self, xp: Any) -> tuple[Any, Any]:
        return take_rows(xp, self.X, self.order, self.lo, self.hi), take_rows(xp, self.T, self.order, self.lo, self.hi)

    def weights(self, xp: Any) -> Any:
        """The minibatch's weights, averaging 1 over it (``None`` without weights)."""
        return None if self.W is None else averaging_one(take_rows(xp, self.W, self.order, self.lo, self.hi))


def averaging_one(wb: Any, total: Any = None, count: int | None = None) -> Any:
    """Weights ``wb`` times ``count`` over ``total`` (by default, their
    number and sum): they average 1 over ``count`` rows of that sum (0 for
    a sum of zero)."""
    xp = array_namespace(wb)
    total = xp.sum(wb) if total is None else total
    count = wb.shape[0] if count is None else count
    ok = total > 0
    return wb * xp.where(ok, count / xp.where(ok, total, xp.ones_like(total)), xp.zeros_like(total))


def take_rows(xp: Any, a: Any, order: Any, lo: int, hi: int) -> Any:
    """Rows ``lo:hi`` of ``a`` in ``order`` (the array itself for all of them)."""
    if order is None and hi - lo == a.shape[0]:  # a full batch (sparse too): no type checks per step
        return a
    if type(a) is not np.ndarray and is_sparse(a):
        return sparse_rows(a, order, lo, hi)
    if order is not None:
        return xp.take(a, row_range(order, lo, hi), axis=0)
    return row_range(a, lo, hi)


class TrainStep:
    """One training step for :func:`xpnet.training.fit`: ``(params, buffers,
    state, X, T) -> (params, buffers, state, value)``, eager.

    ``donate=True`` is the loop's promise that nobody else holds the
    ``params`` it passes (within an epoch; never after it kept or committed
    them). Then, and only for arrays its own previous step returned and that
    the network does not hold, the optimizer may write in place. The
    optimizer state is the loop's own (handed over at construction) and is
    donated whenever this step produced it. ``keep=True`` says the loop will
    keep what comes back (an epoch's end): compiled steps then return arrays
    no later step overwrites. So committed or held weights, a caller's arrays
    and anything read-only are never written."""

    #: What :func:`xpnet._compile.training_step` chose, for messages and benchmarks.
    mode = "eager"
    #: Has :meth:`scan_rows` a program (else the loop need not ask it)?
    scans = False

    def __init__(self, net: Any, loss: Any, opt: Any, decay: Sequence[bool] | None, ctx: Any,
                 state: dict | None = None, fuse: bool = True) -> None:  # fmt: skip
        self.net, self.loss, self.opt, self.ctx, self.fuse = net, loss, opt, ctx, fuse
        self.rows_xp = net.backend.xp  # the namespace of the loop's arrays
        self.decay = None if decay is None else list(decay)
        #: What the last step returned (and, at first, the optimizer state the
        #: caller hands over as its own): the arrays it may donate.
        self._produced: tuple[list[Any], dict[str, Any]] = ([], _state_lists(state or {}))
        self._scratch: dict = {}
        self._update_checked: type | None = None  # the optimizer class whose update was checked
        #: Has the network a parameter large enough to update in place (the state's are shaped alike)?
        least = _MODE.get().in_place_min
        self._large = any(math.prod(a.shape) >= least for a in net._params())

    def __call__(self, params: list[Any], buffers: list[Any], state: dict[str, Any], X: Any, T: Any,
                 ctx: Any = None, *, loss: Any = None, opt: Any = None, donate: bool = False, keep: bool = False):  # fmt: skip
        """One step. ``ctx``, ``loss`` and ``opt`` default to the
        construction's; the loop passes a step's own (a Dropout source, a
        loss weighted by this batch's samples, a schedule's optimizer)."""
        value, grads, buffers = self.net._loss_and_grads(params, X, T, loss or self.loss, buffers, ctx or self.ctx)
        params, state = self.update(params, grads, state, opt=opt, donate=donate)
        return params, buffers, state, value

    def new_epoch(self) -> None:
        """An epoch begins: what the step keeps of its loss for an epoch (on
        JAX its arrays, :meth:`xpnet._programs._JaxStep._held`) is looked at
        again, as a callback may have changed it since. Nothing here."""

    def callbacks_ran(self) -> None:
        """Callbacks ran since the last step: they may have written the arrays
        it returned (``w *= 0.5`` in place). Nothing here: the eager step
        reads them as they are."""

    def step_rows(self, params: list[Any], buffers: list[Any], state: dict[str, Any], rows: Rows, total: Any,
                  ctx: Any = None, *, loss: Any = None, opt: Any = None, donate: bool = False, keep: bool = False):  # fmt: skip
        """One step on ``rows``, its loss added to ``total`` (None before an
        epoch's first): ``(params, buffers, state, total)``."""
        X, T = rows.take(self.rows_xp)
        if rows.W is not None:  # a loss for this minibatch: a compiled step that bakes in its loss runs eagerly
            loss = (loss or self.loss).weighted(rows.weights(self.rows_xp))
        params, buffers, state, value = self(params, buffers, state, X, T, ctx, loss=loss, opt=opt, donate=donate,
                                             keep=keep)  # fmt: skip
        return params, buffers, state, value if total is None else total + value

    def scan_rows(self, params: list[Any], buffers: list[Any], state: dict[str, Any], rows: Rows, count: int,
                  total: Any, *, tail: int = 0, opt: Any = None, contexts: Sequence[Any] | None = None):  # fmt: skip
        """``count`` steps of ``rows.hi - rows.lo`` rows each, from ``rows.lo``
        on, then with ``tail`` one of ``tail`` rows, as one program:
        ``(params, buffers, state, total)``, or ``None`` where the step has
        no such program (then the loop runs step by step; on JAX,
        :class:`xpnet._programs._JaxStep` has one). ``contexts``: each
        step's context where they differ (a random source each: Dropout)."""
        return None

    def update(self, params: list[Any], grads: list[Any], state: dict[str, Any], *, opt: Any = None,
               donate: bool = False):  # fmt: skip
        """``opt.step`` with this step's own earlier results donated."""
        if not self.fuse and params and _namespace(params[0])[1]:  # only CuPy's kernels fuse: no mode entered per step
            with _mode(fuse=False):
                return self._update(params, grads, state, opt or self.opt, donate)
        return self._update(params, grads, state, opt or self.opt, donate)

    def _update(self, params: list[Any], grads: list[Any], state: dict[str, Any], opt: Any, donate: bool):
        copies = None if type(opt) is self._update_checked else self._copies(opt, params)  # a step's Python is felt
        if not self._large or _all_at_once(params):  # nothing to donate, or an update that writes nothing
            new_params, new_state = stepped(opt, opt.step(params, grads, state, decay=self.decay))
            return self._checked(opt, params, new_params, copies, (state, new_state)), new_state
        held = {id(a) for a in self.net._params()} | {id(b) for b in self.net._buffers()}
        params_in, state_in = self._donate(params, state, donate, held)
        # the gradients backprop just made are read once: a parameter's new value may go into its gradient
        grads_in = Donated(grads, self._scratch) if _own_arrays(grads, held | {id(p) for p in params}) else grads
        new_params, new_state = stepped(opt, opt.step(params_in, grads_in, state_in, decay=self.decay))
        self._produced = (self._checked(opt, params, new_params, copies, (state, new_state)), _state_lists(new_state))
        return self._produced[0], new_state

    def _copies(self, opt: Any, params: list[Any]) -> list[Any] | None:
        """Copies of ``params`` at a user optimizer's first update, to see
        that its step wrote nothing into them (the first step's parameters
        are the network's own, never donated); None otherwise, and on JAX,
        whose arrays cannot be written."""
        ours = type(opt).__module__.startswith("xpnet.")
        if type(opt) is self._update_checked or ours or self.net.backend.name == "jax":
            return None
        xp = self.net.backend.xp
        return [xp.asarray(p, copy=True) for p in params]

    def _checked(self, opt: Any, params: list[Any], new: Any, copies: list[Any] | None = None,
                 states: tuple[dict, dict] | None = None) -> list[Any]:  # fmt: skip
        """:func:`checked_update` at the first update (every later one of the
        same optimizer class returns the same kinds of arrays), and the keys
        of the state it returned against those it was given ``states``: a
        step that dropped one failed at the next step as a bare KeyError."""
        if type(opt) is not self._update_checked:
            _check_unwritten(opt, params, copies)
            if states is not None and set(states[0]) != set(states[1]):
                raise ValueError(f"{type(opt).__name__}.step returned a state of keys {sorted(states[1])} for one of "
                                 f"{sorted(states[0])}; a step returns the whole new state, every key init_state "
                                 "makes")  # fmt: skip
            new = checked_update(opt, params, new)
            self._update_checked = type(opt)
        return list(new)

    def reuse(self, arrays: Sequence[Any]) -> None:
        """Take back parameter arrays that the loop no longer needs and that
        nobody else has seen (epochs held for the NaN guard, superseded by a
        later finite one): later updates write into them instead of keeping
        the step's fresh gradient. Freed all at once at a report, two or more
        of them let malloc hand the heap top back to the kernel, and the next
        ones fault in fresh pages (the seeds' 1000-100-1 step on NumPy: up to
        90 page faults per step and 1.2-1.3x slower, in some fits). Each
        update takes one back, so a few at most wait here. Updates on CUDA
        run on all parameters at once, into fresh tensors: none wait there."""
        if self._large and not _all_at_once(arrays):
            self._keep_spares(arrays, self._scratch, tag=("spare",))

    def _keep_spares(self, arrays: Sequence[Any], pools: dict, tag: tuple = (), busy: Sequence[Any] = ()) -> None:
        """Add ``arrays`` that :meth:`reuse` may take to ``pools[(*tag, layout)]``;
        never one the network holds, the last step returned, or in ``busy``."""
        least = _MODE.get().in_place_min
        arrays = [a for a in arrays if math.prod(a.shape) >= least]  # the only ones an update writes
        if not arrays:
            return
        held = {id(a) for a in self.net._params()} | {id(b) for b in self.net._buffers()}
        held |= {id(a) for a in (*self._produced[0], *busy)}
        for a in arrays:
            if id(a) in held or not _recyclable(a, held):
                continue
            key = _layout_key(a)
            spares = pools.setdefault((*tag, key) if tag else key, [])
            if len(spares) < SPARES_MAX:
                spares.append(a)
            held.add(id(a))

    def _compiles(self, ctx: Any, loss: Any, opt: Any) -> bool:
        """May a compiled step serve this call: the construction's context and
        loss (a Dropout source or sample weights change every step), and an
        optimizer of the same kind (a schedule's copy with another rate is:
        the rate reaches the compiled step as a scalar)?"""
        return (
            (ctx is None or ctx == self.ctx)
            and (loss is None or loss is self.loss)
            and (opt is None or type(opt) is type(self.opt))
        )

    def _donate(self, params: list[Any], state: dict[str, Any], donate: bool,
                held: set[int]) -> tuple[list[Any], dict[str, Any]]:  # fmt: skip
        """``held``: the ids of the arrays the network holds (never donated)."""
        mine, mine_state = self._produced

        def ours(arrays: Sequence[Any], before: Sequence[Any] | None) -> bool:
            return (
                bool(before)
                and len(arrays) == len(before)
                and all(a is b and id(a) not in held for a, b in zip(arrays, before))
            )

        params_in = Donated(params, self._scratch) if donate and ours(params, mine) else params
        state_in = {
            k: Donated(v, self._scratch) if isinstance(v, list) and ours(v, mine_state.get(k)) else v
            for k, v in state.items()
        }
        return params_in, state_in


def stepped(opt: Any, out: Any) -> tuple[Any, dict[str, Any]]:
    """``out``, what ``opt.step`` returned, refused unless it is the pair
    ``(new_params, new_state)`` with a dict for the state: a step that
    returned only its parameters failed in Python's unpacking ("too many
    values to unpack"), naming no optimizer. A type check per step, no
    operation."""
    if not isinstance(out, (tuple, list)) or len(out) != 2 or not isinstance(out[1], dict):  # types: no union a step
        got = f"a {type(out).__name__}"
        if isinstance(out, tuple | list):
            got = f"a pair whose state is a {type(out[1]).__name__}" if len(out) == 2 else f"{got} of {len(out)}"
        raise ValueError(f"{type(opt).__name__}.step returned {got}; an optimizer's step returns the pair "
                         "(new_params, new_state), the state a dict as init_state gives it")  # fmt: skip
    return out


def checked_update(opt: Any, params: Sequence[Any], new: Any) -> list[Any]:
    """``opt.step``'s new parameters, refused unless each is its parameter's
    kind of array, shape and dtype: a custom optimizer's slip would
    otherwise be committed (a float64 weight in a float32 network, a lost
    bias, a broadcast shape), found only when ``save`` or ``load`` refuses
    the file. Metadata only: no sync, no operation."""
    if isinstance(new, Iterable) and not isinstance(new, str | bytes | Mapping) and not hasattr(new, "shape"):
        new = list(new)  # a tuple, a generator, a map
    who = f"{type(opt).__name__}.step"
    if not isinstance(new, list) or len(new) != len(params):
        got = f"{len(new)} arrays" if isinstance(new, list) else type(new).__name__
        raise ValueError(f"{who} returned {got} as the new parameters; expected a list of {len(params)}, one per "
                         "parameter, in order")  # fmt: skip
    for i, (p, q) in enumerate(zip(params, new)):
        if not hasattr(q, "shape") or not _alike(p, q) or tuple(q.shape) != tuple(p.shape) or q.dtype != p.dtype:
            got = f"{type(q).__name__} of shape {tuple(q.shape)}, dtype {q.dtype}" if hasattr(q, "shape") else (
                type(q).__name__)  # fmt: skip
            raise ValueError(f"{who} returned a {got} as parameter {i}; expected the parameter's kind of array "
                             f"({type(p).__name__}), shape {tuple(p.shape)} and dtype {p.dtype}")  # fmt: skip
    return new


def _check_unwritten(opt: Any, params: Sequence[Any], copies: Sequence[Any] | None) -> None:
    """Refuse a step that wrote into the parameters it was given (one
    transfer, at a user optimizer's first update): EarlyStopping keeps the
    best epoch's arrays, and the loop those of the epochs not yet reported,
    so ``p -= lr * g`` restored other weights and reported moved ones."""
    if not copies:
        return
    from array_api_compat import array_namespace

    xp = array_namespace(*params)
    same = [xp.all((p == c) | xp.isnan(c)) for p, c in zip(params, copies)]
    if not bool(xp.all(xp.stack(same))):
        raise ValueError(f"{type(opt).__name__}.step wrote into the parameters it was given; an optimizer's step "
                         "returns new arrays and writes nothing in place (p - lr * g, not p -= lr * g)")


def _alike(p: Any, q: Any) -> bool:
    """Arrays of one library (a JAX tracer is a JAX array)."""
    if type(p) is type(q):
        return True
    from array_api_compat import array_namespace

    try:
        return array_namespace(p) is array_namespace(q)
    except TypeError:
        return False


def _own_arrays(arrays: Sequence[Any], held: set[int]) -> bool:
    """Are these distinct NumPy arrays or torch tensors that own their memory
    (no views), none of them among the ids ``held``? The gradients backprop
    just made are; a custom layer that hands back a parameter (the gradient
    of an L2 term), or a view of its input, as a gradient is never written."""
    ids = {id(a) for a in arrays}
    if len(ids) != len(arrays) or not ids.isdisjoint(held):
        return False
    return all((a.base is None) if isinstance(a, np.ndarray) else (getattr(a, "_base", 0) is None) for a in arrays)


def _all_at_once(arrays: Sequence[Any]) -> bool:
    """Will an eager update of these take the multi-tensor path (CUDA torch)?
    It makes new tensors: donating to it, or keeping spares for it, is
    bookkeeping per step for nothing."""
    mode = _MODE.get()
    return bool(arrays) and mode.scalars is None and _foreach_applies(arrays[0], mode.foreach, ())


def _recyclable(a: Any, held: set[int]) -> bool:
    """May an update write into ``a``: a NumPy array or torch tensor (the
    libraries :func:`xpnet._inplace._run_in_place` writes) that owns its
    memory, writeable."""
    return _same_layout([a]) and _writable(a) and _own_arrays([a], held)


def _state_lists(state: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: list(v) for k, v in state.items() if isinstance(v, list)}
