"""fit: the training loop, as named steps over a run's state.

A run is prepared once (inputs converted and checked in one transfer, the
optimizer, the History, a checkpoint restored), then each epoch is three
steps: ``epoch`` (the minibatch steps: slice or gather a batch, loss and
gradients, the optimizer's pure update, the loss added to a device scalar),
``report`` (the epoch's figures held on the device, see
:mod:`xpnet._pending`, and settled when due: to the host in one transfer,
the NaN guard, the commit of the parameters, the History, ``tol``) and
``checkpoint``. Parameters are committed to the network only once a report
found them finite, so a diverging run keeps the last finite weights.
"""

from __future__ import annotations

import math
from typing import Any

from . import checkpoints
from ._backend import quiet_float_errors
from ._random import host_rng
from .layers.base import Context
from .losses import get_loss
from .metrics import get_metric
from .optimizers import get_optimizer
from ._pending import PendingEpochs, all_finite
from .records import History, Position, TrainingInterrupted
from .validation import DeferredChecks, check_fit_options, positive

__all__ = ["History", "TrainingInterrupted", "fit"]


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

    Raises ``FloatingPointError`` naming the epoch if the loss or the weights
    stop being finite; the network then keeps the last finite epoch's weights.

    **Host syncs.** Nothing goes to the host per step, nor per epoch unless
    an option needs it. Each epoch's figures (loss, validation loss and
    metrics) and the NaN guard stay on the device, with references to the
    epoch's parameters, and reach the host together in one transfer every 16
    epochs (fewer for large models: at most 64 MiB of parameter sets are
    held), at least every 0.2 s while a progress bar is shown, and at the end;
    the network's weights are committed then (an error or Ctrl-C still
    leaves the last completed epoch's). What decides on the host after every
    epoch costs one transfer per epoch: ``tol`` and ``checkpoint`` (which
    also copies the weights to the host). ``interrupt`` costs nothing until it
    is set; distributed training exchanges the gradients every step anyway.
    """
    options = dict(
        loss=loss, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed,
        tol=tol, progress=progress, validation_data=validation_data, metrics=metrics, checkpoint=checkpoint,
        resume=resume, interrupt=interrupt,
    )  # fmt: skip
    check_fit_options(distributed=distributed, **options)
    if not distributed:
        return _fit(net, X, y, None, **options)
    from .distributed import DataParallel

    dp = distributed if isinstance(distributed, DataParallel) else DataParallel()
    with dp.together():  # aborts the job if this process raises
        return _fit(net, X, y, dp, **options)


def _fit(net: Any, X: Any, y: Any, dp: Any, **options: Any) -> History:
    """The loop of :func:`fit`: prepare, then per epoch the named steps;
    ``dp`` is its ``DataParallel``, or ``None``."""
    run = _Run(net, dp, options)
    run.prepare(X, y)
    if run.history.stopped_early:  # resumed after the run had ended
        return run.history
    try:
        with quiet_float_errors():
            for epoch in range(run.pos.epoch, run.epochs):
                run.epoch(epoch)
                stop = run.report(epoch)
                run.checkpoint(epoch)
                if stop:
                    break
                run.stop_if_interrupted(epoch)
            run.settle()
    except BaseException:
        run.settle_quietly()  # the epochs completed before the error still count
        raise
    finally:
        run.close()
    return run.history


class _Run:
    """One call of ``fit``: its settings, data and the state that changes
    from step to step (parameters, buffers, optimizer state, History,
    position). Its methods are the loop's named steps."""

    def __init__(self, net: Any, dp: Any, options: dict[str, Any]) -> None:
        self.net, self.dp = net, dp
        self.backend, self.xp = net.backend, net.backend.xp
        self.loss = get_loss(options["loss"])
        self.opt = get_optimizer(options["optimizer"], options["lr"])
        self.epochs = positive(options["epochs"], "epochs", integer=True)
        self.batch_size = positive(options["batch_size"], "batch_size", integer=True, allow_none=True)
        self.tol = _check_tol(options["tol"])
        self.shuffle, self.interrupt = options["shuffle"], options["interrupt"]
        self.checkpoint_path, self.resume = options["checkpoint"], options["resume"]
        self.metric_fns = {f"val_{m.name}": m for m in map(get_metric, options["metrics"])}
        self.validation_data = options["validation_data"]
        if self.metric_fns and self.validation_data is None:
            raise ValueError("metrics are computed on validation_data; pass validation_data=(X_val, y_val)")
        self.rng = host_rng(options["seed"])
        #: The run's random key (the Dropout masks' source); fixed per run.
        self.key = None
        self.progress = options["progress"]
        self.root = dp is None or dp.is_root
        self.bar = None

    # -- prepare ---------------------------------------------------------------

    def prepare(self, X: Any, y: Any) -> None:
        """Inputs on the device (checked in one transfer), the start state,
        a checkpoint restored, the minibatch bounds, the progress bar."""
        self._inputs(X, y)
        net = self.net
        self.params, self.buffers = net._params(), net._buffers()
        self.state = self.opt.init_state(self.params)
        self.decay = _decay_mask(net, self.opt)  # weight decay on weights, not on biases or norms
        self.history = History(metrics={name: [] for name in self.metric_fns})
        self.pos = Position()
        n = self.X.shape[0]
        step = n if self.batch_size is None else min(self.batch_size, n)
        self.bounds = [(start, min(start + step, n)) for start in range(0, n, step)]
        if self.resume is not None:
            self._restore()
        if self.dp is not None:  # every process: same data shapes and settings, then rank 0's start
            self.dp.check_same(_run_facts(self, step))
            self.params = self.dp.broadcast_start(self.backend, self.params, self.rng)
            net._commit(self.params, self.buffers)
        # The generator's state is a dict built on request: take it only when
        # a checkpoint may need it (it costs microseconds per epoch).
        self.keeps_state = self.checkpoint_path is not None or self.interrupt is not None
        self.bar = _progress_bar(self.epochs, self.progress and self.root, initial=len(self.history.loss))
        # Per-epoch decisions on the host settle every epoch (one transfer each).
        self.every_epoch = self.tol is not None or self.checkpoint_path is not None
        self.pending = PendingEpochs(self.backend, self.params, _BAR_SECONDS if self.bar is not None else None)

    def _inputs(self, X: Any, y: Any) -> None:
        """Convert once and check every value in a single transfer."""
        net, loss = self.net, self.loss
        checks = DeferredChecks(self.backend)
        X, T, labels = net._queue_inputs(X, y, loss, checks)
        val = self.validation_data
        if val is not None:
            if not isinstance(val, tuple | list) or len(val) != 2:
                raise TypeError("validation_data must be a pair (X_val, y_val)")
            Xv, Tv, labels_v = net._queue_inputs(*val, loss, checks, what="validation_data ")
        checks.run()
        self.X, self.T = X, net._one_hot_if(T, labels)
        self.val = None if val is None else (Xv, net._one_hot_if(Tv, labels_v))

    def _restore(self) -> None:
        self.params, self.buffers, self.state, self.history, self.pos = checkpoints.restore(
            self.resume, self.net, self.opt, self.backend, epochs=self.epochs, steps_per_epoch=len(self.bounds),
            metrics=list(self.metric_fns), validation=self.val is not None)  # fmt: skip
        self.rng.bit_generator.state = self.pos.rng_state
        self.net._commit(self.params, self.buffers)

    # -- epoch -----------------------------------------------------------------

    def epoch(self, epoch: int) -> None:
        """The epoch's minibatch steps, on the device; its summed loss in
        ``self.total``. A set ``interrupt`` stops it after a step."""
        pos, rng = self.pos, self.rng
        resumed = epoch == pos.epoch and pos.step > 0
        self.epoch_start_state = pos.rng_state if resumed else rng.bit_generator.state if self.keeps_state else None
        n = self.X.shape[0]
        order = self.backend.asarray(rng.permutation(n)) if self.shuffle and len(self.bounds) > 1 else None
        total = pos.partial_loss if resumed else None
        steps = len(self.bounds)
        for k in range(pos.step if resumed else 0, steps):
            value = self._step(k, order, _step_context(self.key, epoch * steps + k))
            total = value if total is None else total + value
            if k + 1 < steps and self._interrupted():
                self._stop_mid_epoch(Position(epoch, k + 1, self.epoch_start_state, total))
        self.total = total

    def _step(self, k: int, order: Any, ctx: Context) -> Any:
        """One minibatch: loss and gradients, then the optimizer's update."""
        xp, dp = self.xp, self.dp
        start, stop = self.bounds[k]
        lo, hi = (start, stop) if dp is None else dp.share(start, stop)  # this process's rows
        if order is not None:
            rows = order[lo:hi]
            Xb, Tb = xp.take(self.X, rows, axis=0), xp.take(self.T, rows, axis=0)
        elif hi - lo == self.X.shape[0]:  # full batch: the arrays themselves
            Xb, Tb = self.X, self.T
        else:
            Xb, Tb = self.X[lo:hi, ...], self.T[lo:hi, ...]
        if dp is None:
            value, grads, self.buffers = self.net._loss_and_grads(self.params, Xb, Tb, self.loss, self.buffers, ctx)
        else:  # this process's part of the global minibatch loss, summed over all
            value, grads, self.buffers = dp.loss_and_grads(
                self.net, self.params, Xb, Tb, self.loss, stop - start, self.interrupt, self.buffers, ctx
            )
        self.params, self.state = self.opt.step(self.params, grads, self.state, decay=self.decay)
        return value

    # -- report ----------------------------------------------------------------

    def report(self, epoch: int) -> bool:
        """Hold the epoch's figures (loss, validation loss and metrics) on the
        device with its end state; settle them when due or when a per-epoch
        decision needs them. Whether the run stops here (``tol``)."""
        xp = self.xp
        figures = [self.total if len(self.bounds) == 1 else self.total / len(self.bounds)]
        if self.val is not None:
            Yv = self.net._predict(self.params, self.buffers, self.val[0])
            figures.append(self.loss._value(xp, self.val[1], Yv))
            figures += [fn(self.val[1], Yv) for fn in self.metric_fns.values()]
        if self.pending.add(figures, self.params, self.buffers) or self.every_epoch:
            return self.settle()
        return False

    def settle(self) -> bool:
        """The held epochs' figures to the host in one transfer: the NaN
        guard, the commit of the last finite state, the History, the
        progress bar; whether ``tol`` stops the run."""
        rows, states, bad = self.pending.take()
        good = len(rows) if bad is None else bad
        history, stop = self.history, False
        for row in rows[:good]:
            _record(history, row, self.val is not None, self.metric_fns)
            stop = stop or self._tol_stops()
        if good:
            self.net._commit(*states[good - 1])
            _update_bar(self.bar, history, good)
        if bad is not None:
            done = len(history.loss)
            raise FloatingPointError(
                f"the training loss became NaN or infinite in epoch {done + 1}; the network keeps "
                f"the weights of epoch {done} (try a lower learning rate than lr={_lr(self.opt)})"
            )
        history.stopped_early = history.stopped_early or stop
        return stop

    def settle_quietly(self) -> None:
        """:meth:`settle` on the way out of an error (which it must not hide)."""
        try:
            self.settle()
        except Exception:
            pass

    def _tol_stops(self) -> bool:
        loss, tol = self.history.loss, self.tol
        return tol is not None and len(loss) > 1 and loss[-2] - loss[-1] < tol

    # -- checkpoint ------------------------------------------------------------

    def checkpoint(self, epoch: int) -> None:
        """The position after ``epoch``, written when ``checkpoint=`` asks
        (the epoch is settled: a checkpoint syncs every epoch)."""
        if self.keeps_state:
            self.pos = Position(epoch + 1, 0, self.rng.bit_generator.state, None)
            self._save(self.pos)

    def _save(self, at: Position, path: Any = None) -> None:
        path = self.checkpoint_path if path is None else path
        if path is not None and self.root:
            checkpoints.write(path, self.net, self.opt, self.state, self.params, self.history, at, self.buffers)

    # -- interrupts ------------------------------------------------------------

    def _interrupted(self) -> bool:
        """Distributed: any process's interrupt, as agreed in the step's allreduce."""
        if self.interrupt is None:
            return False
        return self.interrupt.is_set() if self.dp is None else self.dp.interrupt_requested

    def stop_if_interrupted(self, epoch: int) -> None:
        if epoch + 1 < self.epochs and self._interrupted():
            self.settle()
            raise self._stopped(self.pos)

    def _stop_mid_epoch(self, at: Position) -> None:
        self.settle()  # the epochs before this one
        finite = _finite(self.backend, self.params, at.partial_loss)
        if finite:
            self.net._commit(self.params, self.buffers)
            self._save(at)
        raise self._stopped(at, finite)

    def _stopped(self, at: Position, finite: bool = True) -> TrainingInterrupted:
        where = f"epoch {at.epoch + 1}, step {at.step}" if at.step else f"the end of epoch {at.epoch}"
        path = self.checkpoint_path
        saved = f"; checkpoint written to {path}" if path is not None and finite else ""
        writer = (lambda target: self._save(at, target)) if finite else None
        return TrainingInterrupted(f"training interrupted at {where}{saved}", self.history, str(path) if saved else None, writer)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _step_context(key: Any, step_index: int) -> Context:
    """The forward pass's context for global step ``step_index`` (``epoch *
    steps_per_epoch + k``) of the run whose random key is ``key``: training
    behaviour, and the step's device random source (none yet: Dropout will
    derive it from ``key`` and the index, so a resumed run draws the same)."""
    return _TRAINING


_TRAINING = Context(training=True)

#: With a progress bar, held epochs are reported at least this often (seconds).
_BAR_SECONDS = 0.2


def _decay_mask(net: Any, opt: Any) -> list[bool] | None:
    """The network's weight-decay mask, or ``None`` (no check per step) for
    a built-in optimizer without weight decay, which ignores it."""
    if type(opt).__module__ == __name__.rsplit(".", 1)[0] + ".optimizers" and getattr(opt, "weight_decay", None) == 0:
        return None
    return net._decay_mask()


def _check_tol(tol: Any) -> float | None:
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, int | float) or not tol >= 0):
        raise ValueError(f"tol must be a non-negative number or None, got {tol!r}")
    return tol


def _run_facts(run: _Run, step: int) -> dict[str, Any]:
    """What must be equal on every process of a distributed run (else it hangs)."""
    val = run.val
    return {
        "X.shape": tuple(run.X.shape),
        "y.shape": tuple(run.T.shape),
        "dtype": str(run.X.dtype),
        "validation_data shapes": None if val is None else (tuple(val[0].shape), tuple(val[1].shape)),
        "batch_size": step,
        "epochs": run.epochs,
        "shuffle": run.shuffle,
        "tol": run.tol,
        "loss": run.loss.name,
        "optimizer": repr(run.opt),
        "resume": run.resume is not None,
        "completed epochs": len(run.history.loss),
    }


def _record(history: History, row: list[float], with_val: bool, metric_fns: dict[str, Any]) -> None:
    """Append an epoch's figures: ``[loss, val_loss, *metrics]``."""
    history.loss.append(row[0])
    if with_val:
        history.val_loss.append(row[1])
        for name, v in zip(metric_fns, row[2:]):
            history.metrics[name].append(v)


def _finite(backend: Any, params: list[Any], total: Any) -> bool:
    """Are the parameters and ``total`` finite (one transfer)?"""
    ok = all_finite(backend.xp, params)
    checked = total if ok is None else backend.xp.where(ok, total, float("nan"))
    return math.isfinite(float(backend.to_numpy(checked)))


def _lr(opt: Any) -> Any:
    return getattr(opt, "lr", "?")


def _progress_bar(epochs: int, progress: bool, initial: int = 0):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=epochs, initial=initial, unit="epoch", dynamic_ncols=True, leave=True)


def _update_bar(bar: Any, history: History, epochs: int) -> None:
    """Progress by ``epochs``, from host floats a report already fetched:
    no extra sync."""
    if bar is None:
        return
    post = {"loss": f"{history.loss[-1]:.4g}"}
    if history.val_loss:
        post["val_loss"] = f"{history.val_loss[-1]:.4g}"
    for name, values in history.metrics.items():
        post[name] = f"{values[-1]:.4f}"
    bar.set_postfix(post, refresh=False)
    bar.update(epochs)
