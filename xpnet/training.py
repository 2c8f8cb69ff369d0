"""fit: minibatches, History, early stopping on ``tol``, and the NaN guard.

The training loop keeps everything on the device. Per step it slices (or, when
shuffling, gathers) a minibatch, computes loss and gradients, and asks the
optimizer for new parameters; the step's loss is added to a device scalar.
Once per epoch, one small array travels to the host: the epoch loss (NaN
if any parameter is not finite: see ``_weight_sum``) and, with validation
data, the validation loss and metrics. Only then are the epoch's parameters committed to
the network, so a diverging run leaves the last finite weights in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._random import host_rng
from .losses import get_loss
from .metrics import get_metric
from .optimizers import get_optimizer
from .validation import DeferredChecks, positive

__all__ = ["History", "fit"]


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
) -> History:
    """Train ``net`` on ``(X, y)`` and return its :class:`History`.

    ``batch_size=None`` is full-batch gradient descent; otherwise minibatches
    of ``batch_size`` rows (the last one may be shorter), reshuffled every
    epoch by ``numpy.random.default_rng(seed)`` on the host when ``shuffle``,
    so every backend sees the same minibatches in the same order.
    ``tol``: stop after the first epoch whose loss improves by less than
    ``tol`` (or gets worse). ``metrics`` (e.g. ``("accuracy",)``) are computed
    on ``validation_data`` each epoch, in the same transfer as the losses.
    Raises ``FloatingPointError`` naming the epoch if the loss or the weights
    stop being finite; the network then keeps the last finite epoch's weights.
    """
    loss = get_loss(loss)
    opt = get_optimizer(optimizer, lr)
    epochs = positive(epochs, "epochs", integer=True)
    batch_size = positive(batch_size, "batch_size", integer=True, allow_none=True)
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, int | float) or not tol >= 0):
        raise ValueError(f"tol must be a non-negative number or None, got {tol!r}")
    metric_fns = {f"val_{name}": get_metric(name) for name in metrics}
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

    n = X.shape[0]
    step = n if batch_size is None else min(batch_size, n)
    bounds = [(start, min(start + step, n)) for start in range(0, n, step)]
    params = net._params()
    state = opt.init_state(params)
    history = History(metrics={name: [] for name in metric_fns})
    bar = _progress_bar(epochs, progress)
    try:
        for epoch in range(epochs):
            order = backend.asarray(rng.permutation(n)) if shuffle and step < n else None
            total = None
            for start, stop in bounds:
                if order is None:
                    Xb, Tb = X[start:stop, ...], T[start:stop, ...]
                else:
                    rows = order[start:stop]
                    Xb, Tb = xp.take(X, rows, axis=0), xp.take(T, rows, axis=0)
                value, grads = net._loss_and_grads(params, Xb, Tb, loss)
                params, state = opt.step(params, grads, state)
                total = value if total is None else total + value
            epoch_loss = total / len(bounds)
            # The NaN guard rides in the same transfer: the sum of all weights
            # is finite when every weight is (one reduction per parameter, no
            # temporaries, no flags raised). Only when it is not does the exact
            # check run (a sum of finite weights can overflow), at one more
            # transfer on that rare path.
            report = [epoch_loss, _weight_sum(xp, params)]
            if val is not None:
                Yv = net._forward(params, val[0])[0]
                report.append(loss._value(xp, val[1], Yv))
                report += [fn(xp, val[1], Yv) for fn in metric_fns.values()]
            dtype = epoch_loss.dtype
            host = [float(v) for v in backend.to_numpy(xp.stack([r if r.dtype == dtype else xp.astype(r, dtype) for r in report]))]
            finite = math.isfinite(host[0]) and (math.isfinite(host[1]) or _all_finite_host(backend, xp, params))
            if not finite:
                raise FloatingPointError(
                    f"the training loss became NaN or infinite in epoch {epoch + 1}; "
                    f"the network keeps the weights of epoch {epoch} (lower the learning rate, lr={_lr(opt)})"
                )
            net._commit(params)
            history.loss.append(host[0])
            if val is not None:
                history.val_loss.append(host[2])
                for name, v in zip(metric_fns, host[3:]):
                    history.metrics[name].append(v)
            _update_bar(bar, history)
            if tol is not None and epoch > 0 and history.loss[-2] - history.loss[-1] < tol:
                history.stopped_early = True
                break
    finally:
        if bar is not None:
            bar.close()
    return history


def _weight_sum(xp: Any, params: list[Any]) -> Any:
    """The sum of every parameter entry: finite only if all of them are (it
    may also overflow: ``_all_finite_host`` then decides)."""
    total = None
    for p in params:
        s = xp.sum(p)
        total = s if total is None else total + s
    return total


def _all_finite_host(backend: Any, xp: Any, params: list[Any]) -> bool:
    """The exact check, for when the weights' sum is not finite (one transfer)."""
    return bool(backend.to_numpy(_all_finite(xp, params)))


def _all_finite(xp: Any, params: list[Any]) -> Any:
    ok = None
    for p in params:
        flag = xp.all(xp.isfinite(p))
        ok = flag if ok is None else ok & flag
    return ok


def _lr(opt: Any) -> Any:
    return getattr(opt, "lr", "?")


def _progress_bar(epochs: int, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=epochs, unit="epoch", dynamic_ncols=True, leave=True)


def _update_bar(bar: Any, history: History) -> None:
    if bar is None:
        return
    post = {"loss": f"{history.loss[-1]:.4g}"}
    if history.val_loss:
        post["val_loss"] = f"{history.val_loss[-1]:.4g}"
    for name, values in history.metrics.items():
        post[name] = f"{values[-1]:.4f}"
    bar.set_postfix(post, refresh=False)
    bar.update(1)
