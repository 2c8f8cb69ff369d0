"""fit's options checked and turned into a run's fixed settings: the
tolerance, callbacks and what they monitor, the base learning rate, the
weight-decay mask, the run's random key, the optimizer state a
``warm_start`` continues, and the facts every process of a distributed run
must share. One place for what is decided before the first step, so that
:mod:`xpnet.training` holds the loop alone."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._pending import all_finite, list_entries
from .callbacks import callback_name
from .metrics import get_metric
from .optimizers import initial_state
from .registry import component_spec
from .schedules import follow_metric

__all__ = ["base_rate", "check_callbacks", "check_edited_optimizer", "check_monitors", "check_tol", "continued_state",
           "decay_mask", "run_facts", "run_key"]  # fmt: skip


def named_metrics(metrics: Any) -> dict[str, Any]:
    """``{"val_<name>": metric}``, the keys of the History and of callbacks'
    logs. Two metrics of one name, or one named ``loss`` (its key would be
    the validation loss's, which early stopping watches), are refused: one
    figure would silently overwrite the other."""
    named: dict[str, Any] = {}
    for metric in map(get_metric, metrics):
        key = f"val_{metric.name}"
        if metric.name == "loss":
            raise ValueError("a metric cannot be named 'loss': its figure would be 'val_loss', the validation "
                             "loss's key; rename the function or the Metric's `name`")  # fmt: skip
        if key in named:
            raise ValueError(f"two metrics are named {metric.name!r}, so their figures would share the key {key!r}; "
                             "give each its own name (a def instead of a lambda, or a Metric's `name`)")  # fmt: skip
        named[key] = metric
    return named


def check_tol(tol: Any) -> float | None:
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0):
        raise ValueError(f"tol must be a non-negative number or None, got {tol!r}")
    return None if tol is None else float(tol)


def check_eps(opt: Any, dtype: str) -> None:
    """Refuse an optimizer ``eps`` that is 0 in the network's dtype (1e-50 in
    float32): Adam and RMSprop divide by ``sqrt(v) + eps``, and a weight whose
    gradient is 0 (a constant input, a dead unit) became 0 / 0 = NaN, which
    fit blamed on the learning rate. A host check, once per fit."""
    eps = getattr(opt, "eps", None)
    if isinstance(eps, float) and eps > 0.0 and float(np.dtype(dtype).type(eps)) == 0.0:
        tiny = float(np.finfo(dtype).smallest_subnormal)
        raise ValueError(f"{type(opt).__name__}'s eps={eps!r} is 0 in {dtype} (the smallest positive {dtype} is "
                         f"{tiny:.3g}): a weight whose gradient is 0 would become 0 / 0 = NaN; use an eps of at least "
                         f"{tiny:.3g} (the default is 1e-08), or train in float64")  # fmt: skip


def check_callbacks(callbacks: Any) -> list[Any]:
    from .callbacks import as_callback

    if callbacks is None:
        return []
    if not isinstance(callbacks, list | tuple):
        raise TypeError(
            f"callbacks must be a list or tuple of callbacks such as [xpnet.EarlyStopping()], got {callbacks!r}"
        )
    return [as_callback(cb) for cb in callbacks]


def check_monitors(run: Any, validation: bool) -> None:
    """What schedules and callbacks monitor must be a figure this run records;
    a ``mode="auto"`` follows the metric object this run was given."""
    known = {"loss", "lr"} | ({"val_loss", *run.metric_fns} if validation else set())
    for who in [run.schedule, *run.callbacks]:
        monitor = getattr(who, "monitor", None)
        if isinstance(monitor, str) and monitor not in known:
            hint = "; pass validation_data or validation_split" if monitor.startswith("val_") and not validation else ""
            raise ValueError(
                f"{type(who).__name__} monitors {monitor!r}, which this run does not record "
                f"(it records {', '.join(sorted(known))}){hint}"
            )
        if monitor in run.metric_fns:
            follow_metric(who, run.metric_fns[monitor])


def check_rate_given_once(given: Any, opt: Any, lr: Any) -> None:
    """``lr`` is for an optimizer given by name: with an optimizer object
    (which keeps its own rate) another ``lr`` would be ignored in silence,
    the value of ``fit``'s default (``None`` when not given) too."""
    own = getattr(opt, "lr", None)
    if not isinstance(given, str | type) and lr is not None and own is not None and lr != own:  # an object, a spec
        raise ValueError(f"lr={lr!r} and an optimizer object with its own lr={own!r}: the object's rate is the one "
                         f"used; set it there ({type(opt).__name__}(lr={lr!r}), or in a spec's config) and leave "
                         "fit's lr out")  # fmt: skip


def check_edited_optimizer(opt: Any, who: str = "a callback") -> None:
    """The settings ``who`` gave a built-in optimizer after it was built (a
    callback between epochs, or code before ``fit``), checked as its
    constructor checks them (the rate may be 0, as a schedule's): a negative
    lr trained uphill in silence, momentum=-1 failed deep in the update
    kernel, lr='0.1' in NumPy's words."""
    if type(opt).__module__ != __name__.rsplit(".", 1)[0] + ".optimizers":
        return
    config, name = opt.config(), type(opt).__name__
    lr = config.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not 0 <= lr < math.inf:
        raise ValueError(f"{who} set {name}'s lr to {lr!r}; a rate must be a finite number >= 0")
    try:
        type(opt)(**{**config, "lr": 1.0})
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{who} set {name}'s settings to ones it refuses: {exc}") from None


def base_rate(opt: Any, schedule: Any) -> float | None:
    """The optimizer's ``lr`` (a schedule needs one), or ``None``."""
    lr = getattr(opt, "lr", None)
    if type(lr) is float:  # as the built-ins keep it: no ABC check (asked every epoch)
        return lr
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        return float(lr)
    if schedule is not None:
        raise ValueError(f"lr_schedule needs an optimizer with an `lr` attribute (a number), got {opt!r}")
    return None


def decay_mask(net: Any, opt: Any) -> list[bool] | None:
    """The network's weight-decay mask, or ``None`` (no check per step) for
    a built-in optimizer without weight decay, which ignores it."""
    if type(opt).__module__ == __name__.rsplit(".", 1)[0] + ".optimizers" and getattr(opt, "weight_decay", None) == 0:
        return None
    return net._decay_mask()


def run_key(seed: Any, found: Any, dp: Any) -> int:
    """The run's random key: ``seed``, a resumed checkpoint's, or fresh
    entropy (rank 0's in a distributed run); never drawn from the shuffling
    generator, so it shifts no shuffle."""
    if found is not None and found.key is not None:
        key = found.key
    elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        key = int(seed)
    else:
        key = int(np.random.SeedSequence().entropy % 2**63)
    # Every process takes part, whatever its seed: a broadcast only where seed=None waited forever
    # for the processes given an integer.
    return key if dp is None else dp.from_root(key)


def continued_state(net: Any, opt: Any, params: list[Any]) -> Any:
    """``warm_start``: the optimizer state the previous ``fit`` left on ``net``
    (fresh when there is none), refused when it does not fit ``opt``."""
    fresh = initial_state(opt, params)
    previous = getattr(net, "_fit_state", None)
    if previous is None:
        return fresh
    old, state = previous
    if type(old) is not type(opt) or set(state) != set(fresh):
        raise ValueError(
            f"warm_start=True continues the optimizer state of the previous fit, which used {old!r}; "
            f"its state does not fit {opt!r}: pass warm_start=False to start a fresh state"
        )
    _refuse_non_finite(net.backend, state)
    return state


def _refuse_non_finite(backend: Any, state: dict[str, Any]) -> None:
    """Refuse a previous fit's state that is not finite (a float64 Adam v
    above 3.4e38, copied to float32 by ``Network.to``): continued, it froze
    those weights (m / inf = 0) with a finite loss. One transfer per fit."""
    named = list_entries(state)
    if not named:
        return
    flags = backend.to_host([all_finite(backend.xp, [a]) for _, a in named])
    bad = next((name for (name, _), ok in zip(named, flags) if not ok), None)
    if bad is not None:
        raise ValueError(f"warm_start=True continues the optimizer state of the previous fit, but its {bad} holds "
                         "NaN or infinite values (a float64 state copied to float32 by Network.to overflows): pass "
                         "warm_start=False to start a fresh state")  # fmt: skip


def run_facts(run: Any, step: int) -> dict[str, Any]:
    """What must be equal on every process of a distributed run (else it
    hangs, or trains a blend of two models). Plain values: they travel."""
    val = run.val
    net = run.net
    return {
        "backend": net.backend.name,
        "network": repr(net.config()),
        "parameter shapes": [tuple(p.shape) for p in net._params()],
        "X.shape": tuple(run.X.shape),
        "y.shape": tuple(run.T.shape),
        "dtype": str(run.X.dtype),
        "validation_data shapes": None if val is None else (tuple(val[0].shape), tuple(val[1].shape)),
        "batch_size": step,
        "epochs": run.epochs,
        "shuffle": "a callable (rank 0's orders are used)" if callable(run.shuffle) else run.shuffle,
        "tol": run.tol,
        "loss": component_spec(run.loss),  # its settings too (huber's delta): its name, or name and config
        "optimizer": repr(run.opt),
        "lr_schedule": None if run.schedule is None else repr(run.schedule),
        "callbacks": [_callback_settings(cb) for cb in run.callbacks],
        "metrics": list(run.metric_fns),
        "class_weight": run.class_weight,
        "warm_start (continuing a fit)": (run.warm_start, run.continues),
        "validation_split": run.split,
        "weights": run.w is not None,
        "resume": run.resume is not None,
        "interrupt": run.interrupt is not None,  # its flag rides in the allreduce: one more entry
        "completed epochs": len(run.history.loss),
    }


def _callback_settings(cb: Any) -> str:
    """A callback by its class, and by its settings where its class says
    them (its own ``__repr__``, as EarlyStopping's): a default repr holds an
    address, which differs from process to process."""
    inner = getattr(cb, "wrapped", cb)
    return repr(inner) if type(inner).__repr__ is not object.__repr__ else callback_name(cb)
