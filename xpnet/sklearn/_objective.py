"""scikit-learn's MLP objective on xpnet's parts: its losses, its L2 term and
its validation scores.

scikit-learn's losses sum over the outputs and average over the rows (a
weighted average when rows carry weights), and each pairs with its output
activation so that the delta at the output potential is ``(y - t) w / sum(w)``
(the canonical link): softmax with the log loss, the logistic function with
the binary log loss, the identity with half the squared error, and for
Poisson the exponential, which here lives in the loss (the network outputs
the log of the mean; the estimator exponentiates its predictions).

``alpha`` is the L2 term ``0.5 * alpha * sum(W**2) / n_batch``, weights only.
Its gradient ``alpha * W / n_batch`` depends on each minibatch's row count,
which the optimizer does not see, so :class:`BatchL2` wraps the SGD or Adam
update and counts the steps of an epoch; ``fit`` cuts an epoch of ``n`` rows
into minibatches of ``batch_size`` rows and a shorter last one. This is the
one place the term is applied in stochastic training.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

from ..losses import Loss, get_loss
from ..optimizers import Adam, Optimizer
from ..registry import component_spec

__all__ = ["BatchL2", "EpochShare", "PaperAdam", "batch_rows", "batch_weights", "loss_for", "score_for"]


class _SklearnLoss(Loss):
    """A loss summed over outputs and averaged over rows, with optional row
    weights bound to it (full-batch L-BFGS, where the rows never change)."""

    def __init__(self, weights: Any = None) -> None:
        self.weights = weights

    def _rows(self, xp: Any, t: Any, y: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _mean(self, xp: Any, rows: Any) -> Any:
        if self.weights is None:
            return xp.sum(rows) / rows.shape[0]
        return xp.sum(self.weights * rows) / xp.sum(self.weights)

    def _row_scale(self, xp: Any, y: Any) -> Any:
        """``w / sum(w)`` as a column (``1 / n`` without weights)."""
        if self.weights is None:
            return 1.0 / y.shape[0]
        return xp.reshape(self.weights / xp.sum(self.weights), (-1, 1))

    def _value(self, xp: Any, t: Any, y: Any) -> Any:
        return self._mean(xp, self._rows(xp, t, y))

    def _per_sample(self, xp: Any, t: Any, y: Any) -> Any:  # what fit's sample weights weigh
        return self._rows(xp, t, y)

    def _fused_delta(self, xp: Any, t: Any, y: Any) -> Any:
        return (y - t) * self._row_scale(xp, y)

    def config(self) -> dict[str, Any]:
        return {}


class HalfSquaredError(_SklearnLoss):
    """``0.5 * sum_k (y - t)**2`` per row; the identity output."""

    name = "half_squared_error"
    fused_with = "identity"

    def _rows(self, xp, t, y):
        d = y - t
        return 0.5 * xp.sum(d * d, axis=1)

    def _gradient(self, xp, t, y):
        return self._fused_delta(xp, t, y)


class LogLoss(_SklearnLoss):
    """``-sum_k t log y`` per row; the softmax output."""

    name = "log_loss"
    fused_with = "softmax"

    def _rows(self, xp, t, y):
        eps = xp.finfo(y.dtype).eps
        return -xp.sum(t * xp.log(xp.clip(y, eps, 1.0 - eps)), axis=1)

    def _gradient(self, xp, t, y):
        eps = xp.finfo(y.dtype).eps
        return -t / xp.clip(y, eps, 1.0 - eps) * self._row_scale(xp, y)


class BinaryLogLoss(_SklearnLoss):
    """``-sum_k (t log y + (1 - t) log(1 - y))`` per row; logistic outputs
    (one for two classes, one per label for multilabel targets)."""

    name = "binary_log_loss"
    fused_with = "sigmoid"

    def _rows(self, xp, t, y):
        eps = xp.finfo(y.dtype).eps
        p = xp.clip(y, eps, 1.0 - eps)
        return -xp.sum(t * xp.log(p) + (1.0 - t) * xp.log(1.0 - p), axis=1)

    def _gradient(self, xp, t, y):
        eps = xp.finfo(y.dtype).eps
        p = xp.clip(y, eps, 1.0 - eps)
        return (p - t) / (p * (1.0 - p)) * self._row_scale(xp, y)


class PoissonLogLink(_SklearnLoss):
    """scikit-learn's Poisson loss ``sum_k (t log(t / m) - t + m)`` per row,
    with the mean ``m = exp(z)`` of the network's (identity) output ``z``."""

    name = "poisson_log_link"
    fused_with = "identity"

    def _rows(self, xp, t, z):
        safe_t = xp.where(t > 0, t, 1.0)
        xlogx = xp.where(t > 0, t * xp.log(safe_t), 0.0)  # t log t, 0 at t = 0
        return xp.sum(xlogx - t * z - t + xp.exp(z), axis=1)

    def _fused_delta(self, xp, t, z):
        return (xp.exp(z) - t) * self._row_scale(xp, z)

    _gradient = _fused_delta


#: scikit-learn's ``out_activation_`` -> (the network's output activation, the loss).
_OUTPUTS = {
    "softmax": ("softmax", LogLoss),
    "logistic": ("sigmoid", BinaryLogLoss),
    "identity": ("identity", HalfSquaredError),
    "exp": ("identity", PoissonLogLink),
}


def output_activation(out_activation: str) -> str:
    """The network's last activation for scikit-learn's ``out_activation_``."""
    return _OUTPUTS[out_activation][0]


def loss_for(out_activation: str, weights: Any = None, n_outputs: int = 1) -> Loss:
    """scikit-learn's loss for ``out_activation_``, with optional row weights.

    Without weights, the softmax log loss and the binary log loss of one
    output are xpnet's own ``cross_entropy`` and ``binary_cross_entropy``
    (the same values and deltas, a few array operations fewer per step)."""
    if weights is None and out_activation == "softmax":
        return get_loss("cross_entropy")
    if weights is None and out_activation == "logistic" and n_outputs == 1:
        return get_loss("binary_cross_entropy")
    return _OUTPUTS[out_activation][1](weights)


# -- validation scores, computed on the device by fit's metrics ---------------


class ValidationScore:
    """Early stopping's score on the validation rows, as scikit-learn's
    ``score`` gives it (weighted by the rows' weights when there are some):
    the accuracy of the most probable class (softmax), of every label at a 0.5
    threshold (logistic), or R² averaged over the outputs (for Poisson, of
    ``exp`` of the network's log-means). A callable ``(y_true, y_pred)`` for
    ``fit(metrics=...)``, which computes it on the device with the losses."""

    __name__ = "validation_score"

    def __init__(self, out_activation: str, weights: Any = None) -> None:
        self.out_activation, self.weights = out_activation, weights

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        xp = array_namespace(y_true, y_pred)
        if self.out_activation == "softmax":
            return self._mean(xp, xp.astype(xp.argmax(y_pred, axis=1) == xp.argmax(y_true, axis=1), y_pred.dtype))
        if self.out_activation == "logistic":
            return self._mean(xp, xp.astype(xp.all((y_pred > 0.5) == (y_true > 0.5), axis=1), y_pred.dtype))
        return self._r2(xp, y_true, xp.exp(y_pred) if self.out_activation == "exp" else y_pred)

    def _mean(self, xp: Any, per_row: Any) -> Any:
        if self.weights is None:
            return xp.mean(per_row, axis=0)
        w = self.weights if per_row.ndim == 1 else xp.reshape(self.weights, (-1, 1))
        return xp.sum(w * per_row, axis=0) / xp.sum(self.weights)

    def _r2(self, xp: Any, y_true: Any, y_pred: Any) -> Any:
        """R² per output, averaged; a constant target scores 1 when predicted
        exactly, else 0 (scikit-learn's ``r2_score``)."""
        residual = self._mean(xp, (y_true - y_pred) ** 2)
        total = self._mean(xp, (y_true - self._mean(xp, y_true)) ** 2)
        constant = total == 0
        score = 1.0 - residual / xp.where(constant, 1.0, total)
        return xp.mean(xp.where(constant, xp.where(residual == 0, 1.0, 0.0), score))


def score_for(out_activation: str, weights: Any = None) -> ValidationScore:
    """The validation score of early stopping: accuracy or R²."""
    return ValidationScore(out_activation, weights)


# -- the update rules ------------------------------------------------------------------


class PaperAdam(Adam):
    """Adam in the "more efficient" order of Kingma & Ba's Algorithm 1, which
    scikit-learn uses: the bias corrections go into the rate, ``lr_t = lr *
    sqrt(1 - beta2**t) / (1 - beta1**t)``, and ``eps`` is added to ``sqrt(v)``
    itself (torch's Adam, xpnet's, adds it to the corrected ``sqrt(v_hat)``).
    The two differ where ``sqrt(v)`` is near ``eps``, which small minibatches
    amplify; this one follows scikit-learn's run."""

    name = "paper_adam"

    def _adam(self, params, grads, state):
        b1, b2 = self.beta1, self.beta2
        t = state["t"] + 1
        rate = self.lr * (1.0 - b2**t) ** 0.5 / (1.0 - b1**t)
        m = [b1 * m_ + (1.0 - b1) * g for m_, g in zip(state["m"], grads)]
        v = [b2 * v_ + (1.0 - b2) * (g * g) for v_, g in zip(state["v"], grads)]
        new = [p - rate * m_ / (v_**0.5 + self.eps) for p, m_, v_ in zip(params, m, v)]
        return new, {"t": t, "m": m, "v": v}


# -- the L2 term -----------------------------------------------------------------


class BatchL2(Optimizer):
    """``inner``'s update of the gradients plus ``alpha * W / n_b`` on the
    weights (``decay``), ``n_b`` the rows of the step's minibatch, or the sum
    of their weights: the ``batch_rows`` of one epoch, in order. The state is
    ``inner``'s, the index of the next minibatch in the epoch (back to 0 after
    the last) and ``squares``: the sum over the epoch's steps so far of
    ``sum(W**2) * shares[k]`` before each update (``shares``: rows over
    ``batch_rows``, 1 without row weights), the L2 term that scikit-learn's
    reported loss includes (a device scalar, read once per epoch)."""

    name = "sklearn_batch_l2"

    def __init__(
        self, inner: Optimizer, alpha: float, batch_rows: tuple[float, ...], shares: tuple[float, ...] | None = None
    ) -> None:
        self.inner = inner
        self.alpha = float(alpha)
        self.batch_rows = tuple(float(n) for n in batch_rows)
        self.shares = (1.0,) * len(self.batch_rows) if shares is None else tuple(float(s) for s in shares)

    @property
    def lr(self) -> float:
        return self.inner.lr

    @property
    def nonnegative(self) -> tuple[str, ...]:
        return self.inner.nonnegative

    def init_state(self, params: list[Any]) -> dict[str, Any]:
        return {**self.inner.init_state(params), "batch": 0, "squares": 0.0}

    def step(self, params, grads, state, decay=None):
        k = state["batch"]
        flags = [True] * len(params) if decay is None else decay
        squares = state["squares"]
        if self.alpha:
            rate = self.alpha / self.batch_rows[k]
            grads = [g + rate * p if f else g for p, g, f in zip(params, grads, flags)]
            xp = array_namespace(*params)
            now = sum(xp.sum(p * p) for p, f in zip(params, flags) if f) * self.shares[k]
            squares = now if k == 0 else squares + now
        inner = {key: v for key, v in state.items() if key not in ("batch", "squares")}
        params, inner = self.inner.step(params, grads, inner, decay=decay)
        return params, {**inner, "batch": (k + 1) % len(self.batch_rows), "squares": squares}

    def config(self) -> dict[str, Any]:
        return {
            "inner": component_spec(self.inner), "alpha": self.alpha, "batch_rows": list(self.batch_rows),
            "shares": list(self.shares),
        }  # fmt: skip

    def __repr__(self) -> str:
        return f"BatchL2({self.inner!r}, alpha={self.alpha!r}, batches={len(self.batch_rows)})"


class EpochShare(Loss):
    """``loss`` of a minibatch, recorded as its share of the epoch: the mean
    over its ``n_b`` rows times ``n_b / batch_size``. The mean over an epoch's
    minibatches of these values (what ``fit`` records) times ``batch_size *
    n_batches / n`` is then the average over the epoch's rows, each row
    counted once, as scikit-learn reports it. Only the recorded value changes;
    the deltas are those of ``loss``, the minibatch mean."""

    reduction = "mean"

    def __init__(self, loss: Loss, batch_size: int) -> None:
        self.loss, self.batch_size = loss, int(batch_size)
        self.name, self.fused_with = loss.name, loss.fused_with

    def _value(self, xp, t, y):
        return self.loss._value(xp, t, y) * (y.shape[0] / self.batch_size)

    def _per_sample(self, xp, t, y):
        return self.loss._per_sample(xp, t, y) * (y.shape[0] / self.batch_size)

    def _gradient(self, xp, t, y):
        return self.loss._gradient(xp, t, y)

    def _fused_delta(self, xp, t, y):
        return self.loss._fused_delta(xp, t, y)

    def config(self) -> dict[str, Any]:
        return {"loss": component_spec(self.loss), "batch_size": self.batch_size}


def batch_rows(n: int, batch_size: int) -> tuple[int, ...]:
    """The row counts of one epoch's minibatches, as ``fit`` cuts them."""
    full, rest = divmod(n, batch_size)
    return (batch_size,) * full + ((rest,) if rest else ())


def batch_weights(weights: Any, batch_size: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """For row weights in the epoch's order (host): each minibatch's sum of
    weights (scikit-learn divides its L2 term by it) and its rows over that
    sum (how that term enters the reported loss)."""
    sums = tuple(float(weights[i : i + batch_size].sum()) for i in range(0, len(weights), batch_size))
    rows = batch_rows(len(weights), batch_size)
    return sums, tuple(n / s for n, s in zip(rows, sums))
