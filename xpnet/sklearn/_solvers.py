"""The solvers: 'sgd'/'adam' through ``Network.fit``, one epoch per call, and
'lbfgs' through ``scipy.optimize`` over the flat parameter vector.

Stochastic training runs scikit-learn's iteration logic between epochs: the
loss curve, ``tol``/``n_iter_no_change`` on the training loss (or on the
validation score with ``early_stopping``), the learning-rate schedules of
'sgd' and the best weights of early stopping. Each epoch is one
``Network.fit(..., epochs=1, warm_start=True)`` call, so the minibatch loop
is xpnet's and the optimizer state runs on from epoch to epoch (and from one
``partial_fit`` to the next). Per epoch one small transfer reaches the host,
two with ``alpha > 0`` (the squared weights of the reported loss).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils import shuffle as sklearn_shuffle

from ..optimizers import SGD
from ._arrays import host
from ._objective import BatchL2, EpochShare, PaperAdam, batch_rows, batch_weights, loss_for, score_for

__all__ = ["NON_FINITE", "LearningRate", "lbfgs", "stochastic"]

NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large values and need to be "
    "preprocessed."
)


class LearningRate:
    """scikit-learn's learning rate between epochs, on the host: constant,
    ``invscaling`` (``lr_init / (t + 1) ** power_t`` after each epoch, ``t``
    the rows seen) or ``adaptive`` (divided by 5 when the loss or score stalls;
    training stops below 1e-6). Only 'sgd' schedules; 'adam' keeps its rate.
    The estimator keeps it as ``_optimizer`` between ``partial_fit`` calls."""

    def __init__(self, est: Any) -> None:
        self.learning_rate_init = float(est.learning_rate_init)
        self.learning_rate = self.learning_rate_init
        self.lr_schedule = est.learning_rate if est.solver == "sgd" else "constant"
        self.power_t = float(est.power_t)

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


def stochastic(est: Any, net: Any, X: Any, Y: Any, weights: Any, incremental: bool) -> None:
    """'sgd' or 'adam': up to ``max_iter`` epochs (one with ``partial_fit``)."""
    fresh = not incremental or getattr(est, "_optimizer", None) is None
    if fresh:
        est._optimizer = LearningRate(est)
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    data, run, alpha = _fit_arguments(est, net, X, Y, weights)
    order, best = np.arange(data[0].shape[0]), None
    est.n_iter_ = 0
    try:
        for _ in range(est.max_iter):
            if est.shuffle:
                order = sklearn_shuffle(order, random_state=est._random_state)
            opt = BatchL2(_update_rule(est, est._optimizer.learning_rate), alpha, *_l2_batches(run, order))
            X_epoch, Y_epoch, *w = _in_order(net, order, data) if est.shuffle else data
            rows = {"sample_weight": w[0]} if w else {}
            try:
                warm = not fresh and _continues(net, opt)
                history = net.fit(X_epoch, Y_epoch, optimizer=opt, warm_start=warm, **run["fit"], **rows)
            except FloatingPointError as exc:
                if not est.early_stopping:
                    raise ValueError(NON_FINITE) from exc
                est.validation_scores_.append(float("nan"))  # diverged: keep the best weights so far
                break
            fresh = False
            best = _end_of_epoch(est, net, history, alpha, run["rows"], best)
            if est._no_improvement_count > est.n_iter_no_change:
                if est._optimizer.trigger_stopping(_stall_message(est), est.verbose):
                    break
                est._no_improvement_count = 0
            if incremental:
                break
            if est.n_iter_ == est.max_iter:
                _warn_max_iter(est)
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.")
    if est.early_stopping:
        _restore_best(est, net, best)


def _fit_arguments(est: Any, net: Any, X: Any, Y: Any, weights: Any) -> tuple[tuple[Any, ...], dict[str, Any], float]:
    """Each of scikit-learn's settings as what ``Network.fit`` takes, in one
    place: the rows (``(X, Y)`` or ``(X, Y, sample_weight)``, less the
    early-stopping rows), ``fit``'s arguments (the loss, ``batch_size``, the
    validation data and score), the epoch's minibatch sizes and the L2
    strength for :class:`BatchL2`. Shuffling is done here, in scikit-learn's
    order (see :func:`_in_order`), so ``fit`` does not shuffle."""
    X, Y, weights, alpha = _weighted_rows(est, net, X, Y, weights)
    validation = val_weights = None
    if est.early_stopping:
        (X, Y, weights), validation, val_weights = _held_out(est, net, X, Y, weights)
    batch = _batch_size(est, X.shape[0])
    rows = batch_rows(X.shape[0], batch)
    loss = loss_for(est.out_activation_, None, est.n_outputs_)
    if rows[-1] != batch:  # a shorter last minibatch: record each row's loss once
        loss = EpochShare(loss, batch)
    fit = {"loss": loss, "epochs": 1, "batch_size": batch, "shuffle": False}
    if validation is not None:
        fit.update(validation_data=validation, metrics=(score_for(est.out_activation_, val_weights),))
    data = (X, Y) if weights is None else (X, Y, net.backend.asarray(weights, net.dtype))
    return data, {"fit": fit, "rows": rows, "weights": weights, "batch": batch}, alpha


def _l2_batches(run: dict[str, Any], order: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    """What :class:`BatchL2` divides the L2 term by in each minibatch of this
    epoch: its rows, or with row weights the sum of its weights (scikit-learn's
    ``sum(w)``), which depends on the epoch's order."""
    if run["weights"] is None:
        return run["rows"], None
    return batch_weights(run["weights"][order], run["batch"])


def _end_of_epoch(est: Any, net: Any, history: Any, alpha: float, rows: tuple[int, ...], best: Any) -> Any:
    """scikit-learn's bookkeeping after an epoch: the loss curve, the count of
    epochs without improvement, the best weights, the learning rate."""
    _record_epoch(est, net, history, alpha, rows)
    best = _track_improvement(est, net, history, best)
    est._optimizer.iteration_ends(est.t_)
    return best


def _in_order(net: Any, order: np.ndarray, arrays: tuple[Any, ...]) -> tuple[Any, ...]:
    """The epoch's rows in scikit-learn's order: its shuffle of the previous
    epoch's order, drawn from the estimator's ``random_state`` as scikit-learn
    draws it, so the same ``random_state`` gives the same minibatches; ``fit``
    then cuts them in order (one gather per epoch here, none per minibatch there)."""
    rows = net.backend.asarray(order)
    return tuple(net.backend.xp.take(a, rows, axis=0) for a in arrays)


def _update_rule(est: Any, lr: float) -> Any:
    if est.solver == "sgd":
        return SGD(lr, momentum=est.momentum, nesterov=bool(est.nesterovs_momentum and est.momentum > 0))
    return PaperAdam(lr, beta1=est.beta_1, beta2=est.beta_2, eps=est.epsilon)


def _continues(net: Any, opt: BatchL2) -> bool:
    """Does the state the last fit left on ``net`` fit ``opt`` (``partial_fit``
    after ``set_params(solver=...)`` starts a fresh state, as a new solver would)?"""
    previous = getattr(net, "_fit_state", None)
    if previous is None or not isinstance(previous[0], BatchL2):
        return False
    old = previous[0].inner
    return type(old) is type(opt.inner) and set(old.init_state([])) == set(opt.inner.init_state([]))


def _weighted_rows(est: Any, net: Any, X: Any, Y: Any, weights: Any) -> tuple[Any, Any, Any, float]:
    """The rows, the row weights ``fit`` must apply, and the L2 strength.

    Rows of weight 0 are left out (their loss counts for nothing, and so a
    weight of 0 is the same as leaving the row out, minibatches included).
    Equal weights ``c`` leave the average loss as it is and divide the L2 term
    by ``c`` (scikit-learn divides it by the batch's sum of weights), so they
    need no row weights in ``fit`` at all; other weights go to ``fit``'s
    ``sample_weight``, and :class:`BatchL2` divides by each batch's sum."""
    if weights is None:
        return X, Y, None, float(est.alpha)
    kept = weights > 0
    if not np.all(kept):
        rows = net.backend.asarray(np.flatnonzero(kept))
        X, Y, weights = net.backend.xp.take(X, rows, axis=0), net.backend.xp.take(Y, rows, axis=0), weights[kept]
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
    take = lambda a, rows: xp.take(a, rows, axis=0)  # noqa: E731
    kept = None if weights is None else weights[train]
    scored = None if weights is None else net.backend.asarray(weights[val], net.dtype)
    return (take(X, rows_train), take(Y, rows_train), kept), (take(X, rows_val), take(Y, rows_val)), scored


def _batch_size(est: Any, n: int) -> int:
    if est.batch_size == "auto":
        return min(200, n)
    if est.batch_size > n:
        warnings.warn(f"batch_size={est.batch_size} is larger than the {n} training rows; using {n}")
    return int(min(est.batch_size, n))


def _record_epoch(est: Any, net: Any, history: Any, alpha: float, rows: tuple[int, ...]) -> None:
    """``loss_`` as scikit-learn reports it: each row's loss counted once, at
    the weights before its minibatch's update (half squared errors averaged
    over the outputs for regression), plus each minibatch's L2 term, per row."""
    n = sum(rows)
    loss = history.loss[0] * rows[0] * len(rows) / n  # see EpochShare
    if est.out_activation_ == "identity":
        loss /= est.n_outputs_
    if alpha:
        loss += 0.5 * alpha * float(host(net._fit_state[1]["squares"])) / n
    est.n_iter_ += 1
    est.t_ += n
    est.loss_ = float(loss)
    est.loss_curve_.append(est.loss_)
    if est.verbose:
        print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")


def _track_improvement(est: Any, net: Any, history: Any, best: Any) -> Any:
    """Count the epochs without improvement by ``tol``: of the validation
    score with early stopping (keeping the best weights), else of the loss."""
    if est.early_stopping:
        score = next(iter(history.metrics.values()))[0]
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


def _warn_max_iter(est: Any) -> None:
    from ._base import warn_convergence

    warn_convergence(
        f"Stochastic optimizer: reached max_iter={est.max_iter} iterations and the optimization has not "
        f"converged yet (tol={est.tol}); raise max_iter, or tol"
    )


# -- L-BFGS -----------------------------------------------------------------------------


def lbfgs(est: Any, net: Any, X: Any, Y: Any, weights: Any) -> None:
    """Full-batch L-BFGS-B over the parameters in scikit-learn's order (all
    weights, then all biases), with the L2 term ``0.5 * alpha * sum(W**2) /
    sum(w)`` (``sum(w)``: the rows, or their weights)."""
    import scipy.optimize

    objective = full_batch_objective(est, net, X, Y, weights)
    result = scipy.optimize.minimize(
        objective, objective.start(), method="L-BFGS-B", jac=True,
        options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol},
        callback=objective.report if est.verbose else None,
    )  # fmt: skip
    est.n_iter_ = min(int(result.nit), est.max_iter)
    if result.status != 0:
        from ._base import warn_convergence

        reason = result.message.decode() if isinstance(result.message, bytes) else result.message
        warn_convergence(
            f"lbfgs failed to converge after {est.n_iter_} iteration(s) ({reason}); raise max_iter or "
            "max_fun, or scale the data"
        )
    net._commit(objective.params(result.x))
    est.loss_ = float(result.fun)
    if est.out_activation_ == "identity" and est.n_outputs_ > 1:  # reported averaged over the outputs
        est.loss_ = float(result.fun - objective.penalty) / est.n_outputs_ + objective.penalty


def full_batch_objective(est: Any, net: Any, X: Any, Y: Any, weights: Any) -> _Objective:
    """scikit-learn's full-batch objective on ``(X, Y)``, with row weights or not."""
    rows = None if weights is None else net.backend.asarray(weights, net.dtype)
    loss = loss_for(est.out_activation_, rows, est.n_outputs_)
    total = float(X.shape[0] if weights is None else np.sum(weights))
    return _Objective(net, X, Y, loss, float(est.alpha) / total)


class _Objective:
    """The loss and its gradient as scipy wants them: float64 host vectors in,
    a float and a float64 host vector out, one transfer each way."""

    def __init__(self, net: Any, X: Any, Y: Any, loss: Any, rate: float) -> None:
        self.net, self.X, self.Y, self.loss, self.rate = net, X, Y, loss, rate
        self.shapes = [tuple(p.shape) for p in net._params()]
        self.order = list(range(0, len(self.shapes), 2)) + list(range(1, len(self.shapes), 2))
        self.penalty, self.iteration, self.value = 0.0, 0, float("nan")

    def start(self) -> np.ndarray:
        params = [host(p) for p in self.net._params()]
        return np.concatenate([params[i].ravel() for i in self.order]).astype(np.float64)

    def params(self, theta: np.ndarray) -> list[Any]:
        """The parameter list (W0, b0, W1, ...) on the device from scipy's vector."""
        backend, xp = self.net.backend, self.net.backend.xp
        flat = backend.asarray(theta, self.net.dtype)
        out, start = [None] * len(self.shapes), 0
        for i in self.order:
            size = int(np.prod(self.shapes[i]))
            out[i] = xp.reshape(flat[start : start + size], self.shapes[i])
            start += size
        return out

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        xp = self.net.backend.xp
        params = self.params(theta)
        value, grads, _ = self.net._loss_and_grads(params, self.X, self.Y, self.loss)
        weights = params[0::2]
        squares = sum(xp.sum(w * w) for w in weights)
        grads = [g + self.rate * p if i % 2 == 0 else g for i, (p, g) in enumerate(zip(params, grads))]
        flat = xp.concat([xp.reshape(value + 0.5 * self.rate * squares, (1,)), xp.reshape(squares, (1,))]
                         + [xp.reshape(grads[i], (-1,)) for i in self.order])  # fmt: skip
        out = host(flat).astype(np.float64)
        self.value, self.penalty = float(out[0]), 0.5 * self.rate * float(out[1])
        return self.value, out[2:]

    def report(self, *args: Any) -> None:
        self.iteration += 1
        print(f"Iteration {self.iteration}, loss = {self.value:.8f}")
