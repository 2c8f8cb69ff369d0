"""fit: minibatches, History, early stopping on ``tol``, the NaN guard, and
checkpoints.

The training loop keeps everything on the device. Per step it slices (or, when
shuffling, gathers) a minibatch, computes loss and gradients, and asks the
optimizer for new parameters; the step's loss is added to a device scalar.
Once per epoch, one small array travels to the host: the epoch loss, the sum
of all weights (finite only if every weight is) and, with validation data,
the validation loss and metrics. Only then are the epoch's parameters committed to
the network, so a diverging run leaves the last finite weights in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._backend import quiet_float_errors
from ._device_random import DeviceRandom, key_from_state
from ._random import host_rng
from .layers.base import Context
from .losses import get_loss
from .metrics import get_metric
from .optimizers import get_optimizer
from .validation import DeferredChecks, check_fit_options, positive

__all__ = ["History", "TrainingInterrupted", "fit"]


@dataclass
class History:
    """What ``fit`` recorded, one Python float per completed epoch.

    ``loss``: the mean of the epoch's minibatch losses, each from its step's
    forward pass (before that step's update). ``val_loss``: the loss on
    ``validation_data`` after the epoch. ``metrics``: validation metrics by
    name (``"val_accuracy"``). ``stopped_early``: ``tol`` ended the run.
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def __len__(self) -> int:
        return len(self.loss)

    def to_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "val_loss": self.val_loss, "metrics": self.metrics, "stopped_early": self.stopped_early}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(
            [float(v) for v in d.get("loss", [])],
            [float(v) for v in d.get("val_loss", [])],
            {k: [float(v) for v in vs] for k, vs in d.get("metrics", {}).items()},
            bool(d.get("stopped_early", False)),
        )


class TrainingInterrupted(KeyboardInterrupt):
    """``fit`` stopped because its ``interrupt`` was set.

    ``history`` holds the completed epochs, ``checkpoint`` the file written
    (``None`` without ``checkpoint=``). ``write_checkpoint(path)`` writes the
    checkpoint of the exact point where training stopped, for callers that
    passed no path (``None`` when the weights there were not finite)."""

    def __init__(self, message: str, history: History, checkpoint: str | None, write_checkpoint: Any = None) -> None:
        super().__init__(message)
        self.history = history
        self.checkpoint = checkpoint
        self.write_checkpoint = write_checkpoint


@dataclass
class _Position:
    """Where a run stands: the next epoch, the steps already done in it, the
    shuffling generator's state at that epoch's start and the partial loss."""

    epoch: int = 0
    step: int = 0
    rng_state: dict[str, Any] | None = None
    partial_loss: Any = None


def fit(
    net: Any,
    X: Any,
    y: Any,
    *,
    loss: Any = "mse",
    optimizer: Any = "sgd",
    lr: float = 0.01,
    epochs: int = 1,
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    tol: float | None = None,
    progress: bool = False,
    validation_data: tuple[Any, Any] | None = None,
    metrics: tuple[str, ...] = (),
    checkpoint: Any = None,
    resume: Any = None,
    interrupt: Any = None,
    distributed: Any = False,
    warm_start: bool = False,
) -> History:
    """Train ``net`` on ``(X, y)`` and return its :class:`History`.

    ``batch_size=None`` is full-batch gradient descent; otherwise minibatches
    of ``batch_size`` rows (the last one may be shorter), reshuffled every
    epoch by ``numpy.random.default_rng(seed)`` on the host when ``shuffle``,
    so every backend sees the same minibatches in the same order.
    ``tol``: stop after the first epoch whose loss improves by less than
    ``tol`` (or gets worse). ``metrics`` (e.g. ``("accuracy",)``) are computed
    on ``validation_data`` each epoch, in the same transfer as the losses.

    ``checkpoint=PATH`` writes a checkpoint after every completed epoch (the
    model in ``save``'s format plus optimizer state, shuffling state, epoch
    count and History); ``resume=PATH`` restores one and runs the remaining
    epochs up to ``epochs``. ``interrupt``: an object with ``is_set()`` (a
    ``threading.Event``); once set, fit finishes the current step, writes a
    checkpoint of that exact point, and raises :class:`TrainingInterrupted`.

    ``distributed=True``: data-parallel training on the processes of
    ``mpiexec -n N`` (needs ``xpnet[mpi]``; see :mod:`xpnet.distributed`).
    Every process passes the same ``X``, ``y`` and arguments; rank 0's
    initial weights and shuffling state are used by all. Each global
    minibatch is split into ``N`` contiguous shares, each process computes
    its share's part of the loss and gradients, and one allreduce per step
    sums them, so all processes apply the same update and return the same
    History, equal to one process's to rounding. Only rank 0 shows progress
    and writes checkpoints (``resume`` reads the file on every process: use a
    shared filesystem). With N > 1, an exception on any process prints its
    rank and message and aborts the whole job (``MPI_Abort``).
    One process trains as usual (with a warning when not started by
    ``mpiexec``); without mpi4py, ``ImportError`` names the extra. A
    :class:`xpnet.distributed.DataParallel` may be passed instead of ``True``
    to use another communicator.

    ``warm_start=True`` continues the optimizer state (Adam's moments and step
    count, SGD's velocity) that the previous ``fit`` of this network left
    behind, as one longer run would. The optimizer must be of the same class
    and keep the same kind of state; its settings may change (a lower ``lr``,
    as a schedule would), a state that does not fit (SGD without momentum
    after SGD with) is a ``ValueError``. Without a previous ``fit`` the state
    starts fresh. Each completed ``fit`` leaves its final state on the network
    (pickled with it); one that raised leaves none. Not with ``resume``.

    Raises ``FloatingPointError`` naming the epoch if the loss or the weights
    stop being finite; the network then keeps the last finite epoch's weights.
    """
    options = dict(
        loss=loss, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed,
        tol=tol, progress=progress, validation_data=validation_data, metrics=metrics, checkpoint=checkpoint,
        resume=resume, interrupt=interrupt, warm_start=warm_start,
    )  # fmt: skip
    check_fit_options(distributed=distributed, **options)
    if not distributed:
        return _fit(net, X, y, None, **options)
    from .distributed import DataParallel

    dp = distributed if isinstance(distributed, DataParallel) else DataParallel()
    with dp.together():  # aborts the job if this process raises
        return _fit(net, X, y, dp, **options)


def _fit(
    net: Any,
    X: Any,
    y: Any,
    dp: Any,
    *,
    loss: Any,
    optimizer: Any,
    lr: float,
    epochs: int,
    batch_size: int | None,
    shuffle: bool,
    seed: int | None,
    tol: float | None,
    progress: bool,
    validation_data: tuple[Any, Any] | None,
    metrics: tuple[str, ...],
    checkpoint: Any,
    resume: Any,
    interrupt: Any,
    warm_start: bool,
) -> History:
    """The loop of :func:`fit`; ``dp`` is its ``DataParallel``, or ``None``."""
    from . import checkpoints

    loss = get_loss(loss)
    opt = get_optimizer(optimizer, lr)
    epochs = positive(epochs, "epochs", integer=True)
    batch_size = positive(batch_size, "batch_size", integer=True, allow_none=True)
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, int | float) or not tol >= 0):
        raise ValueError(f"tol must be a non-negative number or None, got {tol!r}")
    metric_fns = {f"val_{m.name}": m for m in map(get_metric, metrics)}
    if metric_fns and validation_data is None:
        raise ValueError("metrics are computed on validation_data; pass validation_data=(X_val, y_val)")
    rng = host_rng(seed)

    # Convert once and check values in a single transfer.
    backend, xp = net.backend, net.backend.xp
    checks = DeferredChecks(backend)
    X, T, labels = net._queue_inputs(X, y, loss, checks)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        Xv, Tv, labels_v = net._queue_inputs(*validation_data, loss, checks, what="validation_data ")
    checks.run()
    T = net._one_hot_if(T, labels)
    if validation_data is not None:
        val = (Xv, net._one_hot_if(Tv, labels_v))

    params, buffers = net._params(), net._buffers()
    state = _continued_state(net, opt, params) if warm_start else opt.init_state(params)
    net._fit_state = None  # set again when this fit completes
    decay = net._decay_mask()  # weight decay on weights, not on biases or norms
    history = History(metrics={name: [] for name in metric_fns})
    pos = _Position()
    if resume is not None:
        params, buffers, state, history, pos = checkpoints.restore(
            resume, net, opt, backend, epochs=epochs, steps_per_epoch=-(-X.shape[0] // (batch_size or X.shape[0])),
            metrics=list(metric_fns), validation=validation_data is not None)  # fmt: skip
        rng.bit_generator.state = pos.rng_state
        net._commit(params, buffers)
        if history.stopped_early:
            net._fit_state = (opt, state)
            return history

    n = X.shape[0]
    step = n if batch_size is None else min(batch_size, n)
    bounds = [(start, min(start + step, n)) for start in range(0, n, step)]
    root = dp is None or dp.is_root
    if dp is not None:  # every process: same data shapes and settings, then rank 0's start
        dp.check_same(_run_facts(X, T, val, step, epochs, shuffle, tol, loss, opt, resume, len(history.loss)))
        params = dp.broadcast_start(backend, params, rng)
        net._commit(params, buffers)
    bar = _progress_bar(epochs, progress and root, initial=len(history.loss))

    def save_checkpoint(at: _Position, path: Any = checkpoint) -> None:
        if path is not None and root:
            checkpoints.write(path, net, opt, state, params, history, at, buffers)

    def stopped(at: _Position, finite: bool = True) -> TrainingInterrupted:
        where = f"epoch {at.epoch + 1}, step {at.step}" if at.step else f"the end of epoch {at.epoch}"
        saved = f"; checkpoint written to {checkpoint}" if checkpoint is not None and finite else ""
        writer = (lambda path: save_checkpoint(at, path)) if finite else None
        return TrainingInterrupted(
            f"training interrupted at {where}{saved}", history, str(checkpoint) if saved else None, writer
        )

    def interrupted() -> bool:  # distributed: any process's interrupt, as agreed in the step's allreduce
        return interrupt is not None and (interrupt.is_set() if dp is None else dp.interrupt_requested)

    # The generator's state is a dict built on request: take it only when a
    # checkpoint may need it (it costs microseconds per epoch).
    keeps_state = checkpoint is not None or interrupt is not None
    try:
        with quiet_float_errors():
            for epoch in range(pos.epoch, epochs):
                resumed = epoch == pos.epoch and pos.step > 0
                epoch_start_state = pos.rng_state if resumed else rng.bit_generator.state if keeps_state else None
                key = None
                if net._uses_rng:  # Dropout's key: from the seed, through the state that checkpoints keep
                    epoch_start_state = epoch_start_state or rng.bit_generator.state
                    key = key_from_state(epoch_start_state)
                order = backend.asarray(rng.permutation(n)) if shuffle and step < n else None
                total = pos.partial_loss if resumed else None
                for k in range(pos.step if resumed else 0, len(bounds)):
                    start, stop = bounds[k]
                    lo, hi = (start, stop) if dp is None else dp.share(start, stop)  # this process's rows
                    if order is None:
                        Xb, Tb = X[lo:hi, ...], T[lo:hi, ...]
                    else:
                        rows = order[lo:hi]
                        Xb, Tb = xp.take(X, rows, axis=0), xp.take(T, rows, axis=0)
                    ctx = _step_context(key, epoch * len(bounds) + k)
                    if dp is None:
                        value, grads, buffers = net._loss_and_grads(params, Xb, Tb, loss, buffers, ctx)
                    else:  # this process's part of the global minibatch loss, summed over all
                        value, grads, buffers = dp.loss_and_grads(
                            net, params, Xb, Tb, loss, stop - start, interrupt, buffers, ctx
                        )
                    params, state = opt.step(params, grads, state, decay=decay)
                    del grads  # free the gradients before the next step allocates its own
                    total = value if total is None else total + value
                    if k + 1 < len(bounds) and interrupted():
                        at = _Position(epoch, k + 1, epoch_start_state, total)
                        finite = _finite(backend, params, total)
                        if finite:
                            net._commit(params, buffers)
                            save_checkpoint(at)
                        raise stopped(at, finite)
                epoch_loss = total / len(bounds)
                # The NaN guard rides in the same transfer: the sum of all the
                # weights is finite when every weight is (one reduction per
                # parameter, no temporaries). Only when it is not does the exact
                # check run (finite weights can overflow a sum), at one more transfer.
                report = [epoch_loss, _weight_sum(xp, params)]
                if val is not None:
                    Yv = net._predict(params, buffers, val[0])
                    report.append(loss._value(xp, val[1], Yv))
                    report += [fn(val[1], Yv) for fn in metric_fns.values()]
                host = backend.to_floats(report)
                finite = math.isfinite(host[0]) and (math.isfinite(host[1]) or _all_finite_host(backend, params))
                if not finite:
                    raise FloatingPointError(
                        f"the training loss became NaN or infinite in epoch {epoch + 1}; the network keeps "
                        f"the weights of epoch {epoch} (try a lower learning rate than lr={_lr(opt)})"
                    )
                net._commit(params, buffers)
                _record(history, host, val is not None, metric_fns)
                _update_bar(bar, history)
                history.stopped_early = (
                    tol is not None and len(history.loss) > 1 and history.loss[-2] - history.loss[-1] < tol
                )
                at = _Position(epoch + 1, 0, rng.bit_generator.state if keeps_state else None, None)
                save_checkpoint(at)
                if history.stopped_early:
                    break
                if epoch + 1 < epochs and interrupted():
                    raise stopped(at)
    finally:
        if bar is not None:
            bar.close()
    net._fit_state = (opt, state)
    return history


def _continued_state(net: Any, opt: Any, params: list[Any]) -> Any:
    """``warm_start``: the optimizer state the previous ``fit`` left on ``net``
    (fresh when there is none), refused when it does not fit ``opt``."""
    fresh = opt.init_state(params)
    previous = getattr(net, "_fit_state", None)
    if previous is None:
        return fresh
    old, state = previous
    if type(old) is not type(opt) or set(state) != set(fresh):
        raise ValueError(
            f"warm_start=True continues the optimizer state of the previous fit, which used {old!r}; "
            f"its state does not fit {opt!r}: pass warm_start=False to start a fresh state"
        )
    return state


#: The context of a training step in a network that draws no random numbers.
_TRAINING = Context(training=True)


def _step_context(key: int | None, step_index: int) -> Context:
    """A training step's context: batch behaviour, and a device random source
    from the run's key and the global step index (so a resumed run draws the
    same Dropout masks); ``key=None`` (no layer draws): none. Ints on the
    host: no device work, no transfer."""
    return _TRAINING if key is None else Context(True, DeviceRandom(key, step_index))


def _run_facts(
    X: Any, T: Any, val: Any, step: int, epochs: int, shuffle: bool, tol: Any, loss: Any, opt: Any, resume: Any, done: int
) -> dict[str, Any]:
    """What must be equal on every process of a distributed run (else it hangs)."""
    return {
        "X.shape": tuple(X.shape),
        "y.shape": tuple(T.shape),
        "dtype": str(X.dtype),
        "validation_data shapes": None if val is None else (tuple(val[0].shape), tuple(val[1].shape)),
        "batch_size": step,
        "epochs": epochs,
        "shuffle": shuffle,
        "tol": tol,
        "loss": loss.name,
        "optimizer": repr(opt),
        "resume": resume is not None,
        "completed epochs": done,
    }


def _record(history: History, host: list[float], with_val: bool, metric_fns: dict[str, Any]) -> None:
    """Append an epoch's report: ``[loss, weight sum, val_loss, *metrics]``."""
    history.loss.append(host[0])
    if with_val:
        history.val_loss.append(host[2])
        for name, v in zip(metric_fns, host[3:]):
            history.metrics[name].append(v)


def _weight_sum(xp: Any, params: list[Any]) -> Any:
    """The sum of every parameter entry: finite only if all of them are."""
    total = None
    for p in params:
        s = xp.sum(p)
        total = s if total is None else total + s
    return total


def _all_finite_host(backend: Any, params: list[Any]) -> bool:
    """The exact check, for when the weights' sum is not finite (one transfer)."""
    return bool(backend.to_numpy(_all_finite(backend.xp, params)))


def _finite(backend: Any, params: list[Any], total: Any) -> bool:
    xp = backend.xp
    checked = xp.where(_all_finite(xp, params), total, float("nan"))
    return math.isfinite(float(backend.to_numpy(checked)))


def _all_finite(xp: Any, params: list[Any]) -> Any:
    """One 0-d device boolean: every parameter entry is finite (no sync)."""
    ok = None
    for p in params:
        flag = xp.all(xp.isfinite(p))
        ok = flag if ok is None else ok & flag
    return ok


def _lr(opt: Any) -> Any:
    return getattr(opt, "lr", "?")


def _progress_bar(epochs: int, progress: bool, initial: int = 0):
    if not progress:
        return None
    from ._progress import progress_bar  # a plain line per epoch where the terminal has no width

    return progress_bar(epochs, initial)


def _update_bar(bar: Any, history: History) -> None:
    """Progress from host floats the epoch already fetched: no extra sync."""
    if bar is None:
        return
    post = {"loss": f"{history.loss[-1]:.4g}"}
    if history.val_loss:
        post["val_loss"] = f"{history.val_loss[-1]:.4g}"
    for name, values in history.metrics.items():
        post[name] = f"{values[-1]:.4f}"
    bar.set_postfix(post, refresh=False)
    bar.update(1)
