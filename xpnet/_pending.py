"""Completed epochs whose figures are still on the device.

``fit`` does not fetch each epoch's loss as it ends: on a GPU that is a host
sync per epoch, which stalls full-batch training (one step per epoch). The
epoch's figures (its loss, and the validation loss and metrics) stay 0-d
device arrays here, next to references to the parameters and buffers the
epoch ended with, until a report is due. Then all of them travel to the host
in one transfer, with the NaN guard: the sum of each of the last parameters
and buffers (finite only if every entry is, one reduction per array). Pure updates make the
held references cheap: each is an array the optimizer made anyway, kept a
little longer, so the weights of the last finite epoch are still there when
a later one is not.

A report is due after :data:`EVERY` epochs, fewer when the model is large
(at most :data:`HELD_BYTES` of parameter sets are held on a device,
:data:`HOST_HELD_BYTES` on the CPU, where a report stalls nothing and
holding many large sets only makes the allocator fetch fresh pages from the
kernel: 5% of the seeds' 1000-100-1 step at 16 sets; two sets of it, one
report per two epochs, halve the reports' share), or after ``seconds`` (the
progress bar's pace) when one is shown. The sets a report passes over go
back to the training step as spare arrays (``TrainStep.reuse``): freed
together, they let malloc return the heap top to the kernel and fault it in
again, in some fits.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ._kernels import array_xp
from ._programs import one_program

__all__ = ["EVERY", "HELD_BYTES", "HOST_HELD_BYTES", "PendingEpochs", "all_finite", "list_entries"]

#: Epochs whose figures wait on the device before one transfer fetches them.
EVERY = 64
#: Bytes of parameter sets held for the NaN guard on a device (bounds ``EVERY`` for large models). At
#: 64 MiB the H100 run's Large network (148 MB of weights) reported, and so synced, every step: the GPU
#: then idled while the report's Python ran, about 0.3 ms of a 36.7 ms step. 512 MiB: every third.
HELD_BYTES = 512 * 2**20
#: The same on the CPU (NumPy, torch and JAX on the CPU).
HOST_HELD_BYTES = 2 * 2**20


class PendingEpochs:
    """The epochs completed since the last report, on the device."""

    def __init__(self, backend: Any, params: list[Any], seconds: float | None = None, every: int | None = None) -> None:
        self.backend = backend
        set_bytes = sum(_nbytes(backend.xp, p) for p in params) or 1
        budget = HOST_HELD_BYTES if "cpu" in str(backend.device).lower() else HELD_BYTES
        #: Reports are due after this many epochs.
        self.limit = max(1, min(EVERY if every is None else every, budget // set_bytes))
        self.seconds = seconds
        self.figures: list[list[Any]] = []
        self.states: list[tuple[list[Any], list[Any]]] = []
        self.since = time.perf_counter()
        #: The optimizer state after the latest held epoch (the loop sets it before :meth:`add`).
        self.optimizer_state: dict[str, Any] = {}
        #: After :meth:`take`: the optimizer state entry found not finite (``"v.0"``), else ``None``.
        self.bad_state: str | None = None

    def __len__(self) -> int:
        return len(self.figures)

    def add(self, figures: list[Any], params: list[Any], buffers: list[Any]) -> bool:
        """Hold an epoch's device figures (its loss first) and end state;
        whether a report is due."""
        self.figures.append(figures)
        self.states.append((params, buffers))
        if len(self.figures) >= self.limit:
            return True
        return self.seconds is not None and time.perf_counter() - self.since >= self.seconds

    def take(self) -> tuple[list[list[float]], list[tuple[list[Any], list[Any]]], int | None]:
        """``(rows, states, bad)``: each held epoch's figures as host floats
        (one transfer), its end state, and the index of the first epoch whose
        loss or weights are not finite (``None`` when all are). Clears.

        The optimizer state is checked in the same transfer, after the last
        epoch only (the step overwrites it in place, and a check per epoch
        would cost a pass over it per epoch). Where it alone is not finite
        (Adam's v overflowed: the weights froze, the loss stays finite),
        ``bad`` is 0, the first held epoch, and :attr:`bad_state` names it:
        the epochs before it were the last checked with a finite state."""
        figures, states = self.figures, self.states
        self.figures, self.states = [], []
        self.since = time.perf_counter()
        self.bad_state = None
        if not figures:
            return [], [], None
        width = len(figures[0])
        flat = [f for row in figures for f in row]
        opt_arrays = list_entries(self.optimizer_state)
        sums = one_program(_weight_sums, self.backend)(_state_arrays(states[-1]) + [a for _, a in opt_arrays])
        host = self.backend.to_floats(flat + sums)
        n_weights = len(host) - len(opt_arrays)
        weights_finite = all(math.isfinite(v) for v in host[len(flat) : n_weights])
        rows = [host[i * width : (i + 1) * width] for i in range(len(figures))]
        bad = next((i for i, row in enumerate(rows) if not math.isfinite(row[0])), None)
        if bad is not None or not weights_finite:
            bad = self._first_bad_weights(states, len(rows) if bad is None else bad, bad)
        if bad is None and not all(math.isfinite(v) for v in host[n_weights:]):
            self.bad_state = self._first_bad_entry(opt_arrays)  # a sum of finite squares can overflow
        if bad is None:
            self.bad_state = self.bad_state or _bad_scalar(self.optimizer_state)
        return rows, states, 0 if self.bad_state else bad

    def _first_bad_entry(self, named: list[tuple[str, Any]]) -> str | None:
        """The name of the first of ``named`` arrays that is not finite, else
        ``None`` (the exact check, one more transfer)."""
        flags = self.backend.to_host([all_finite(self.backend.xp, [a]) for _, a in named])
        return next((name for (name, _), ok in zip(named, flags) if not ok), None)

    def _first_bad_weights(self, states: list[tuple[list[Any], list[Any]]], upto: int, bad: int | None) -> int | None:
        """The first of ``states[:upto]`` with a weight that is not finite,
        else ``bad`` (the exact check, one more transfer: a sum of finite
        weights can overflow, and a loss can turn bad a step after them)."""
        if upto == 0:
            return bad
        xp = self.backend.xp
        checked = [all_finite(xp, _state_arrays(state)) for state in states[:upto]]
        if checked[0] is None:  # no parameters: nothing to be non-finite
            return bad
        flags = self.backend.to_host(checked)
        return next((i for i in range(upto) if not flags[i]), bad)


def _state_arrays(state: tuple[list[Any], list[Any]]) -> list[Any]:
    """An epoch's parameters and buffers: the guard covers both, since both
    are committed together (BatchNorm's running variance can overflow while
    every weight stays finite, and a model file refuses it)."""
    params, buffers = state
    return list(params) + list(buffers)


def list_entries(state: dict[str, Any]) -> list[tuple[str, Any]]:
    """An optimizer state's arrays, named ``key.i`` as checkpoints name them."""
    return [(f"{k}.{i}", a) for k, v in state.items() if isinstance(v, list) for i, a in enumerate(v)]


def _bad_scalar(state: dict[str, Any]) -> str | None:
    """The first plain number of an optimizer state that is not finite (a
    custom rule's running scale): host data, no transfer."""
    return next((k for k, v in state.items() if isinstance(v, float) and not math.isfinite(v)), None)


def all_finite(xp: Any, params: list[Any]) -> Any:
    """One 0-d device boolean: every parameter entry is finite (no sync);
    ``None`` for no parameters."""
    ok = None
    for p in params:
        flag = xp.all(xp.isfinite(p))
        ok = flag if ok is None else ok & flag
    return ok


def _weight_sums(params: list[Any]) -> list[Any]:
    """Each parameter's sum: all finite only if every entry is (one reduction
    per parameter; adding them up would cost as many operations again)."""
    if not params:
        return []
    xp = array_xp(params[0])  # one library for all (cached per array type: a report is per epoch)
    return [xp.sum(p) for p in params]


def _nbytes(xp: Any, a: Any) -> int:
    return math.prod(a.shape) * (xp.finfo(a.dtype).bits // 8 if xp.isdtype(a.dtype, "real floating") else 8)
