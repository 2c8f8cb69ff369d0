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
one place the term is applied in stochastic training, and the term's share
of the reported loss reaches ``fit``'s History through
:meth:`BatchL2.epoch_penalty`.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from array_api_compat import array_namespace

from .._kernels import Kernel, update
from .._programs import one_program, program_spec
from .._xp import over_count
from ..losses import Loss, declared_fusion, for_labels, get_loss, per_sample
from ..metrics import Metric
from ..optimizers import SGD, Adam, Optimizer, _per_parameter, _sgd_kernel, _zeros_like
from ..registry import component_spec

__all__ = [
    "BatchL2", "EpochPlan", "EpochShare", "PaperAdam", "VelocitySGD", "batch_rows", "batch_weights", "loss_for",
    "score_for", "sent",
]  # fmt: skip


class _SklearnLoss(Loss):
    """A loss summed over outputs and averaged over rows, with optional row
    weights bound to it (full-batch L-BFGS, where the rows never change)."""

    def __init__(self, weights: Any = None) -> None:
        self.weights = weights

    def _rows(self, xp: Any, t: Any, y: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _mean(self, xp: Any, rows: Any) -> Any:
        if self.weights is None:
            return over_count(xp, xp.sum(rows), rows.shape[0])
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


class ValidationScore(Metric):
    """Early stopping's score on the validation rows, as scikit-learn's
    ``score`` gives it (weighted by the rows' weights when there are some):
    the accuracy of the most probable class (softmax), of every label at a 0.5
    threshold (logistic), or R² averaged over the outputs (for Poisson, of
    ``exp`` of the network's log-means). A metric for ``fit(metrics=...)``,
    which computes it on the device with the losses."""

    name = __name__ = "validation_score"
    greater_is_better = True
    #: Namespace operations only: on JAX ``fit`` compiles it into its epoch report, where op by op each
    #: Python number was an implicit transfer (refused by ``jax.transfer_guard``), the loss's too.
    compilable = True

    def __init__(self, out_activation: str, weights: Any = None, one_class: bool = False) -> None:
        # The weights (a device array) reach fit's compiled report as an argument, not a constant: one
        # program serves every fit's weights of the same shape (see _programs.held_arrays).
        self.out_activation, self.weights, self.one_class = out_activation, weights, one_class

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        xp = array_namespace(y_true, y_pred)
        if self.one_class:  # predict gives the one class whatever the output: every row is right
            return self._mean(xp, xp.ones_like(y_pred[:, 0]))
        if self.out_activation == "softmax":
            return self._mean(xp, xp.astype(xp.argmax(y_pred, axis=1) == xp.argmax(y_true, axis=1), y_pred.dtype))
        if self.out_activation == "logistic":
            return self._mean(xp, xp.astype(xp.all((y_pred > 0.5) == (y_true > 0.5), axis=1), y_pred.dtype))
        return self._r2(xp, y_true, xp.exp(y_pred) if self.out_activation == "exp" else y_pred)

    def _mean(self, xp: Any, per_row: Any) -> Any:
        if self.weights is None:  # the sum over the count, as scikit-learn: JAX's mean is an ulp off (34/38)
            return over_count(xp, xp.sum(per_row, axis=0), per_row.shape[0])
        w = self.weights if per_row.ndim == 1 else xp.reshape(self.weights, (-1, 1))
        return xp.sum(w * per_row, axis=0) / xp.sum(self.weights)

    def _r2(self, xp: Any, y_true: Any, y_pred: Any) -> Any:
        """R² per output, averaged; a constant target scores 1 when predicted
        exactly, else 0 (scikit-learn's ``r2_score``)."""
        residual = self._mean(xp, (y_true - y_pred) ** 2)
        total = self._mean(xp, (y_true - self._mean(xp, y_true)) ** 2)
        constant = total == 0  # arrays on both sides of each where: strict namespaces refuse two scalars
        score = 1.0 - residual / xp.where(constant, xp.ones_like(total), total)
        exact = xp.astype(residual == 0, score.dtype)
        per_output = xp.where(constant, exact, score)
        return xp.sum(per_output) / per_output.shape[0]


def score_for(out_activation: str, weights: Any = None, one_class: bool = False) -> ValidationScore:
    """The validation score of early stopping: accuracy or R² (1 for a
    classifier of one class, as its ``score`` is)."""
    return ValidationScore(out_activation, weights, one_class)


# -- the update rules ------------------------------------------------------------------


class PaperAdam(Adam):
    """Adam in the "more efficient" order of Kingma & Ba's Algorithm 1, which
    scikit-learn uses: the bias corrections go into the rate, ``lr_t = lr *
    sqrt(1 - beta2**t) / (1 - beta1**t)``, and ``eps`` is added to ``sqrt(v)``
    itself (torch's Adam, xpnet's, adds it to the corrected ``sqrt(v_hat)``).
    The two differ where ``sqrt(v)`` is near ``eps``, which small minibatches
    amplify; this one follows scikit-learn's run. One elementwise kernel per
    parameter (fused on CuPy, compiled steps on JAX and CUDA torch), the L2
    term added to the gradient of the weights as Adam's ``weight_decay``."""

    name = "paper_adam"
    compilable = True
    program_config = Adam.program_config

    def _kernel_step(self, params, grads, state, decay, weight_decay, l2=False):
        """``l2``: the kernels add the L2 term even at a ``weight_decay`` of 0 (:func:`_l2_step`)."""
        kernels = _per_parameter(_paper_adam_kernel, params, decay, 1.0 if l2 else weight_decay)
        b1, b2 = self.beta1, self.beta2
        t = state["t"] + 1
        rate = self.lr * (1.0 - b2**t) ** 0.5 / (1.0 - b1**t)
        scalars = (b1, 1.0 - b1, b2, 1.0 - b2, rate, self.eps, weight_decay)
        new, m, v = update(kernels, [params, grads, state["m"], state["v"]], scalars)
        return new, {"t": t, "m": m, "v": v}


@functools.cache
def _paper_adam_kernel(decay: bool) -> Kernel:
    def adam(xp, p, g, m, v, b1, c1, b2, c2, rate, eps, wd):
        if decay:
            g = g + wd * p
        m = b1 * m + c1 * g
        v = b2 * v + c2 * (g * g)
        return p - rate * m / (xp.sqrt(v) + eps), m, v

    return Kernel(adam, 4, 7, "paper_adam" + "_decay" * decay)


class VelocitySGD(SGD):
    """SGD with momentum in scikit-learn's form: the velocity holds the step
    itself, ``v = momentum * v - lr * g``, and ``p = p + v`` (Nesterov: ``p =
    p + momentum * v - lr * g`` with the new ``v``). xpnet's :class:`SGD`
    (torch's form, ``v = momentum * v + g``, ``p = p - lr * v``) scales the
    whole velocity by the current rate, so the two part as soon as the rate
    changes ('invscaling', 'adaptive'). The L2 term enters the gradient as
    ``weight_decay`` (``g + wd * W``), as in :class:`SGD`."""

    name = "sklearn_sgd"
    compilable = True
    program_config = SGD.program_config

    @staticmethod
    def _checked_momentum(value: Any) -> float:
        """In [0, 1], scikit-learn's bound for its ``momentum``."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise ValueError(f"momentum must be a number in [0, 1], got {value!r}")
        return float(value)

    #: Do the kernels add the L2 term even at a ``weight_decay`` of 0 (:func:`_l2_step`)?
    l2 = False

    def step(self, params, grads, state, decay=None):
        on = 1.0 if self.l2 else self.weight_decay  # what picks the kernels: with the term or without
        scalars = (self.lr, self.momentum, self.weight_decay)
        if self.momentum == 0.0:  # p - lr * g: SGD's kernel, the same either way
            (new,) = update(_per_parameter(_sgd_kernel, params, decay, on, False, False), [params, grads], scalars)
            return new, state
        kernels = _per_parameter(_velocity_kernel, params, decay, on, self.nesterov)
        new, velocity = update(kernels, [params, grads, state["velocity"]], scalars)
        return new, {"velocity": velocity}


@functools.cache
def _velocity_kernel(decay: bool, nesterov: bool) -> Kernel:
    def sgd(xp, p, g, v, lr, mu, wd):
        if decay:
            g = g + wd * p
        v = mu * v - lr * g
        return p + (mu * v - lr * g if nesterov else v), v

    return Kernel(sgd, 3, 3, "sklearn_sgd" + "_decay" * decay + "_nesterov" * nesterov)


# -- the L2 term -----------------------------------------------------------------


class EpochPlan:
    """One epoch's minibatches as the L2 term sees them: ``rows`` (what it
    divides by: each minibatch's rows, or with row weights the sum of its
    weights) and ``shares`` (rows over ``rows``: how each minibatch's term
    enters the reported loss). Shared by an optimizer and its copies (a
    schedule's rate makes one), so that with row weights the shuffle can
    set each epoch's figures before the epoch's first step."""

    def __init__(self, rows: tuple[float, ...], shares: tuple[float, ...] | None = None) -> None:
        self.weighted = shares is not None  # fixed for a run: a compiled step keeps its kernels
        self.set(rows, shares)

    def set(self, rows: tuple[float, ...], shares: tuple[float, ...] | None = None) -> None:
        self.rows = tuple(float(n) for n in rows)
        self.shares = (1.0,) * len(self.rows) if shares is None else tuple(float(s) for s in shares)


class BatchL2(Optimizer):
    """``inner``'s update (SGD, or Adam such as :class:`PaperAdam`) with
    ``alpha * W / n_b`` added to the weights' gradients, ``n_b`` from the
    epoch's :class:`EpochPlan` for the step's minibatch. The state is
    ``inner``'s, the index of the next minibatch in the epoch (a host int,
    back to 0 after the last) and ``sq``: per parameter, the sum over the
    epoch's steps so far of ``W**2 * share`` before each update, elementwise
    (zero for the biases), whose total :meth:`epoch_penalty` turns into the
    L2 term that scikit-learn's reported loss includes. Every number that
    changes from step to step is a scalar of an elementwise kernel, so the
    step can be compiled (``compilable``)."""

    name = "sklearn_batch_l2"
    compilable = True

    def __init__(self, inner: Optimizer, alpha: float, plan: EpochPlan, n_rows: int) -> None:
        self.inner, self.alpha, self.plan, self.n_rows = inner, float(alpha), plan, int(n_rows)

    @property
    def lr(self) -> float:
        return self.inner.lr

    @lr.setter
    def lr(self, value: float) -> None:  # on a copy (a schedule's): its own inner copy
        self.inner = copy.copy(self.inner)
        self.inner.lr = value

    @property
    def nonnegative(self) -> tuple[str, ...]:
        return self.inner.nonnegative

    def init_state(self, params: list[Any]) -> dict[str, Any]:
        sq = _zeros_like(params)  # kept with alpha=0 too: the keys follow inner's; one program on JAX (no transfer)
        return {**self.inner.init_state(params), "batch": 0, "sq": sq}

    def step(self, params, grads, state, decay=None):
        k = state["batch"]
        inner = {key: v for key, v in state.items() if key not in ("batch", "sq")}
        out = {"batch": (k + 1) % len(self.plan.rows), "sq": state["sq"]}
        if self.alpha:
            kernels = [_squares_kernel(f, self.plan.weighted) for f in _flags(decay, params)]
            (out["sq"],) = update(kernels, [state["sq"], list(params)], (0.0 if k == 0 else 1.0, self.plan.shares[k]))
        rows = self.plan.rows[k]  # 0 for a minibatch of zero weights: no loss, no L2 term
        params, inner = _l2_step(self.inner, params, grads, inner, decay, self.alpha / rows if rows else 0.0,
                                 self.alpha != 0.0)
        return params, {**inner, **out}

    def epoch_penalty(self, state: dict[str, Any]) -> Any:
        """``0.5 * alpha * sum_k share_k * sum(W_k**2) / n``: the epoch's L2 term."""
        if not self.alpha:
            return None
        like, value = state["sq"][0], 0.5 * self.alpha / self.n_rows
        key = (value, str(like.dtype), str(getattr(like, "device", None)))
        if getattr(self, "_scale", (None, None))[0] != key:  # sent once per fit, not once per epoch
            self._scale = (key, sent(value, like))
        return one_program(_scaled_sum, like)(state["sq"], self._scale[1])

    def __getstate__(self) -> dict[str, Any]:
        """Without the cached scale: a device array, whose pickling is an
        implicit read (refused by ``jax.transfer_guard`` on a GPU); it is sent again when needed."""
        return {k: v for k, v in self.__dict__.items() if k != "_scale"}

    def config(self) -> dict[str, Any]:
        return {
            "inner": component_spec(self.inner), "alpha": self.alpha, "rows": list(self.plan.rows),
            "shares": list(self.plan.shares), "n_rows": self.n_rows,
        }  # fmt: skip

    def program_config(self) -> dict[str, Any]:
        """The kernels only: ``alpha``, the epoch's row counts and shares are
        step scalars, so a search over ``alpha`` or the folds of a
        cross-validation (whose plans differ) compile no new step."""
        return {"inner": program_spec(self.inner), "alpha": self.alpha != 0.0, "weighted": self.plan.weighted}

    def __repr__(self) -> str:
        return f"BatchL2({self.inner!r}, alpha={self.alpha!r}, batches={len(self.plan.rows)})"


def _scaled_sum(arrays: list[Any], scale: Any) -> Any:
    """``scale * sum(sum(a) for a in arrays)``, one program on JAX (an
    epoch's report otherwise dispatches each sum alone)."""
    xp = array_namespace(*arrays)
    return sum(xp.sum(a) for a in arrays) * scale


def sent(value: float, like: Any) -> Any:
    """``value`` for a program that takes ``like``'s arrays: on JAX a 0-d
    array sent explicitly to ``like``'s device (a Python number given to a
    program is an implicit transfer, which ``jax.transfer_guard`` refuses);
    elsewhere the number itself."""
    from array_api_compat import is_jax_array

    if not is_jax_array(like):
        return value
    import jax
    import numpy as np

    return jax.device_put(np.asarray(value, dtype=like.dtype), like.sharding)


def _l2_step(inner: Optimizer, params, grads, state, decay, rate: float, l2: bool):
    """``inner``'s step with the L2 rate as its weight decay on the weights
    (added to the gradient: ``g + rate * W``, scikit-learn's L2 gradient).
    ``l2`` (``alpha`` is not 0) keeps the kernels with the term at every
    step, ``rate`` 0 for a minibatch of zero weights: a compiled step (JAX's
    program, NumPy's recording, a CUDA graph) keeps the kernels it was traced
    with, and one traced at such a minibatch left the term out of all."""
    if isinstance(inner, Adam):
        return inner._kernel_step(params, grads, state, decay, rate, l2)
    if inner.weight_decay != rate or inner.l2 != l2:
        inner = copy.copy(inner)
        inner.weight_decay, inner.l2 = rate, l2
    return inner.step(params, grads, state, decay=decay)


def _flags(decay: Any, params: list[Any]) -> list[bool]:
    return [True] * len(params) if decay is None else [bool(f) for f in decay]


@functools.cache
def _squares_kernel(weight: bool, weighted: bool) -> Kernel:
    """``sq = keep * sq + share * W**2`` (``keep``: 0 at an epoch's first
    step, else 1; ``share`` 1 without row weights); biases stay 0."""

    def squares(xp, s, p, keep, share):
        if not weight:
            return (keep * s,)
        return (keep * s + share * (p * p),) if weighted else (keep * s + p * p,)

    return Kernel(squares, 2, 2, "sklearn_squares" + "_weight" * weight + "_shared" * weighted)


class EpochShare(Loss):
    """``loss`` of a minibatch, recorded as its share of the epoch: the mean
    over its ``n_b`` rows times ``n_b * n_batches / (n * per_output)``. The
    mean over an epoch's minibatches of these values (what ``fit`` records)
    is then the average over the epoch's rows, each row counted once, as
    scikit-learn reports it (divided by the outputs, ``per_output``, for its
    squared error). Only the recorded value changes; the deltas are those of
    ``loss``, the minibatch mean."""

    reduction = "mean"

    def __init__(self, loss: Loss, scale: float) -> None:
        self.loss, self.scale = loss, float(scale)
        self.name, self.fused_with, self.class_targets = loss.name, declared_fusion(loss), loss.class_targets
        self.wraps = getattr(loss, "wraps", type(loss))  # whose fusion it vouches for

    def _value(self, xp, t, y):
        return self.loss._value(xp, t, y) * (y.shape[0] * self.scale)

    def _per_sample(self, xp, t, y):
        return per_sample(self.loss, xp, t, y) * (y.shape[0] * self.scale)

    def _gradient(self, xp, t, y):
        return self.loss._gradient(xp, t, y)

    def _fused_delta(self, xp, t, y):
        return self.loss._fused_delta(xp, t, y)

    def _for_labels(self) -> Loss:
        return EpochShare(for_labels(self.loss), self.scale)

    def config(self) -> dict[str, Any]:
        return {"loss": component_spec(self.loss), "scale": self.scale}


def batch_rows(n: int, batch_size: int) -> tuple[int, ...]:
    """The row counts of one epoch's minibatches, as ``fit`` cuts them."""
    full, rest = divmod(n, batch_size)
    return (batch_size,) * full + ((rest,) if rest else ())


def batch_weights(weights: Any, batch_size: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """For row weights in the epoch's order (host): each minibatch's sum of
    weights (scikit-learn divides its L2 term by it) and its rows over that
    sum (how that term enters the reported loss). A minibatch whose weights
    are all 0 has neither loss nor L2 term (share 0; its gradient is 0), where
    scikit-learn's weighted average fails with a ZeroDivisionError."""
    sums = tuple(float(weights[i : i + batch_size].sum()) for i in range(0, len(weights), batch_size))
    rows = batch_rows(len(weights), batch_size)
    return sums, tuple(n / s if s > 0 else 0.0 for n, s in zip(rows, sums))
