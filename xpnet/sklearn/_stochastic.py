"""The stochastic solvers, 'sgd' and 'adam': one ``Network.fit`` call per
``fit`` (all ``max_iter`` epochs) or ``partial_fit`` (one epoch).

scikit-learn's iteration logic runs inside that call: :class:`SklearnEpochs`
is a callback (``on_epoch_end``) that keeps the loss curve and counts the
epochs without improvement of the training loss by ``tol`` (of the
validation score with ``early_stopping``, keeping the best weights), stops
as scikit-learn stops, and lowers the rate of ``learning_rate="adaptive"``;
the rate of each epoch reaches ``fit`` as a schedule. ``fit`` draws each
epoch's order from :class:`SklearnOrder` (scikit-learn's shuffle, from the
estimator's ``random_state``), and so the minibatch loop, its compiled step
where ``fit`` compiles one, and the optimizer state are ``fit``'s from the
first epoch to the last (and from one ``partial_fit`` to the next). Per epoch
one small transfer reaches the host: the loss (with the L2 term, see
:meth:`BatchL2.epoch_penalty`) and the validation score.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.model_selection import train_test_split

from .._trainstep import take_rows
from ..callbacks import Callback
from ._arrays import host
from ._messages import NON_FINITE, warn_convergence
from ._objective import (
    BatchL2,
    EpochPlan,
    EpochShare,
    PaperAdam,
    VelocitySGD,
    batch_rows,
    batch_weights,
    loss_for,
    score_for,
)

__all__ = ["LearningRate", "SklearnEpochs", "SklearnOrder", "stochastic"]


class LearningRate:
    """scikit-learn's learning rate between epochs, on the host: constant,
    ``invscaling`` (``lr_init / (t + 1) ** power_t`` after each epoch, ``t``
    the rows seen) or ``adaptive`` (divided by 5 when the loss or score stalls;
    training stops below 1e-6). Only 'sgd' schedules; 'adam' keeps its rate.
    The estimator keeps it as ``_optimizer`` between ``partial_fit`` calls,
    and with it the update rule's settings as the first call found them:
    scikit-learn's optimizer object keeps its solver, momentum and betas, so
    ``set_params`` of those between ``partial_fit`` calls changes nothing."""

    def __init__(self, est: Any) -> None:
        self.learning_rate_init = float(est.learning_rate_init)
        self.learning_rate = self.learning_rate_init
        self.lr_schedule = est.learning_rate if est.solver == "sgd" else "constant"
        self.power_t = float(est.power_t)
        self.solver, self.momentum, self.nesterov = est.solver, float(est.momentum), bool(est.nesterovs_momentum)
        self.betas, self.epsilon = (float(est.beta_1), float(est.beta_2)), float(est.epsilon)

    def update_rule(self) -> Any:
        """The update at the current rate, with the settings kept."""
        if self.solver == "sgd":
            return VelocitySGD(self.learning_rate, momentum=self.momentum, nesterov=self.nesterov and self.momentum > 0)
        return PaperAdam(self.learning_rate, beta1=self.betas[0], beta2=self.betas[1], eps=self.epsilon)

    def iteration_ends(self, time_step: int) -> None:
        if self.lr_schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg: str, verbose: bool) -> bool:
        """Stop, or (adaptive) lower the rate and go on."""
        if self.lr_schedule != "adaptive" or self.learning_rate <= 1e-6:
            if verbose:
                print(msg + (" Stopping." if self.lr_schedule != "adaptive" else " Learning rate too small. Stopping."))
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(f"{msg} Setting learning rate to {self.learning_rate:f}")
        return False

    def __call__(self, epoch: int) -> float:
        """The rate of the next epoch: ``fit``'s ``lr_schedule``."""
        return self.learning_rate


def stochastic(est: Any, net: Any, X: Any, Y: Any, weights: Any, incremental: bool) -> None:
    """'sgd' or 'adam': up to ``max_iter`` epochs (one with ``partial_fit``)."""
    fresh = not incremental or getattr(est, "_optimizer", None) is None
    if fresh:
        est._optimizer = LearningRate(est)
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    data, fit = _fit_arguments(est, net, X, Y, weights)
    fit["warm_start"] = not fresh and _continues(net, fit["optimizer"])
    fit["epochs"] = 1 if incremental else est.max_iter
    epochs = SklearnEpochs(est, net, data[0].shape[0], incremental)
    est.n_iter_ = 0
    try:
        net.fit(*data[:2], callbacks=[epochs], **fit)
    except FloatingPointError as exc:
        if not est.early_stopping:
            raise ValueError(NON_FINITE) from exc
        _warn_diverged(est)  # keep the best weights so far; the attributes end at the last finite epoch
        if est.n_iter_ == 0:  # no epoch was finite: the loss is what scikit-learn reports then
            est.loss_ = np.float64(math.inf)
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.")
    if est.early_stopping:
        _restore_best(est, net, epochs.best)


def _fit_arguments(est: Any, net: Any, X: Any, Y: Any, weights: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Each of scikit-learn's settings as what ``Network.fit`` takes, in one
    place: the rows (``(X, Y)``, less the early-stopping rows, and the row
    weights), and ``fit``'s arguments: the loss, the optimizer (the update
    rule with the L2 term), ``batch_size``, scikit-learn's shuffle, the
    learning-rate schedule, the validation data and score."""
    X, Y, weights, alpha = _weighted_rows(est, net, X, Y, weights)
    validation = val_weights = None
    if est.early_stopping:
        (X, Y, weights), validation, val_weights = _held_out(est, net, X, Y, weights)
    n = X.shape[0]
    batch = _batch_size(est, n)
    rows = batch_rows(n, batch)
    plan = EpochPlan(rows) if weights is None else EpochPlan(*batch_weights(weights, batch))
    opt = BatchL2(est._optimizer.update_rule(), alpha, plan, n)
    fit = {"loss": _loss(est, n, rows), "optimizer": opt, "batch_size": batch, "compile": "auto"}
    fit["shuffle"] = SklearnOrder(est, n, weights, plan, batch) if est.shuffle else False
    if est._optimizer.lr_schedule != "constant":
        fit["lr_schedule"] = est._optimizer
    if validation is not None:
        one_class = getattr(est, "classes_", None) is not None and est.classes_.shape[0] == 1
        fit.update(validation_data=validation, metrics=(score_for(est.out_activation_, val_weights, one_class),))
    if weights is not None:
        fit["sample_weight"] = net.backend.asarray(weights, net.dtype)
    if est.out_activation_ == "softmax":  # class labels: fit's cross-entropy on one-hot rows of exactly one 1
        Y = net.backend.xp.argmax(Y, axis=1)
        if validation is not None:
            fit["validation_data"] = (validation[0], net.backend.xp.argmax(validation[1], axis=1))
    return (X, Y), fit


def _loss(est: Any, n: int, rows: tuple[int, ...]) -> Any:
    """scikit-learn's loss; recorded so that ``fit``'s epoch loss is the one
    scikit-learn reports (each row once, averaged over the outputs for the
    squared error) where the plain minibatch mean is not (see :class:`EpochShare`)."""
    loss = loss_for(est.out_activation_, None, est.n_outputs_)
    per_output = est.n_outputs_ if est.out_activation_ == "identity" else 1
    if rows[-1] != rows[0] or per_output != 1:
        loss = EpochShare(loss, len(rows) / (n * per_output))
    return loss


class SklearnOrder:
    """``fit``'s ``shuffle``: each epoch's rows in scikit-learn's order, its
    shuffle of the previous epoch's order drawn from the estimator's
    ``random_state`` as scikit-learn draws it, so the same ``random_state``
    gives the same minibatches. With row weights the epoch's L2 divisors
    (each minibatch's sum of weights) follow the order."""

    def __init__(self, est: Any, n: int, weights: Any, plan: EpochPlan, batch: int) -> None:
        self.est, self.order, self.weights, self.plan, self.batch = est, np.arange(n), weights, plan, batch

    def __call__(self, n: int) -> np.ndarray:
        # sklearn.utils.shuffle(order, random_state=rs) without its checks:
        # rs.shuffle(arange(n)), then order[that] (sklearn.utils.resample)
        shuffled = np.arange(n)
        self.est._random_state.shuffle(shuffled)
        self.order = self.order[shuffled]
        if self.weights is not None:
            self.plan.set(*batch_weights(self.weights[self.order], self.batch))
        return self.order


class SklearnEpochs(Callback):
    """scikit-learn's bookkeeping after each epoch, as a ``fit`` callback:
    the loss curve, the epochs without improvement, the best weights, the
    learning rate, the verbose lines; stops when scikit-learn stops."""

    #: It changes no layer, loss or optimizer setting but the rate (``fit``
    #: reads that every epoch): no per-epoch walk of the components for changes.
    _keeps_settings = True

    def __init__(self, est: Any, net: Any, n: int, incremental: bool) -> None:
        self.est, self.net, self.n, self.incremental = est, net, n, incremental
        self.best: Any = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        est = self.est
        _record_epoch(est, logs["loss"], self.n)
        self.best = _track_improvement(est, self.net, logs, self.best)
        est._optimizer.iteration_ends(est.t_)
        if est._no_improvement_count > est.n_iter_no_change:
            if est._optimizer.trigger_stopping(_stall_message(est), est.verbose):
                return True
            est._no_improvement_count = 0
        if not self.incremental and est.n_iter_ == est.max_iter:
            _warn_max_iter(est)
        return False


def _continues(net: Any, opt: BatchL2) -> bool:
    """Does the state the last fit left on ``net`` fit ``opt`` (a network
    that no fit has trained has none)?"""
    previous = getattr(net, "_fit_state", None)
    if previous is None or not isinstance(previous[0], BatchL2):
        return False
    old = previous[0]
    return type(old.inner) is type(opt.inner) and set(old.init_state([])) == set(opt.init_state([]))


def _weighted_rows(est: Any, net: Any, X: Any, Y: Any, weights: Any) -> tuple[Any, Any, Any, float]:
    """The rows, the row weights ``fit`` must apply, and the L2 strength.

    Rows of weight 0 stay: scikit-learn cuts its minibatches and its
    early-stopping split from all the rows, so leaving them out would change
    both. Equal weights ``c`` leave the average loss as it is and divide the
    L2 term by ``c`` (scikit-learn divides it by the batch's sum of weights),
    so they need no row weights in ``fit`` at all; other weights go to
    ``fit``'s ``sample_weight``, and :class:`BatchL2` divides by each batch's sum."""
    if weights is None:
        return X, Y, None, float(est.alpha)
    if np.all(weights == weights[0]):
        return X, Y, None, float(est.alpha) / float(weights[0])
    return X, Y, weights, float(est.alpha)


def _held_out(est: Any, net: Any, X: Any, Y: Any, weights: Any) -> tuple[tuple[Any, Any, Any], tuple[Any, Any], Any]:
    """scikit-learn's validation split for early stopping (and the held-out
    rows' weights, which weigh the validation score): the same rows for
    the same ``random_state``, stratified for single-output classifiers."""
    n = X.shape[0]
    stratify = host(Y) > 0.5 if is_classifier(est) and est.n_outputs_ == 1 else None
    train, val = train_test_split(
        np.arange(n), random_state=est._random_state, test_size=est.validation_fraction, stratify=stratify
    )
    if val.shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
        )
    xp = net.backend.xp
    rows_train, rows_val = net.backend.asarray(train), net.backend.asarray(val)
    take = lambda a, rows: take_rows(xp, a, rows, 0, rows.shape[0])  # noqa: E731 (a sparse X too)
    kept = None if weights is None else weights[train]
    if weights is not None and not np.any(host(weights[val])):  # the score would be 0/0 every epoch
        raise ValueError("Sample weights must contain at least one non-zero number. (Every row that early_stopping "
                         "holds out for validation weighs 0, so no validation score can be computed.)")  # fmt: skip
    scored = None if weights is None else net.backend.asarray(weights[val], net.dtype)
    return (take(X, rows_train), take(Y, rows_train), kept), (take(X, rows_val), take(Y, rows_val)), scored


def _batch_size(est: Any, n: int) -> int:
    if est.batch_size == "auto":
        return min(200, n)
    if est.batch_size > n:
        warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped "
                      f"(batch_size={est.batch_size}, {n} training rows)")  # scikit-learn's words: filters match
    return int(min(est.batch_size, n))


def _record_epoch(est: Any, loss: float, n: int) -> None:
    """``loss_`` as scikit-learn reports it (``fit``'s epoch loss: see
    :func:`_loss`), a NumPy float64 as scikit-learn's is (also in
    ``loss_curve_`` and ``best_loss_``), whatever the backend gave."""
    est.n_iter_ += 1
    est.t_ += n
    est.loss_ = np.float64(loss)
    est.loss_curve_.append(est.loss_)
    if est.verbose:
        print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")


def _track_improvement(est: Any, net: Any, logs: dict[str, float], best: Any) -> Any:
    """Count the epochs without improvement by ``tol``: of the validation
    score with early stopping (keeping the best weights), else of the loss."""
    if est.early_stopping:
        score = next(v for k, v in logs.items() if k not in ("loss", "val_loss", "lr"))
        est.validation_scores_.append(score)
        if est.verbose:
            print(f"Validation score: {score:f}")
        stalled = score < est.best_validation_score_ + est.tol
        if score > est.best_validation_score_:
            est.best_validation_score_, best = score, net._params()  # arrays are never written in place
    else:
        stalled = est.loss_curve_[-1] > est.best_loss_ - est.tol
        est.best_loss_ = min(est.best_loss_, est.loss_curve_[-1])
    est._no_improvement_count = est._no_improvement_count + 1 if stalled else 0
    return best


def _restore_best(est: Any, net: Any, best: Any) -> None:
    """Early stopping ends on the best weights: this fit's, or those kept from
    an earlier warm-started fit (or the start) when this one never beat them."""
    if best is None:
        pairs = zip(est._best_coefs, est._best_intercepts)
        best = [net.backend.asarray(p, net.dtype, copy=True) for pair in pairs for p in pair]
    net._commit(best)
    params = [host(p) for p in best]
    est._best_coefs, est._best_intercepts = params[0::2], params[1::2]


def _stall_message(est: Any) -> str:
    what = "Validation score did not improve" if est.early_stopping else "Training loss did not improve"
    return f"{what} more than tol={est.tol:f} for {est.n_iter_no_change} consecutive epochs."


def _warn_diverged(est: Any) -> None:
    """scikit-learn trains on with non-finite losses and warns at max_iter;
    xpnet stops at the first, keeps the best weights, and says so."""
    kept = "the best validation score's weights" if est.n_iter_ else "the weights it started from"
    warn_convergence(
        f"Stochastic optimizer: the training loss became non-finite in iteration {est.n_iter_ + 1}; stopped "
        f"after {est.n_iter_} iterations with {kept} (lower learning_rate_init, or scale the data)"
    )


def _warn_max_iter(est: Any) -> None:
    """scikit-learn's words first, so that warning filters on them match."""
    warn_convergence(
        f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and the optimization hasn't converged "
        f"yet. (tol={est.tol}: raise max_iter, or tol)"
    )
