"""fit: the training loop, as named steps over a run's state.

A run is prepared once (inputs converted and checked in one transfer, a
validation share held out, sample and class weights, the optimizer, the
schedule, the History, a checkpoint restored), then each epoch is three
steps: ``epoch`` (the epoch's learning rate, then the minibatch steps: slice
or gather a batch, loss and gradients, the optimizer's pure update, the loss
added to a device scalar), ``report`` (the epoch's figures held on the
device, see :mod:`xpnet._pending`, and settled when due: to the host in one
transfer, the NaN guard, the commit of the parameters, the History, then
the per-epoch decisions: ``tol``, callbacks, a monitoring schedule) and
``checkpoint``. Parameters are committed to the network only once a report
found them finite, so a diverging run keeps the last finite weights.
"""

from __future__ import annotations

import contextlib
import copy
import math
import numbers
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _fit_data as data
from . import _fit_options as run_options
from . import checkpoints
from ._backend import own_broadcasting, quiet_float_errors
from ._compile import check_compile, training_step
from ._device_random import DeviceRandom, key_from_state
from ._graphstep import _components
from ._pending import PendingEpochs, all_finite
from ._programs import _held_identities, held_arrays, holding, inference, keyed_program, network_key, program_key
from ._random import check_seed, host_rng
from ._sparse import is_sparse
from ._trainstep import Rows, averaging_one, take_rows
from ._warnings import caller_stacklevel
from ._xp import over_count, row_range
from .callbacks import callback_name
from .layers import INFERENCE
from .layers.base import Context
from .losses import Loss, _Weighted, for_labels, get_loss
from .optimizers import get_optimizer, initial_state
from .records import History, Position, RunRecord, TrainingInterrupted, check_figure
from .registry import component_spec, plain_settings
from .schedules import checked_rate, get_schedule
from .validation import DeferredChecks, check_distributed, check_fit_options, one_hot, positive, refuse_traced

__all__ = ["History", "TrainingInterrupted", "fit"]


@own_broadcasting
def fit(
    net: Any,
    X: Any,
    y: Any,
    *,
    loss: Any = "mse",
    optimizer: Any = "sgd",
    lr: float | None = None,
    epochs: int = 1,
    batch_size: int | None = None,
    shuffle: Any = True,
    seed: int | None = None,
    tol: float | None = None,
    progress: bool = False,
    validation_data: tuple[Any, Any] | None = None,
    metrics: tuple[str, ...] = (),
    checkpoint: Any = None,
    resume: Any = None,
    interrupt: Any = None,
    distributed: Any = False,
    lr_schedule: Any = None,
    validation_split: float | None = None,
    callbacks: Any = (),
    sample_weight: Any = None,
    class_weight: Any = None,
    warm_start: bool = False,
    compile: Any = "auto",
) -> History:
    """Train ``net`` on ``(X, y)`` and return its :class:`History`.

    ``lr`` is the rate of an ``optimizer`` given by name, class or a spec
    whose config sets no ``lr`` (when not given, the optimizer's own
    default: 0.01 for SGD, 0.001 for Adam, as in torch); an optimizer object
    (or a spec's ``lr``) keeps its own, and a different ``lr`` beside it is
    refused rather than ignored.
    ``batch_size=None`` is full-batch gradient descent; otherwise minibatches
    of ``batch_size`` rows (the last one may be shorter), reshuffled every
    epoch by ``numpy.random.default_rng(seed)`` on the host when ``shuffle``,
    so every backend sees the same minibatches in the same order. A callable
    ``shuffle`` (``n_rows -> permutation``, host integers) gives every
    epoch's order itself (``xpnet.sklearn`` draws scikit-learn's); it keeps
    no state a checkpoint could restore, so not with ``resume``. An
    optimizer with an ``epoch_penalty(state)`` method (a 0-d device array
    or ``None``) has it added to each epoch's recorded loss.
    ``tol``: stop after the first epoch whose loss improves by less than
    ``tol`` (or gets worse). ``metrics`` (e.g. ``("accuracy",)``) are computed
    on the validation data each epoch, in the same transfer as the losses.

    ``validation_split=0.1`` holds out that share of the rows as validation
    data (instead of ``validation_data``), drawn from ``seed`` and
    stratified by class for class targets. ``lr_schedule``: a schedule of
    :mod:`xpnet.schedules` (``StepLR``, ``ExponentialLR``,
    ``CosineAnnealingLR``, ``LinearWarmup``, ``ReduceLROnPlateau``) or a
    callable ``epoch -> lr``; each epoch's rate goes in ``History.lr``.
    ``callbacks``: objects with ``on_epoch_end(epoch, logs) -> bool`` (True
    stops), such as :class:`xpnet.EarlyStopping`; see :mod:`xpnet.callbacks`.
    ``sample_weight`` (one per row) and ``class_weight`` (``"balanced"`` or
    ``{label: weight}``) weigh the training loss: ``sum(w_i l_i) / sum(w_i)``
    over each batch, with the gradient of that; both multiply.

    ``checkpoint=PATH`` writes a checkpoint after every completed epoch (the
    model in ``save``'s format plus optimizer state, shuffling state, epoch
    count, History, the schedule's and callbacks' state); ``resume=PATH``
    restores one and runs the remaining epochs up to ``epochs``, exactly as
    the uninterrupted run would, given the same data and settings: it
    refuses another optimizer class, other optimizer settings than the
    run ended with (``lr`` aside; a callback may have changed them), another
    schedule, set of callbacks, validation split or ``shuffle``; the data, ``lr``, loss, batch size and weights are
    the caller's to pass again (a lower ``lr`` is accepted, except with an
    ``lr_schedule``, whose saved state goes on from the first ``lr``: another
    is refused). ``interrupt``: an object with ``is_set()``
    (a ``threading.Event``); once set, fit finishes the current step (on
    JAX, the current program: at most 64 steps), writes a checkpoint of that
    exact point, and raises :class:`TrainingInterrupted`.

    On NumPy, ``X`` (and the validation ``X``) may be a SciPy sparse matrix
    when the first layer is a Dense: it is trained on as it is (see
    :mod:`xpnet._sparse`), never made dense.

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
    behind, as one longer run's updates would (the shuffles and Dropout
    masks start again from ``seed``, a schedule and the callbacks' counters
    from their first epoch; ``resume`` reproduces a longer run exactly). The
    optimizer must be of the same class and keep the same kind of state; its settings may change (a lower ``lr``,
    as a schedule would), a state that does not fit (SGD without momentum
    after SGD with) is a ``ValueError``. Without a previous ``fit`` the state
    starts fresh. Each completed ``fit`` leaves its final state on the network
    (pickled with it, and copied by ``to``); one that raised leaves none. Not with ``resume``.

    ``compile``: ``"auto"`` (default) runs each step as one ``jax.jit``
    program on JAX (and an epoch's minibatches as one program, a
    ``jax.lax.scan``, where no distributed step needs the loop between
    steps; row weights are taken inside the program too), as a replayed CUDA
    graph on torch with CUDA, with fused
    update kernels on CuPy, and as a recorded list of NumPy calls replayed
    into fixed buffers on NumPy (xpnet's own components; ``True`` records
    yours too); eagerly elsewhere, and for distributed runs and optimizers
    other than the built-in ones. Row weights (sample or class weights) and
    a Dropout step's random key words are inputs of every compiled step;
    a layer that reads its random source's key or step runs eagerly.
    ``False`` runs every operation as written. The results equal the eager
    ones to rounding (to the bit on NumPy; :mod:`xpnet._compile`).

    Raises ``FloatingPointError`` naming the epoch if the loss, the weights
    or the optimizer state (Adam's ``v``, overflowed by float32 gradients
    above about 1e19: the weights would freeze) stop being finite; the
    network then keeps the last finite epoch's weights.

    **Host syncs.** Nothing goes to the host per step, nor per epoch unless
    an option needs it. Each epoch's figures (loss, validation loss and
    metrics) and the NaN guard stay on the device, with references to the
    epoch's parameters, and reach the host together in one transfer every 64
    epochs (fewer for large models: at most 512 MiB of parameter sets are
    held on a device, 2 MiB on the CPU), at least every 0.2 s while a
    progress bar is shown, and at the end; the network's weights are
    committed then (an error or Ctrl-C still leaves the last completed
    epoch's). What decides on the host after every epoch costs one transfer
    per epoch: ``tol``, ``callbacks`` (early
    stopping), a schedule that monitors a figure (``ReduceLROnPlateau``) and
    ``checkpoint`` (which also copies the weights to the host). Other
    schedules are computed on the host and cost nothing. ``interrupt`` costs
    nothing until it is set. ``validation_split`` with class targets given
    as a device array fetches them once to stratify. Distributed training
    exchanges the gradients every step anyway, and reports every epoch too
    (every process's NaN guard then decides after the same epoch).
    """
    options = dict(
        loss=loss, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed,
        tol=tol, progress=progress, validation_data=validation_data, metrics=metrics, checkpoint=checkpoint,
        resume=resume, interrupt=interrupt, lr_schedule=lr_schedule, validation_split=validation_split,
        callbacks=callbacks, sample_weight=sample_weight, class_weight=class_weight,
        warm_start=warm_start, compile=compile,
    )  # fmt: skip
    check_distributed(distributed)
    if not distributed:
        _check_call(X, y, sample_weight, options)
        with _only_fit_of(net):
            return _fit(net, X, y, None, **options)
    from .distributed import DataParallel

    dp = distributed if isinstance(distributed, DataParallel) else DataParallel()
    with dp.together():  # aborts the job if this process raises: the others would wait for it forever
        _check_call(X, y, sample_weight, options, root=dp.is_root)
        with _only_fit_of(net):
            return _fit(net, X, y, dp, **options)


def _check_call(X: Any, y: Any, sample_weight: Any, options: dict[str, Any], root: bool = True) -> None:
    """``fit``'s arguments checked before anything runs: distributed, inside
    ``DataParallel.together``, so that one refused on one process alone ends
    the job rather than leaving the others waiting for it."""
    check_compile(options["compile"])
    refuse_traced("Network.fit", X, y, sample_weight)
    check_fit_options(root=root, **options)


@contextlib.contextmanager
def _only_fit_of(net: Any) -> Iterator[None]:
    """Refuse a second fit of ``net`` while one runs (another thread's, or
    a callback's): each commits its own epochs, so one run's weights would
    silently replace the other's."""
    if not net._fitting.acquire(blocking=False):
        raise RuntimeError("this network is already being trained (fit was called while another fit of it runs, "
                           "in another thread or from a callback); to train two at once, fit a copy "
                           "(copy.deepcopy(net))")  # fmt: skip
    try:
        yield
    finally:
        net._fitting.release()


def _fit(net: Any, X: Any, y: Any, dp: Any, **options: Any) -> History:
    """The loop of :func:`fit`: prepare, then per epoch the named steps;
    ``dp`` is its ``DataParallel``, or ``None``."""
    run = _Run(net, dp, options)
    run.prepare(X, y)
    try:
        with quiet_float_errors():
            for epoch in run.remaining_epochs():
                run.epoch(epoch)
                stop = run.report(epoch)
                run.checkpoint(epoch)
                if stop:
                    break
                run.stop_if_interrupted(epoch)
            run.finish()
        net._fit_state = (run.opt, run.state)  # what warm_start=True continues
    except BaseException:
        run.settle_quietly()  # the epochs completed before the error still count
        raise
    finally:
        run.close()
    return run.history


def _stop_asked(cb: Any, answer: Any) -> bool:
    """``on_epoch_end``'s answer: True (or 1) stops, False, 0 or None goes
    on; anything else ("no", an array) is refused naming the callback, not
    guessed."""
    if answer is None or isinstance(answer, bool | np.bool_):
        return bool(answer)
    if isinstance(answer, numbers.Integral) and answer in (0, 1):
        return bool(answer)
    raise TypeError(f"{callback_name(cb)}.on_epoch_end must return True (stop), False or None, got {answer!r}")


def _permutation(order: Any, n: int) -> np.ndarray:
    """A callable ``shuffle``'s order, refused unless it is a permutation of
    ``range(n)``: rows left out or repeated would train on the wrong data
    without a word (a host check per epoch, O(n))."""
    got = np.asarray(order)
    if got.shape != (n,) or got.dtype.kind not in "iu" or (n and (got.min() < 0 or got.max() >= n)) or (
            n and np.bincount(got, minlength=n).max() > 1):  # fmt: skip
        what = f"shape {got.shape}, dtype {got.dtype}" if got.shape != (n,) or got.dtype.kind not in "iu" else (
            "indices out of range(n) or repeated")  # fmt: skip
        raise ValueError(f"shuffle(n) must return a permutation of range({n}) (integers, each row once), got {what}")
    return got


class _Run:
    """One call of ``fit``: its settings, data and the state that changes
    from step to step (parameters, buffers, optimizer state, schedule state,
    History, position). Its methods are the loop's named steps."""

    def __init__(self, net: Any, dp: Any, options: dict[str, Any]) -> None:
        self.net, self.dp = net, dp
        self.backend, self.xp = net.backend, net.backend.xp
        self.loss = _unweighted(get_loss(options["loss"]))
        self.opt = self.step_opt = get_optimizer(options["optimizer"], options["lr"])
        run_options.check_rate_given_once(options["optimizer"], self.opt, options["lr"])
        run_options.check_eps(self.opt, net.dtype)
        self.epochs = positive(options["epochs"], "epochs", integer=True)
        self.batch_size = positive(options["batch_size"], "batch_size", integer=True, allow_none=True)
        self.tol = run_options.check_tol(options["tol"])
        self.shuffle, self.interrupt = options["shuffle"], options["interrupt"]
        self.warm_start = bool(options["warm_start"])
        self.compile = options["compile"]
        self.checkpoint_path, self.resume = options["checkpoint"], options["resume"]
        self.metric_fns = run_options.named_metrics(options["metrics"])
        self.validation_data = options["validation_data"]
        self.split = data.check_validation_split(options["validation_split"], self.validation_data)
        if self.metric_fns and self.validation_data is None and self.split is None:
            raise ValueError("metrics are computed on validation data; pass validation_data=(X_val, y_val) or validation_split")
        self.sample_weight = options["sample_weight"]
        self.class_weight = data.check_class_weight(options["class_weight"], self.loss, net.n_out)
        self.schedule = None if options["lr_schedule"] is None else get_schedule(options["lr_schedule"])
        self.callbacks = run_options.check_callbacks(options["callbacks"])
        # xpnet's own callbacks that change no setting (the rate aside): no walk of the components an epoch
        self.follows_settings = any(not vars(type(cb)).get("_keeps_settings", False) for cb in self.callbacks)
        self.lr = self.base_lr = run_options.base_rate(self.opt, self.schedule)
        run_options.check_monitors(self, self.validation_data is not None or self.split is not None)
        self.seed = options["seed"]
        check_seed(self.seed)
        self._rng: np.random.Generator | None = None  # made when first needed (see rng)
        self.progress = options["progress"]
        self.root = dp is None or dp.is_root
        self.bar = None

    @property
    def rng(self) -> np.random.Generator:
        """The run's host generator (shuffling, Dropout's keys, the state a
        checkpoint keeps), made when first asked: from OS entropy (no seed)
        that costs 50 us, every ``fit`` of a full batch that never draws."""
        if self._rng is None:
            self._rng = host_rng(self.seed)
        return self._rng

    @property
    def key(self) -> int:
        """The run's random key (:func:`~xpnet._fit_options.run_key`); fresh
        entropy, where it takes some, drawn when first asked (a validation
        split, a checkpoint): 15 us that most fits never use."""
        if self._key is None:
            self._key = run_options.run_key(self.seed, None, None)
        return self._key

    # -- prepare ---------------------------------------------------------------

    def prepare(self, X: Any, y: Any) -> None:
        """The run's key, inputs on the device (checked in one transfer), the
        start state, a checkpoint restored, the minibatch bounds, the bar."""
        found = None if self.resume is None else checkpoints.read(self.resume, self.net, self.opt)
        drawn = isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)  # run_key's fresh entropy
        fresh = found is None and self.dp is None and drawn
        self._key = None if fresh else run_options.run_key(self.seed, found, self.dp)  # fresh: see key
        self._inputs(X, y)
        net = self.net
        for cb in self.callbacks:  # first: what they set (weights, optimizer settings) is what the run starts from
            cb.on_train_begin(net)
        run_options.check_edited_optimizer(self.opt, "code (or a callback's on_train_begin)")
        self.lr = self.base_lr = run_options.base_rate(self.opt, self.schedule)  # one set there: the schedule's start
        self._start_state()
        self.history = History(metrics={name: [] for name in self.metric_fns})
        self.sched_state = None if self.schedule is None else self.schedule.start(self.lr)
        self.pos, self.pending_lr, self.best = Position(), [], None
        self.val_flagged = False  # a non-finite validation loss is named once a fit (_flag_validation)
        n = self.X.shape[0]
        step = n if self.batch_size is None else min(self.batch_size, n)
        self.bounds = [(start, min(start + step, n)) for start in range(0, n, step)]
        if found is not None:
            self._restore(found)
        if self.dp is not None:  # every process: same data shapes and settings, then rank 0's start
            self.dp.check_same(run_options.run_facts(self, step))
            self.params, self.buffers, self.state = self.dp.broadcast_start(
                self.backend, self.params, self.buffers, self.state, self.rng
            )
            net._commit(self.params, self.buffers)
        # The generator's state is a dict built on request: take it only when
        # a checkpoint may need it (it costs microseconds per epoch).
        self.keeps_state = self.checkpoint_path is not None or self.interrupt is not None
        shows_bar = bool(self.progress and self.root)
        # Per-epoch decisions on the host settle every epoch (one transfer each). So do several processes:
        # the NaN guard raises at a report, and rank 0's bar (or a device of another kind) paces reports of
        # its own, so a process that raised first left the others waiting in the next step's allreduce.
        monitors = self.schedule is not None and self.schedule.monitor is not None
        together = self.dp is not None and self.dp.size > 1  # a transfer per epoch beside an allreduce per step
        self.every_epoch = (self.tol is not None or self.checkpoint_path is not None or bool(self.callbacks) or monitors
                            or together)  # fmt: skip
        self.pending = PendingEpochs(self.backend, self.params, _BAR_SECONDS if shows_bar else None)
        # The step: compiled where that pays (xpnet._compile); it updates in
        # place only arrays it owns (this run's optimizer state, then its own
        # results within an epoch), never ones the network or a report holds.
        if self.compile is True:
            self._say_why_eager()
        self._build_step()
        # Runs of equal minibatches as one program (JAX; train_step.scans, never for a step that draws
        # random numbers: that one is eager), except with several processes (an allreduce, and an
        # interrupt agreed in it, per step).
        self.scans = self.dp is None
        self.loss_value_words = _loss_value_words(self.loss)
        self.has_penalty = hasattr(self.opt, "epoch_penalty")  # a regularisation term in the epoch loss (xpnet.sklearn)
        # Last: a set-up that fails (a step that cannot be built) leaves no bar open on the terminal.
        self.bar = _progress_bar(self.epochs, shows_bar, initial=len(self.history.loss))

    def _start_state(self) -> None:
        """The network's parameters and buffers as the run starts from them,
        the optimizer state (continued with ``warm_start``) and the decay mask."""
        net = self.net
        self.params, self.buffers = net._params(), net._buffers()
        self.continues = self.warm_start and getattr(net, "_fit_state", None) is not None  # (compared across ranks)
        if self.warm_start:
            self.state = run_options.continued_state(net, self.opt, self.params)
        else:
            self.state = initial_state(self.opt, self.params)
        net._fit_state = None  # set again when this fit completes
        self.decay = run_options.decay_mask(net, self.opt)  # weight decay on weights, not on biases or norms

    def _say_why_eager(self) -> None:
        """compile=True asked for a compiled step by name: say why this run's
        is eager, as :func:`xpnet._compile.training_step` does for a step it
        cannot compile."""
        if self.dp is not None:
            why = "compile this step (a distributed step exchanges the gradients between its loss and its update)"
        elif is_sparse(self.X):
            why = "record this step on NumPy (X is a SciPy sparse matrix, whose products a recording cannot follow)"
        else:
            return
        warnings.warn(f"xpnet: compile=True cannot {why}; it runs eagerly", RuntimeWarning,
                      stacklevel=caller_stacklevel())

    def _build_step(self) -> None:
        """The training step and the epoch report for the network's settings
        as they are now (a compiled one bakes them in), and those settings'
        key (:meth:`_follow_settings`)."""
        compile = False if is_sparse(self.X) else self.compile  # SciPy's products: no recorded step (NumPy's tape)
        self.train_step = training_step(self.net, self.loss, self.opt, self.decay, _TRAINING, self.state, compile)
        self.figures = _epoch_figures(self.net, self.loss, self.metric_fns, len(self.bounds), self.compile,
                                      self.val_labels)
        self.settings = self._settings_now() if self.follows_settings else None

    def _settings_now(self) -> tuple[Any, ...]:
        """The network's config, the optimizer's program settings and the
        loss's config (a Huber delta), as text, and each component's plain
        settings and held arrays (by identity): a custom layer's kept outside
        its config (``self.gain``, a fixed mask) is baked into a compiled step
        too, and names its programs (:func:`network_key`)."""
        components = (*_components(self.net, self.loss), *self.metric_fns.values())  # a metric's threshold too
        held = tuple((repr(plain_settings(c)), _held_identities(c)) for c in components)
        return repr(self.net.config()), repr(program_key(self.opt)), repr(self.loss.config()), held

    def _follow_settings(self) -> None:
        """A callback that changed a layer's settings between epochs (a
        temperature, a BatchNorm's momentum: what its config holds), the
        optimizer's (a momentum or weight decay switched on) or the loss's
        (a Huber delta), trains the next epoch with them, as an eager step
        reads them anyway: a compiled step or report traced with the old
        ones is built again. The configs' text and the components' own
        settings, not the program key: 30 us an epoch (the key walks every
        component again, about 0.1 ms)."""
        if self.schedule is not None and self.opt.lr != self.base_lr:  # schedules read it at some epochs only
            raise ValueError(f"a callback set the optimizer's lr to {self.opt.lr} while lr_schedule "
                             f"{type(self.schedule).__name__} sets the rate; change the schedule instead (or train "
                             "without one and set lr in the callback)")  # fmt: skip
        run_options.check_edited_optimizer(self.opt)
        now = self._settings_now()
        if now == self.settings:
            return
        if now[1] != self.settings[1]:
            self._follow_optimizer()
        self._build_step()

    def _follow_optimizer(self) -> None:
        """The decay mask (not built while weight decay was 0: biases would
        be decayed too) and the optimizer state for the settings now: a
        state the new settings need starts as ``init_state`` gives it (zero
        velocity: the next step's is its gradient, as torch's first one),
        one they no longer read is dropped."""
        self.decay = run_options.decay_mask(self.net, self.opt)
        fresh = initial_state(self.opt, self.params)
        if set(fresh) != set(self.state):
            self.state = {key: self.state.get(key, value) for key, value in fresh.items()}

    def _inputs(self, X: Any, y: Any) -> None:
        """Check every value in a single transfer (none for host data, checked
        on the host), encode labels and hold out the validation share where
        the data is, then move it once; the rows' weights."""
        net, loss, backend = self.net, self.loss, self.backend
        checks = DeferredChecks(backend)
        X, T, labels = net._queue_inputs(X, y, loss, checks)
        w = None
        if self.sample_weight is not None:
            w = data.queue_sample_weight(backend, self.sample_weight, X.shape[0], net.dtype, checks)
        val = self.validation_data
        if val is not None:
            if not isinstance(val, tuple | list) or len(val) != 2:
                raise TypeError("validation_data must be a pair (X_val, y_val)")
            Xv, Tv, labels_v = net._queue_inputs(*val, loss, checks, what="validation_data ")
        checks.run()
        T = net._one_hot_if(T, labels)
        if labels:  # rows of exactly one 1: cross-entropy's fused delta needs no row sums
            self.loss = for_labels(loss)
        self.val_labels = val is not None and labels_v and self._val_in_chunks(Xv)  # one-hot chunk by chunk
        self.val = None if val is None else (Xv, Tv if self.val_labels else net._one_hot_if(Tv, labels_v))
        if self.split is not None:
            strata = data.strata(y, T, loss)
            (X, T, w), (Xv, Tv, _) = data.split_rows(backend, [X, T, w], self.split, self.key, strata)
            self.val = (Xv, Tv)
            if w is not None:  # the rows with weight may all have gone to validation
                data.check_some_weight(w, "the validation split left every training row a sample_weight of zero")
        X, T, w = (None if a is None else backend.asarray(a) for a in (X, T, w))
        if self.val is not None:
            self.val = tuple(backend.asarray(a) for a in self.val)
        if self.class_weight is not None:
            cw = data.class_row_weights(backend, T, self.class_weight)
            w = cw if w is None else w * cw
            if isinstance(self.class_weight, dict) and 0.0 in self.class_weight.values():
                data.check_some_weight(w)  # a class weighed 0 may leave no row a weight
        self.X, self.T, self.w = X, T, w

    def _val_in_chunks(self, Xv: Any) -> bool:
        """Does the epoch report take the validation figures in chunks (more
        rows than one, no metric that may need all outputs at once)?"""
        return _chunkable(list(self.metric_fns.values())) and Xv.shape[0] > self.net.chunk_rows(is_sparse(Xv))

    def _restore(self, found: Any) -> None:
        self.params, self.buffers, self.state, self.history, self.pos, sched = checkpoints.restore(
            found, self.opt, self.backend, epochs=self.epochs, steps_per_epoch=len(self.bounds),
            metrics=list(self.metric_fns), validation=self.val is not None, run=self._run_record(),
            schedule=self.schedule, callbacks=self.callbacks)  # fmt: skip
        self.sched_state = sched
        self.rng.bit_generator.state = self.pos.rng_state
        self.net._commit(self.params, self.buffers)
        self.best = _lowest(self.history)

    # -- epoch -----------------------------------------------------------------

    def remaining_epochs(self) -> range:
        """The epochs to run (none when a resumed run had stopped early)."""
        return range(self.pos.epoch, self.pos.epoch if self.history.stopped_early else self.epochs)

    def epoch(self, epoch: int) -> None:
        """The epoch's rate, then its minibatch steps, on the device; its
        summed loss in ``self.total``. A set ``interrupt`` stops it after a step
        (on JAX after a program of at most :data:`_INTERRUPT_STEPS` steps)."""
        pos = self.pos
        self.train_step.new_epoch()  # a callback may have given the loss other arrays
        if self.schedule is not None:
            self._set_rate(checked_rate(self.schedule, self.sched_state, epoch))
        else:  # the optimizer's own, which a callback may have changed: History says the rate used
            self.lr = run_options.base_rate(self.opt, None)
        resumed = epoch == pos.epoch and pos.step > 0
        start_state = pos.rng_state if resumed else self.rng.bit_generator.state if self.keeps_state else None
        key = None
        if self.net._uses_rng:  # Dropout's key: from the seed, through the state that checkpoints keep
            start_state = start_state or self.rng.bit_generator.state
            key = key_from_state(start_state)
        self.epoch_start_state = start_state
        steps = len(self.bounds)
        order = self._order(steps)
        total = pos.partial_loss if resumed else None
        first = k = pos.step if resumed else 0
        while k < steps:
            scanned = self._scan(k, order, total, key, epoch * steps) if self.scans and self.train_step.scans else None
            if scanned is not None:
                after, total = scanned
            else:  # donate: nobody else holds this epoch's own parameters; keep: its last are reported
                total = self._step(k, order, total, _step_context(key, epoch * steps + k), k > first, k + 1 == steps)
                after = k + 1
            if k == first:  # a loss that is not one number is named here, not at the report (or in a broadcast)
                check_figure(total, self.loss_value_words)
            k = after
            if k < steps and self._interrupted():
                self._stop_mid_epoch(Position(epoch, k, self.epoch_start_state, total))
        self.total = total

    def _scan(self, k: int, order: Any, total: Any, key: int | None, first_step: int) -> tuple[int, Any] | None:
        """Steps ``k`` on, as long as their minibatches are as large as
        ``k``'s, and the epoch's short last one, run by the step as one
        program where it can (JAX): ``(the next step, total)``, or ``None``.
        ``key`` and ``first_step`` (the epoch's first global step) give each
        step's random source (Dropout), as :meth:`_step` has them."""
        bounds = self.bounds
        start, stop = bounds[k]
        # every minibatch is as large as the first but perhaps the epoch's last; an interrupt is
        # looked at between programs: a run of at most _INTERRUPT_STEPS steps each
        equal = len(bounds) - (bounds[-1][1] - bounds[-1][0] != stop - start)
        last = len(bounds) if self.interrupt is None else min(len(bounds), k + _INTERRUPT_STEPS)
        end = max(k + 1, min(equal, last))
        tail = bounds[end][1] - bounds[end][0] if end + 1 == len(bounds) and end < last else 0  # the last batch
        rows = Rows(self.X, self.T, order, start, stop, self.w)
        contexts = None if key is None else [_step_context(key, first_step + j) for j in range(k, end + bool(tail))]
        done = self.train_step.scan_rows(self.params, self.buffers, self.state, rows, end - k, total, tail=tail,
                                         opt=self.step_opt, contexts=contexts)  # fmt: skip
        if done is None:
            return None
        self.params, self.buffers, self.state, total = done
        return end + bool(tail), total

    def _order(self, steps: int) -> Any:
        """The epoch's row order on the device, or ``None`` (in order): the
        shuffling generator's, or a callable ``shuffle``'s (every epoch)."""
        if callable(self.shuffle):  # distributed: rank 0's order for all (each calling its own drew others)
            n = self.X.shape[0]
            order = _permutation(self.shuffle(n), n) if self.dp is None or self.dp.is_root else None
            return self.backend.asarray(order if self.dp is None else self.dp.from_root(order))
        if not (self.shuffle and steps > 1):
            return None
        # the generator's own fresh array, which nobody else holds: no copy, and on JAX no wait for its transfer
        return self.backend._from_host(self.rng.permutation(self.X.shape[0]), private=True)

    def _set_rate(self, lr: float) -> None:
        """The optimizer of this epoch: the optimizer itself at its own rate,
        else a copy with the schedule's rate (the optimizer's state does not
        depend on it, so nothing is rebuilt). The copy is made afresh each
        epoch: a callback may have changed a setting (momentum, betas, weight
        decay) since the last one, and a copy kept while the rate stayed the
        same trained on with the old settings."""
        if lr == self.opt.lr:
            self.step_opt = self.opt
        else:
            self.step_opt = copy.copy(self.opt)
            self.step_opt.lr = lr
        self.lr = lr

    def _step(self, k: int, order: Any, total: Any, ctx: Context, donate: bool = False, keep: bool = False) -> Any:
        """One minibatch: loss and gradients, then the optimizer's update;
        ``total`` plus the minibatch's loss."""
        dp, loss = self.dp, self.loss
        start, stop = self.bounds[k]
        lo, hi = (start, stop) if dp is None else dp.share(start, stop)  # this process's rows
        if dp is None:  # the step takes the rows and their weights (inside a compiled program, on JAX)
            self.params, self.buffers, self.state, total = self.train_step.step_rows(
                self.params, self.buffers, self.state, Rows(self.X, self.T, order, lo, hi, self.w), total, ctx,
                loss=loss, opt=self.step_opt, donate=donate, keep=keep)  # fmt: skip
            return total
        Xb, Tb = self._rows(self.X, order, lo, hi), self._rows(self.T, order, lo, hi)
        if self.w is not None:
            loss = loss.weighted(self._batch_weights(order, lo, hi, start, stop))
        # this process's part of the global minibatch loss, summed over all
        value, grads, self.buffers = dp.loss_and_grads(
            self.net, self.params, Xb, Tb, loss, stop - start, self.interrupt, self.buffers, ctx
        )
        self.params, self.state = self.train_step.update(self.params, grads, self.state, opt=self.step_opt,
                                                         donate=donate)  # fmt: skip
        return value if total is None else total + value

    def _rows(self, a: Any, order: Any, lo: int, hi: int) -> Any:
        """Rows ``lo:hi`` of ``a`` in this epoch's order (the array itself for a full batch)."""
        return take_rows(self.xp, a, order, lo, hi)

    def _batch_weights(self, order: Any, lo: int, hi: int, start: int, stop: int) -> Any:
        """This process's rows' weights, scaled so that they average 1 over
        the global minibatch ``start:stop`` (0 for a batch of zero weight)."""
        wb = self._rows(self.w, order, lo, hi)
        return averaging_one(wb, self.xp.sum(self._rows(self.w, order, start, stop)), stop - start)

    # -- report ----------------------------------------------------------------

    def report(self, epoch: int) -> bool:
        """Hold the epoch's figures (loss, validation loss and metrics) on the
        device with its end state; settle them when due or when a per-epoch
        decision needs them. Then the schedule's next state. Whether the run
        stops here."""
        figures = self.figures(self.total, self.params, self.buffers, self.val)
        penalty = self.opt.epoch_penalty(self.state) if self.has_penalty else None
        if penalty is not None:  # a regularisation term the optimizer applies (xpnet.sklearn's L2)
            figures[0] = figures[0] + penalty
        self.pending_lr.append(self.lr)
        stop = False
        self.pending.optimizer_state = self.state  # the guard checks it with the last held epoch's weights
        if self.pending.add(figures, self.params, self.buffers) or self.every_epoch:
            stop = self.settle()
        if self.schedule is not None:
            logs = self.history.logs(epoch) if self.schedule.monitor is not None else None
            self.sched_state = self.schedule.advance(self.sched_state, self.opt.lr, logs)
            if self.dp is not None and logs is not None:  # decided on each process's own figures
                self.dp.agreed_rate(self.schedule.rate(self.sched_state), epoch + 1)
        return stop

    def settle(self) -> bool:
        """The held epochs' figures to the host in one transfer: the NaN
        guard, the commit of the last finite state, the History, the
        per-epoch decisions, the progress bar; whether the run stops."""
        rows, states, bad = self.pending.take()
        lrs, self.pending_lr = self.pending_lr, []
        good = len(rows) if bad is None else bad
        stop = False
        if good:
            self.net._commit(*states[good - 1])
            if bad is None:  # the epochs before the committed one were never seen outside the loop
                self.train_step.reuse([a for params, _ in states[: good - 1] for a in params])
            if self.tol is None and not self.callbacks:
                self._record(rows[:good], lrs)
            else:  # decisions run epoch by epoch (a report holds one epoch then)
                for row, lr in zip(rows[:good], lrs):
                    self._record([row], [lr])
                    stop = self._decide() or stop
                if self.dp is not None:  # one decision for all, or the ones going on wait for the others forever
                    stop = self.dp.agreed(stop, len(self.history.loss))
                if self.callbacks:  # what they set: weights (distributed, agreed in one allgather), settings
                    self.train_step.callbacks_ran()  # in place, too
                    self._adopt_edits(*states[good - 1])
                    if self.follows_settings:
                        self._follow_settings()
            self._best_epoch()
            _update_bar(self.bar, self.history, good)
        if bad is not None:
            raise self._diverged(rows, lrs, bad)
        self.history.stopped_early = self.history.stopped_early or stop
        return stop

    def _diverged(self, rows: list[list[float]], lrs: list[float | None], bad: int) -> FloatingPointError:
        """The NaN guard's error for the held epoch ``bad``, naming what went
        bad: the loss, the weights, or the optimizer state (then checked at
        the last held epoch only: by which epoch, unless only one was held)."""
        done = len(self.history.loss)
        rate = lrs[bad] if bad < len(lrs) and lrs[bad] is not None else _lr(self.opt)  # a schedule's, if any
        scale = " or scaled inputs (e.g. standardised features)" if done == 0 else ""  # overflow at the start?
        hint = f"try a lower learning rate than lr={rate}{scale}"
        entry = self.pending.bad_state
        if entry is not None:
            what = f"optimizer state {entry}"
            when = f"in epoch {done + 1}" if len(rows) == 1 else f"by epoch {done + len(rows)} (after epoch {done})"
            if entry.split(".")[0] in getattr(self.opt, "nonnegative", ()):  # running squares overflow first
                hint = (f"its squared gradients overflow {self.net.dtype}: scale the inputs and targets, or train in "
                        "float64")  # fmt: skip
        else:
            what = "training loss" if bad >= len(rows) or not math.isfinite(rows[bad][0]) else _STATE_WORDS
            when = f"in epoch {done + 1}"
        error = FloatingPointError(
            f"the {what} became NaN or infinite {when}; the network keeps the weights of epoch {done} ({hint})"
        )
        error.epochs_kept = done  # type: ignore[attr-defined]  # (the command line saves them)
        return error

    def _record(self, rows: list[list[float]], lrs: list[float | None]) -> None:
        """Append epochs' figures ``[loss, val_loss, *metrics]`` and rates,
        and follow the lowest (validation) loss."""
        history = self.history
        first = len(history.loss)
        history.loss.extend(row[0] for row in rows)
        if self.val is not None:
            history.val_loss.extend(row[1] for row in rows)
            for i, name in enumerate(self.metric_fns, start=2):
                history.metrics[name].extend(row[i] for row in rows)
        history.lr.extend(lr for lr in lrs[: len(rows)] if lr is not None)
        if self.val is not None:
            self._flag_validation(rows, first)
        figures = history.val_loss if self.val is not None else history.loss
        for epoch in range(first, len(figures)):  # a NaN or infinite figure is no best (NaN compared above none)
            if math.isfinite(figures[epoch]) and (self.best is None or figures[epoch] < self.best[1]):
                self.best = (epoch, figures[epoch])

    def _flag_validation(self, rows: list[list[float]], first: int) -> None:
        """Warn, once a fit, of a NaN or infinite validation loss beside a
        finite training loss: the NaN guard follows the training loss only,
        so EarlyStopping or ReduceLROnPlateau acted on it in silence (values
        the network overflows on, or a NaN, in the validation data)."""
        bad = next((i for i, row in enumerate(rows) if math.isfinite(row[0]) and not math.isfinite(row[1])), None)
        if bad is None or self.val_flagged or not self.root:
            return
        self.val_flagged = True
        warnings.warn(
            f"xpnet: the validation loss is {rows[bad][1]} in epoch {first + bad + 1} while the training loss is "
            "finite; it counts as no improvement (EarlyStopping, ReduceLROnPlateau, the best epoch). Check the "
            "validation data for NaN, or values that overflow the network's dtype",
            UserWarning, stacklevel=caller_stacklevel())  # fmt: skip

    def _adopt_edits(self, params: list[Any], buffers: list[Any]) -> None:
        """Weights a callback set on the network (``layer.weights = ...``)
        are the next epoch's start; they were overwritten by the loop's own.
        Distributed, every process must have set them, and rank 0's are
        taken (one model, to the bit)."""
        now_params, now_buffers = self.net._params(), self.net._buffers()
        edited = any(a is not b for a, b in zip([*now_params, *now_buffers], [*params, *buffers]))
        settings = None if self.dp is None else {  # what a callback may change on one process only
            "optimizer": repr(self.opt), "loss": repr(component_spec(self.loss)), "network": repr(self.net.config())}
        if self.dp is not None and not self.dp.agreed_edits(edited, len(self.history.loss), settings):
            return
        if not edited:
            return
        arrays = [*now_params, *now_buffers]
        if self.dp is not None:
            arrays = self.dp.from_root_arrays(self.backend, arrays)
            self.net._commit(arrays[: len(now_params)], arrays[len(now_params) :])
        self.params, self.buffers = arrays[: len(now_params)], arrays[len(now_params) :]

    def _decide(self) -> bool:
        """The decisions after the epoch just recorded: ``tol``, then the
        callbacks (every one runs). Stop?"""
        history = self.history
        epoch = len(history.loss) - 1
        stop = self.tol is not None and epoch > 0 and history.loss[-2] - history.loss[-1] < self.tol
        logs = history.logs(epoch) if self.callbacks else None
        for cb in self.callbacks:
            stop = _stop_asked(cb, cb.on_epoch_end(epoch, dict(logs))) or stop
        return stop

    def _best_epoch(self) -> None:
        """``History.best_epoch``: a callback's (EarlyStopping's), else the
        epoch of lowest validation loss (training loss without one)."""
        best = [cb.best_epoch for cb in self.callbacks if getattr(cb, "best_epoch", None) is not None]
        self.history.best_epoch = best[-1] if best else (None if self.best is None else self.best[0])

    def settle_quietly(self) -> None:
        """:meth:`settle` on the way out of an error (which it must not hide)."""
        try:
            self.settle()
        except Exception:
            pass

    def finish(self) -> None:
        """The last report, then the callbacks' end: those that restore
        weights (EarlyStopping's best) first, so that the others (one that
        saves the model) see the weights ``fit`` returns."""
        self.settle()
        restores = any(getattr(cb, "restores_weights", False)
                       and getattr(getattr(cb, "wrapped", cb), "restore_best", True) for cb in self.callbacks)
        if self.dp is not None and restores:  # one epoch's weights for all, or each process keeps its own best
            self.dp.agreed_best(self.history.best_epoch, len(self.history.loss))
        for cb in sorted(self.callbacks, key=lambda cb: not getattr(cb, "restores_weights", False)):
            cb.on_train_end(self.history)

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
            record = self._run_record(
                None if self.schedule is None else {"spec": component_spec(self.schedule), "state": self.sched_state},
                [{"type": callback_name(cb), "state": cb.get_state()} for cb in self.callbacks],
                [cb.get_arrays() for cb in self.callbacks],
            )  # fmt: skip
            checkpoints.write(path, self.net, self.opt, self.state, self.params, self.history, at, self.buffers, record)

    def _run_record(self, *rest: Any) -> RunRecord:
        """The run as a checkpoint records it (``rest``: the schedule's and
        callbacks' entries); a callable ``shuffle`` as ``None`` (it cannot resume)."""
        shuffle = None if callable(self.shuffle) else bool(self.shuffle)
        return RunRecord(self.key, self.split, *rest, shuffle=shuffle)

    # -- interrupts ------------------------------------------------------------

    def _interrupted(self) -> bool:
        """Distributed: any process's interrupt, as agreed in the step's allreduce."""
        if self.interrupt is None:
            return False
        return self.interrupt.is_set() if self.dp is None else self.dp.interrupt_requested

    def stop_if_interrupted(self, epoch: int) -> None:
        if self.interrupt is not None and epoch + 1 < self.epochs and self._interrupted():
            self.settle()
            raise self._stopped(self.pos)

    def _stop_mid_epoch(self, at: Position) -> None:
        self.settle()  # the epochs before this one
        state = [a for v in self.state.values() if isinstance(v, list) for a in v]  # a checkpoint holds it too
        finite = _finite(self.backend, list(self.params) + list(self.buffers) + state, at.partial_loss)
        if finite:
            self.net._commit(self.params, self.buffers)
            self._save(at)
        raise self._stopped(at, finite)

    def _stopped(self, at: Position, finite: bool = True) -> TrainingInterrupted:
        """The run's ``interrupt`` honoured at ``at``: agreed in the step's
        allreduce when distributed, so every process raises it there
        (``every_process``; one raised elsewhere, by a callback on one
        process, ends the job, as other errors do)."""
        where = f"epoch {at.epoch + 1}, step {at.step}" if at.step else f"the end of epoch {at.epoch}"
        if not finite:  # nothing written, nothing to write: say why, and which weights the network holds
            kept = f"those of the end of epoch {at.epoch}" if at.epoch else "its initial ones"
            why = (f"; the weights or the optimizer state there were no longer finite (the run diverged): the "
                   f"network keeps {kept}")  # fmt: skip
            error = TrainingInterrupted(f"training interrupted at {where}{why}", self.history, None, None)
        else:
            path = self.checkpoint_path
            saved = f"; checkpoint written to {path}" if path is not None else ""
            writer = lambda target: self._save(at, target)  # noqa: E731
            error = TrainingInterrupted(f"training interrupted at {where}{saved}", self.history,
                                        str(path) if saved else None, writer)  # fmt: skip
        error.every_process = True  # type: ignore[attr-defined]
        return error

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _epoch_figures(
    net: Any, loss: Any, named_metrics: dict[str, Any], n_batches: int, compile: Any, labels: bool = False
) -> Any:
    """``(total, params, buffers, val) -> [loss, val_loss, *metrics]``, the
    epoch's figures as 0-d device arrays: the mean of its minibatch losses
    (``total`` is their sum), then the loss and metrics on the validation
    rows ``val = (Xv, Tv)`` (``None``: none; ``Tv`` class labels where
    ``labels``). Without metrics, or with means over rows only, the
    validation figures are taken chunk by chunk (:func:`_chunked_figures`).
    On JAX one program (per network, loss, metrics, labels and minibatch
    count) where the built-in metrics allow (a callable may do anything),
    not one per operation. The backend's arrays a metric holds (the
    validation rows' weights), and the loss's, reach it as arguments
    (:func:`~xpnet._programs.held_arrays`)."""

    metrics = list(named_metrics.values())
    loss_value = _loss_value_words(loss)

    def figures(total: Any, params: list[Any], buffers: list[Any], val: Any, held: list[Any]) -> list[Any]:
        loss_ = holding(loss, held[0])
        bound = {name: holding(fn, arrays) for (name, fn), arrays in zip(named_metrics.items(), held[1:])}
        out = [total if n_batches == 1 else total / n_batches]
        if val is not None and _chunkable(metrics) and val[0].shape[0] > net.chunk_rows(is_sparse(val[0])):
            out += _chunked_figures(net, loss_, bound, params, buffers, val, labels)
        elif val is not None:
            Yv = net._predict(params, buffers, val[0])
            out.append(check_figure(loss_._value(net.backend.xp, val[1], Yv), loss_value))
            out += [_metric_figure(net, fn(val[1], Yv), name) for name, fn in bound.items()]
        return out

    program = figures
    compiled = all(vars(type(m)).get("compilable") is True for m in metrics)
    if net.backend.name == "jax" and compile is not False and compiled:  # keyed_program compiles on JAX only
        metric_keys = (k for m in metrics for k in program_key(m))
        key = ("figures", *network_key(net), *program_key(loss), *metric_keys, n_batches, labels)
        program = keyed_program(net.backend, key, figures)

    def report(total: Any, params: list[Any], buffers: list[Any], val: Any) -> list[Any]:
        held = [held_arrays(net.backend, c) for c in (loss, *metrics)]
        return program(total, params, buffers, val, held)

    return report


def _chunked_figures(
    net: Any, loss: Any, named_metrics: dict[str, Any], params: list[Any], buffers: list[Any], val: Any, labels: bool
) -> list[Any]:
    """The loss and metrics on ``val = (X, T)`` (``T`` class labels where
    ``labels``, one-hot encoded chunk by chunk), :meth:`~xpnet.Network.chunk_rows`
    rows at a time: each chunk's figures added on the device, times its rows
    for a ``reduction="mean"`` loss (as data-parallel training splits a loss)
    and for the metrics (means over rows: :func:`_chunkable`). Memory holds
    one chunk's outputs, not ``N x n_out``."""
    xp, (X, T), words = net.backend.xp, val, _loss_value_words(loss)
    forward, n, totals = inference(net, INFERENCE), X.shape[0], None
    mean = loss.reduction == "mean"
    rows = net.chunk_rows(is_sparse(X))
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        Y = forward(params, buffers, row_range(X, lo, hi))
        Tc = one_hot(net.backend, row_range(T, lo, hi), net.n_out, net.dtype) if labels else row_range(T, lo, hi)
        value = check_figure(loss._value(xp, Tc, Y), words)
        figures = [value * (hi - lo) if mean else value]
        figures += [_metric_figure(net, fn(Tc, Y), name) * (hi - lo) for name, fn in named_metrics.items()]
        totals = figures if totals is None else [t + f for t, f in zip(totals, figures)]
    return [over_count(xp, totals[0], n) if mean else totals[0], *(over_count(xp, t, n) for t in totals[1:])]


def _chunkable(metrics: list[Any]) -> bool:
    """Are all ``metrics`` means over rows, averaged chunk by chunk as
    exactly (their class says ``rows_mean = True``)?"""
    return all(vars(type(m)).get("rows_mean") is True for m in metrics)


def _metric_figure(net: Any, value: Any, name: str) -> Any:
    """A metric's value as a 0-d array of the network's backend: a Python or
    NumPy number (a wrapped ``sklearn.metrics`` function) is moved there;
    anything but one number is refused, naming the metric."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]  # a host 0-d array: its number
    if isinstance(value, bool | np.bool_) or _bool_array(net, value):
        raise ValueError(f"metric {name!r} must return one number, got a bool ({value!r})")
    if isinstance(value, numbers.Real):
        return net.backend.asarray(float(value), net.dtype)
    if hasattr(value, "shape") and not net.backend.owns(value):  # a torch number: taken by NumPy, a TypeError elsewhere
        raise ValueError(f"metric {name!r} must return one number as a 0-d array of the outputs' library "
                         f"({net.backend.name}) or a Python or NumPy number, got a "
                         f"{type(value).__module__.split('.', 1)[0]} {type(value).__name__}")  # fmt: skip
    return check_figure(value, f"metric {name!r}")


def _bool_array(net: Any, value: Any) -> bool:
    """A boolean array of the network's library (``xp.all(...)``): refused
    on every backend, as NumPy's ``np.True_`` is (a traced one has a dtype too)."""
    dtype = getattr(value, "dtype", None)
    return dtype is not None and net.backend.owns(value) and net.backend.xp.isdtype(dtype, "bool")


def _loss_value_words(loss: Any) -> str:
    return f"loss {loss.name or type(loss).__name__!r}: its _value"


#: The context of a training step in a network that draws no random numbers.
_TRAINING = Context(training=True)


def _step_context(key: int | None, step_index: int) -> Context:
    """A training step's context: batch behaviour, and a device random source
    from the epoch's key and the global step index (``epoch *
    steps_per_epoch + k``, so a resumed run draws the same Dropout masks);
    ``key=None`` (no layer draws): none. Ints on the host: no device work,
    no transfer."""
    return _TRAINING if key is None else Context(True, DeviceRandom(key, step_index))


#: With an ``interrupt``, an epoch program runs at most this many steps
#: before the loop looks at it again: a Ctrl-C waits for at most these,
#: not for the end of a large epoch.
_INTERRUPT_STEPS = 64

#: What went bad when an epoch's loss is finite and its end state is not.
_STATE_WORDS = "weights (or a layer's state, such as BatchNorm's running statistics)"

#: With a progress bar, held epochs are reported at least this often (seconds).
_BAR_SECONDS = 0.2


def _lowest(history: History) -> tuple[int, float] | None:
    """The epoch of lowest validation loss (training loss without one),
    among the finite ones; ``None`` when there is none."""
    finite = [(epoch, v) for epoch, v in enumerate(history.val_loss or history.loss) if math.isfinite(v)]
    return min(finite, key=lambda p: p[1]) if finite else None


def _finite(backend: Any, arrays: list[Any], total: Any) -> bool:
    """Are the arrays (parameters and buffers) and ``total`` finite (one transfer)?"""
    ok = all_finite(backend.xp, arrays)
    checked = total if ok is None else backend.xp.where(ok, total, float("nan"))
    return math.isfinite(float(backend.to_numpy(checked)))


def _lr(opt: Any) -> Any:
    return getattr(opt, "lr", "?")


def _progress_bar(epochs: int, progress: bool, initial: int = 0):
    if not progress:
        return None
    from ._progress import progress_bar  # a plain line per epoch where the terminal has no width

    return progress_bar(epochs, initial)


def _update_bar(bar: Any, history: History, epochs: int) -> None:
    """The last ``epochs`` epochs onto the bar, one by one (a plain line
    each where the terminal has no width), from host floats a report
    already fetched: no extra sync."""
    if bar is None:
        return
    for epoch in range(len(history.loss) - epochs, len(history.loss)):
        post = {"loss": f"{history.loss[epoch]:.4g}"}
        if history.val_loss:
            post["val_loss"] = f"{history.val_loss[epoch]:.4g}"
        for name, values in history.metrics.items():
            post[name] = f"{values[epoch]:.4f}"
        bar.set_postfix(post, refresh=False)
        bar.update(1)


def _unweighted(loss: Loss) -> Loss:
    """fit's loss, refused as ``loss.weighted(w)``: its weights are one
    batch's rows, and fit's minibatches met them in a broadcasting error
    (or another library's words); ``sample_weight=w`` weighs each
    minibatch's rows by theirs."""
    if isinstance(loss, _Weighted):
        raise ValueError("fit takes row weights as sample_weight=w, each minibatch weighed by its rows' weights; "
                         "loss.weighted(w) holds the weights of a single batch (for evaluate, gradients and "
                         "gradcheck): pass fit the loss itself")  # fmt: skip
    return loss
