"""Learning-rate schedules: ``fit(..., lr_schedule=...)``.

A schedule gives the learning rate of every epoch from the optimizer's
``lr`` (the base rate). Each built-in one follows its
``torch.optim.lr_scheduler`` namesake operation for operation (the rates
are the same floats; the tests compare them), which means most are written
as torch writes them: a rate that changes from the previous one (``lr *
gamma``), not a closed form.

A schedule object holds only its settings. Its state (the current rate,
the epoch, and what ReduceLROnPlateau counts) is a plain dict of JSON
values that ``fit`` passes in and gets back, so it goes into checkpoints
as it is, and a resumed run goes on with the same rates:

``start(base_lr) -> state``
    the state of epoch 0;
``advance(state, base_lr, logs) -> state``
    the state of the next epoch, after the last one's ``logs`` (its loss,
    ``val_loss``, metrics; ``None`` unless the schedule has a ``monitor``:
    reading them costs a host transfer per epoch);
``rate(state) -> float``
    the epoch's learning rate (default: ``state["lr"]``).

A plain callable ``epoch -> lr`` (epochs from 0) is a schedule too; it has
no state to save, so a resumed run must pass the same callable.
A schedule of your own: subclass :class:`Schedule`, decorate it with
:func:`xpnet.register`, and checkpoints store it by name and config.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any

from .registry import component_spec, register, registry_for

__all__ = [
    "SCHEDULES", "CosineAnnealingLR", "ExponentialLR", "LinearWarmup", "ReduceLROnPlateau", "Schedule", "StepLR",
    "checked_rate", "get_schedule",
]  # fmt: skip

State = dict[str, Any]


class Schedule:
    """Base class of learning-rate schedules (see the module docstring)."""

    name: str = ""
    #: The History figure this schedule reads after each epoch (``"val_loss"``), or ``None``.
    monitor: str | None = None

    def start(self, base_lr: float) -> State:
        return {"lr": float(base_lr), "epoch": 0}

    def restart(self, base_lr: float) -> State:
        """The state of epoch 0 when this schedule takes over from another
        (:class:`LinearWarmup`'s ``then``): torch's closed form at 0."""
        return self.start(base_lr)

    def advance(self, state: State, base_lr: float, logs: dict[str, float] | None) -> State:
        raise NotImplementedError(f"{type(self).__name__} must define advance(state, base_lr, logs)")

    def rate(self, state: State) -> float:
        return state["lr"]

    def config(self) -> dict[str, Any]:
        return {}

    def check_state(self, state: Any) -> None:
        """Refuse a state (from a checkpoint) this schedule never makes: a
        ``ValueError`` naming the entry. The keys are those :meth:`start`
        makes (a subclass's own state too); ``lr`` and ``epoch``, where
        present, must be a rate and an epoch. Override to check more."""
        _check_keys(state, tuple(self.start(1.0)))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.config() == self.config()

    __hash__ = object.__hash__


#: The registry of schedules: name -> class (see :func:`xpnet.register`).
SCHEDULES = registry_for("schedule", Schedule)


@register
class StepLR(Schedule):
    """The rate times ``gamma`` every ``step_size`` epochs (``torch.optim.lr_scheduler.StepLR``)."""

    name = "StepLR"

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _positive_int(step_size, "StepLR step_size")
        self.gamma = _finite_positive(gamma, "StepLR gamma")

    def advance(self, state: State, base_lr: float, logs: Any) -> State:
        epoch = state["epoch"] + 1
        lr = state["lr"] * self.gamma if epoch % self.step_size == 0 else state["lr"]
        return {"lr": lr, "epoch": epoch}

    def config(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma}


@register
class ExponentialLR(Schedule):
    """The rate times ``gamma`` every epoch (``torch.optim.lr_scheduler.ExponentialLR``)."""

    name = "ExponentialLR"

    def __init__(self, gamma: float) -> None:
        self.gamma = _finite_positive(gamma, "ExponentialLR gamma")

    def advance(self, state: State, base_lr: float, logs: Any) -> State:
        return {"lr": state["lr"] * self.gamma, "epoch": state["epoch"] + 1}

    def config(self) -> dict[str, Any]:
        return {"gamma": self.gamma}


@register
class CosineAnnealingLR(Schedule):
    """Half a cosine from the base rate down to ``eta_min`` over ``T_max``
    epochs, then back up (``torch.optim.lr_scheduler.CosineAnnealingLR``,
    whose recursive form this repeats)."""

    name = "CosineAnnealingLR"

    def __init__(self, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803 (torch's name)
        self.T_max = _positive_int(T_max, "CosineAnnealingLR T_max")
        self.eta_min = _non_negative(eta_min, "CosineAnnealingLR eta_min")

    def restart(self, base_lr: float) -> State:
        return {"lr": self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(0.0)) / 2, "epoch": 0}

    def advance(self, state: State, base_lr: float, logs: Any) -> State:
        epoch, lr, t, low = state["epoch"] + 1, state["lr"], self.T_max, self.eta_min
        if (epoch - 1 - t) % (2 * t) == 0:
            lr = lr + (base_lr - low) * (1 - math.cos(math.pi / t)) / 2
        else:
            lr = (1 + math.cos(math.pi * epoch / t)) / (1 + math.cos(math.pi * (epoch - 1) / t)) * (lr - low) + low
        return {"lr": lr, "epoch": epoch}

    def config(self) -> dict[str, Any]:
        return {"T_max": self.T_max, "eta_min": self.eta_min}


@register
class LinearWarmup(Schedule):
    """A linear rise over the first ``epochs`` epochs, then ``then`` (a
    schedule, which starts at its epoch 0 there; ``None``: the base rate).

    Epoch ``e < epochs`` runs at about ``base * (e + 1) / (epochs + 1)``
    (``start_factor`` sets the first factor): exactly torch's
    ``LinearLR(start_factor=1 / (epochs + 1), total_iters=epochs)``, inside
    ``SequentialLR(..., milestones=[epochs])`` when ``then`` is given."""

    name = "LinearWarmup"

    def __init__(self, epochs: int, then: Any = None, start_factor: float | None = None) -> None:
        self.epochs = _positive_int(epochs, "LinearWarmup epochs")
        self.then = None if then is None else get_schedule(then, checkpointable=True)
        if start_factor is not None and not _is_finite_number(start_factor):
            raise ValueError(f"LinearWarmup start_factor must be in (0, 1], got {start_factor!r}")
        self.start_factor = 1.0 / (self.epochs + 1) if start_factor is None else float(start_factor)
        if not 0.0 < self.start_factor <= 1.0:
            raise ValueError(f"LinearWarmup start_factor must be in (0, 1], got {start_factor!r}")
        self.monitor = None if self.then is None else self.then.monitor

    def start(self, base_lr: float) -> State:
        return {"lr": base_lr * self.start_factor, "epoch": 0, "then": None}

    def advance(self, state: State, base_lr: float, logs: Any) -> State:
        epoch, lr, s, n = state["epoch"] + 1, state["lr"], self.start_factor, self.epochs
        if self.then is not None and epoch >= n:
            then = self.then.restart(base_lr) if epoch == n else self.then.advance(state["then"], base_lr, logs)
            return {"lr": self.then.rate(then), "epoch": epoch, "then": then}
        if epoch <= n:
            lr = lr * (1.0 + (1.0 - s) / (n * s + (epoch - 1) * (1.0 - s)))
        return {"lr": lr, "epoch": epoch, "then": None}

    def config(self) -> dict[str, Any]:
        then = None if self.then is None else component_spec(self.then)
        return {"epochs": self.epochs, "then": then, "start_factor": self.start_factor}

    def check_state(self, state: Any) -> None:
        _check_keys(state, ("lr", "epoch", "then"))
        started = self.then is not None and state["epoch"] >= self.epochs  # then advance() reads state["then"]
        if state["then"] is not None and not started:
            raise ValueError("LinearWarmup state: 'then' holds a state before its schedule has started")
        if started and state["then"] is None:
            raise ValueError(f"LinearWarmup state: 'then' must hold the state of {type(self.then).__name__} from "
                             f"epoch {self.epochs} on, got null at epoch {state['epoch']}")  # fmt: skip
        if started:
            self.then.check_state(state["then"])


@register
class ReduceLROnPlateau(Schedule):
    """The rate times ``factor`` once ``monitor`` has not improved for more
    than ``patience`` epochs (``torch.optim.lr_scheduler.ReduceLROnPlateau``,
    with its ``threshold``, ``threshold_mode``, ``cooldown``, ``min_lr`` and
    ``eps``; a NaN or infinite figure is never an improvement, where torch
    keeps an infinite one as its best). ``mode="auto"``: ``"max"`` for a metric that declares
    ``greater_is_better = True`` and for an accuracy, else ``"min"``.
    It reads ``monitor`` after every epoch: one host transfer per epoch."""

    name = "ReduceLROnPlateau"

    def __init__(
        self, factor: float = 0.1, patience: int = 10, monitor: str = "val_loss", mode: str = "auto",
        threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:  # fmt: skip
        if not _is_finite_number(factor) or not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau factor must be in (0, 1), got {factor!r}")
        self.factor = float(factor)
        self.patience = _non_negative_int(patience, "ReduceLROnPlateau patience")
        self.monitor = _monitor_name(monitor, "ReduceLROnPlateau")
        self.mode, self._mode_given = resolve_mode(mode, self.monitor, "ReduceLROnPlateau"), mode
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.threshold, self.threshold_mode = _non_negative(threshold, "ReduceLROnPlateau threshold"), threshold_mode
        self.cooldown = _non_negative_int(cooldown, "ReduceLROnPlateau cooldown")
        self.min_lr = _non_negative(min_lr, "ReduceLROnPlateau min_lr")
        self.eps = _non_negative(eps, "ReduceLROnPlateau eps")

    def start(self, base_lr: float) -> State:
        return {"lr": float(base_lr), "epoch": 0, "best": None, "num_bad_epochs": 0, "cooldown_counter": 0}

    def advance(self, state: State, base_lr: float, logs: Any) -> State:
        current = float(logs[self.monitor])
        state = dict(state, epoch=state["epoch"] + 1)
        if self._is_better(current, state["best"]):
            state["best"], state["num_bad_epochs"] = current, 0
        else:
            state["num_bad_epochs"] += 1
        if state["cooldown_counter"] > 0:
            state["cooldown_counter"] -= 1
            state["num_bad_epochs"] = 0  # bad epochs in cooldown do not count
        if state["num_bad_epochs"] > self.patience:
            old = state["lr"]
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                state["lr"] = new
            state["cooldown_counter"], state["num_bad_epochs"] = self.cooldown, 0
        return state

    def _is_better(self, a: float, best: float | None) -> bool:
        # NaN and infinity are never better (torch's best starts at +-inf: anything finite is): an infinite
        # best would make every later epoch a bad one, and a checkpoint (JSON, all finite) cannot keep it
        if not math.isfinite(a):
            return False
        if best is None:
            return True
        if self.mode == "min":
            return a < best * (1.0 - self.threshold) if self.threshold_mode == "rel" else a < best - self.threshold
        return a > best * (self.threshold + 1.0) if self.threshold_mode == "rel" else a > best + self.threshold

    def config(self) -> dict[str, Any]:
        return {
            "factor": self.factor, "patience": self.patience, "monitor": self.monitor, "mode": self.mode,
            "threshold": self.threshold, "threshold_mode": self.threshold_mode, "cooldown": self.cooldown,
            "min_lr": self.min_lr, "eps": self.eps,
        }  # fmt: skip

    def check_state(self, state: Any) -> None:
        _check_keys(state, ("lr", "epoch", "best", "num_bad_epochs", "cooldown_counter"))
        if state["best"] is not None and not _is_finite_number(state["best"]):
            raise ValueError(f"ReduceLROnPlateau state: best must be a finite number or null, got {state['best']!r}")
        for key in ("num_bad_epochs", "cooldown_counter"):
            if not _is_int(state[key]) or not 0 <= state[key] <= 2**53:
                raise ValueError(f"ReduceLROnPlateau state: {key} must be a non-negative int, got {state[key]!r}")


class _FunctionSchedule(Schedule):
    """A plain callable ``epoch -> lr``: stateless, so nothing of it is saved."""

    name = "<callable>"

    def __init__(self, fn: Callable[[int], float]) -> None:
        self.fn = fn

    def start(self, base_lr: float) -> State:
        self._call(0)  # a callable that cannot give a rate is named before the first step
        return {"epoch": 0}

    def advance(self, state: State, base_lr: float, logs: Any) -> State:
        return {"epoch": state["epoch"] + 1}

    def rate(self, state: State) -> float:
        """Called when the epoch starts, never for the epoch after the last:
        ``lambda e: rates[e]`` needs no rate beyond the run."""
        return self._call(state["epoch"])

    def check_state(self, state: Any) -> None:
        """``{"epoch"}`` (a checkpoint of an older xpnet also held the rate)."""
        _check_keys({k: v for k, v in state.items() if k != "lr"} if isinstance(state, dict) else state, ("epoch",))

    def _call(self, epoch: int) -> float:
        lr = self.fn(epoch)
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"lr_schedule({epoch}) must return a finite number >= 0, got {lr!r}")
        return float(lr)

    def __repr__(self) -> str:
        return f"lr_schedule={_callable_name(self.fn)!r}"


def _callable_name(fn: Any) -> str:
    """A callable's name, the same in every process: a distributed fit
    compares the schedule's repr across them, and a default repr (a callable
    object's, or a partial's of one) holds its address, so equal arguments
    were refused as differing. A partial keeps its plain arguments."""
    name = getattr(fn, "__name__", None)
    if isinstance(name, str):
        return name
    if isinstance(fn, functools.partial):
        args = [repr(a) if _plain(a) else "..." for a in fn.args]
        args += [f"{k}={v!r}" if _plain(v) else f"{k}=..." for k, v in fn.keywords.items()]
        return f"functools.partial({', '.join([_callable_name(fn.func), *args])})"
    if type(fn).__repr__ is not object.__repr__:
        return repr(fn)
    return f"a {type(fn).__qualname__} object"


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def checked_rate(schedule: Schedule, state: State, epoch: int) -> float:
    """``schedule.rate(state)``, refused unless a finite number >= 0: a
    schedule of one's own that went below zero would otherwise train
    uphill, silently, and a NaN rate would be blamed on the weights."""
    lr = schedule.rate(state)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(lr) and lr >= 0):
        raise ValueError(f"{schedule!r} gave the learning rate {lr!r} for epoch {epoch + 1}; a schedule's rate must "
                         "be a finite number >= 0")  # fmt: skip
    return float(lr)


def get_schedule(spec: Any, checkpointable: bool = False) -> Schedule:
    """A schedule from a :class:`Schedule`, a registered name or ``{"name",
    "config"}`` spec, or a callable ``epoch -> lr`` (not inside another
    schedule: ``checkpointable`` refuses it there, as it cannot be saved)."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, type) and issubclass(spec, Schedule):
        return spec()
    if isinstance(spec, str | dict):
        return SCHEDULES.build(spec)
    if callable(spec) and not checkpointable:
        return _FunctionSchedule(spec)
    if callable(spec):
        raise TypeError("LinearWarmup's then= takes a schedule (StepLR, ExponentialLR, CosineAnnealingLR, "
                        "ReduceLROnPlateau, or your own subclass), not a function: a checkpoint could not "
                        "keep it")  # fmt: skip
    raise TypeError(
        f"a learning-rate schedule is an xpnet.schedules.Schedule (StepLR, ExponentialLR, CosineAnnealingLR, "
        f"LinearWarmup, ReduceLROnPlateau) or a callable epoch -> lr, got {type(spec).__name__}"
    )


def resolve_mode(mode: str, monitor: str, who: str, metric: Any = None) -> str:
    """``"min"`` or ``"max"``; ``"auto"`` is what the monitored metric
    declares (``greater_is_better``; the registered one of that name until
    fit gives the object, see :func:`follow_metric`), else ``"max"`` for
    a name containing ``"acc"`` (Keras's rule: accuracies, but any such
    name that declares nothing)."""
    if mode == "auto":
        from .metrics import METRICS

        metric = METRICS.get(monitor.removeprefix("val_")) if metric is None else metric
        declared = getattr(metric, "greater_is_better", None)
        if isinstance(declared, bool):
            return "max" if declared else "min"
        return "max" if "acc" in monitor else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"{who} mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


def follow_metric(who: Any, metric: Any) -> None:
    """``mode="auto"`` of ``who`` (EarlyStopping, ReduceLROnPlateau) decided
    again by the metric object ``fit`` was given for its monitor, as Keras
    decides at training time: built from a name alone, it knew only
    registered metrics, and an unregistered one that declares
    ``greater_is_better = True`` was minimised in silence. A schedule that
    runs another (``LinearWarmup``'s ``then``) has it follow too: that one
    reads the metric."""
    if getattr(who, "_mode_given", None) == "auto":
        who.mode = resolve_mode("auto", who.monitor, type(who).__name__, metric)
    inner = getattr(who, "then", None)
    if isinstance(inner, Schedule):
        follow_metric(inner, metric)


def _monitor_name(monitor: Any, who: str) -> str:
    if not isinstance(monitor, str) or not monitor:
        raise TypeError(f"{who} monitor must be the name of a History figure such as 'val_loss', got {monitor!r}")
    return monitor


def _check_keys(state: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(state, dict) or set(state) != set(keys):
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"schedule state must hold {sorted(keys)}, got {got}")
    if "lr" in state and (not _is_finite_number(state["lr"]) or state["lr"] < 0):
        raise ValueError(f"schedule state: lr must be a finite number >= 0, got {state['lr']!r}")
    if "epoch" in state and (not _is_int(state["epoch"]) or not 0 <= state["epoch"] <= 2**53):
        raise ValueError(f"schedule state: epoch must be a non-negative int, got {state['epoch']!r}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_finite_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _positive_int(v: Any, what: str) -> int:
    return int(_checked(v, _integral(v) and v >= 1, what, "a positive int"))


def _non_negative_int(v: Any, what: str) -> int:
    return int(_checked(v, _integral(v) and v >= 0, what, "a non-negative int"))


def _integral(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _finite_positive(v: Any, what: str) -> float:
    return float(_checked(v, _is_finite_number(v) and v > 0, what, "a positive finite number"))


def _non_negative(v: Any, what: str) -> float:
    return float(_checked(v, _is_finite_number(v) and v >= 0, what, "a non-negative finite number"))


def _checked(v: Any, ok: bool, what: str, expected: str) -> Any:
    """``v`` if ``ok``, else a ValueError that names what was expected and what came."""
    if not ok:
        raise ValueError(f"{what} must be {expected}, got {v!r}")
    return v
