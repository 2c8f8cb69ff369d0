"""The full-batch solver: 'lbfgs' through ``scipy.optimize`` over the flat
parameter vector (the stochastic ones are in :mod:`._stochastic`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import quiet_float_errors
from .._programs import keyed_program, network_key, program_key
from ._arrays import host
from ._messages import warn_convergence
from ._objective import loss_for, sent

__all__ = ["full_batch_objective", "lbfgs"]


# -- L-BFGS -----------------------------------------------------------------------------


def lbfgs(est: Any, net: Any, X: Any, Y: Any, weights: Any) -> None:
    """Full-batch L-BFGS-B over the parameters in scikit-learn's order (all
    weights, then all biases), with the L2 term ``0.5 * alpha * sum(W**2) /
    sum(w)`` (``sum(w)``: the rows, or their weights)."""
    import scipy.optimize

    objective = full_batch_objective(est, net, X, Y, weights)
    with quiet_float_errors():  # as in fit: an exp that overflows to its limit is not news
        result = scipy.optimize.minimize(
            objective, objective.start(), method="L-BFGS-B", jac=True,
            options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol},
            callback=objective.report if est.verbose else None,
        )  # fmt: skip
    est.n_iter_ = min(int(result.nit), est.max_iter)
    if result.status != 0:
        reason = result.message.decode() if isinstance(result.message, bytes) else result.message
        warn_convergence(  # scikit-learn's words first: warning filters on them match
            f"lbfgs failed to converge after {est.n_iter_} iteration(s) (status={result.status}):\n{reason}\n\n"
            "Raise max_iter or max_fun, or scale the data."
        )
    net._commit(objective.params(result.x))
    est.loss_ = np.float64(result.fun)  # scikit-learn's type: SciPy's value of its float64 objective


def full_batch_objective(est: Any, net: Any, X: Any, Y: Any, weights: Any) -> _Objective:
    """scikit-learn's full-batch objective on ``(X, Y)``, with row weights or not."""
    rows = None if weights is None else net.backend.asarray(weights, net.dtype)
    loss = loss_for(est.out_activation_, rows, est.n_outputs_)
    total = float(X.shape[0] if weights is None else np.sum(weights))
    per_output = est.n_outputs_ if est.out_activation_ == "identity" else 1
    return _Objective(net, X, Y, loss, float(est.alpha) / total, 1.0 / per_output)


class _Objective:
    """The loss and its gradient as scipy wants them: float64 host vectors in,
    a float and a float64 host vector out, one explicit transfer each way.
    On JAX the evaluation between them is one program, kept across fits (its
    key: the network, the loss and the layout; the rows, their weights and
    the L2 rate are its inputs): op by op, each Python number (the L2 rate,
    a loss's constants, the slices of the flat vector) was an implicit
    transfer, which ``jax.transfer_guard`` refuses.

    ``scale`` multiplies the loss only: scikit-learn hands L-BFGS the squared
    error averaged over the outputs but its gradient summed over them, and
    the line search, so the run, follows that pair."""

    def __init__(self, net: Any, X: Any, Y: Any, loss: Any, rate: float, scale: float = 1.0) -> None:
        self.net, self.X, self.Y, self.loss = net, X, Y, loss
        self.shapes = [tuple(p.shape) for p in net._params()]
        self.order = list(range(0, len(self.shapes), 2)) + list(range(1, len(self.shapes), 2))
        self.iteration, self.value = 0, float("nan")
        like = net._params()[0]
        self.inputs = (getattr(loss, "weights", None), sent(rate, like), sent(scale, like))  # sent once per fit
        layout = (tuple(self.shapes), tuple(self.order))
        # the functions stay referenced here: keyed_program holds them weakly
        self._unflat_fn, self._objective_fn = self._unflatten, self._flat_objective
        self._unflat = keyed_program(net.backend, ("sklearn_unflatten", *layout), self._unflat_fn)
        key = ("sklearn_lbfgs", *network_key(net), *program_key(loss), *layout)
        self._evaluate = keyed_program(net.backend, key, self._objective_fn)

    def start(self) -> np.ndarray:
        params = [host(p) for p in self.net._params()]
        return np.concatenate([params[i].ravel() for i in self.order]).astype(np.float64)

    def params(self, theta: np.ndarray) -> list[Any]:
        """The parameter list (W0, b0, W1, ...) on the device from scipy's vector."""
        return self._unflat(self.net.backend.asarray(theta, self.net.dtype))

    def _unflatten(self, flat: Any) -> list[Any]:
        xp = self.net.backend.xp
        out, start = [None] * len(self.shapes), 0
        for i in self.order:
            size = int(np.prod(self.shapes[i]))
            out[i] = xp.reshape(flat[start : start + size], self.shapes[i])
            start += size
        return out

    def _flat_objective(self, flat: Any, X: Any, Y: Any, weights: Any, rate: Any, scale: Any) -> Any:
        """The objective and its gradient at ``flat`` as one device vector
        (the loss rebuilt on ``weights``: a program traced for one fit's
        weights serves the next)."""
        xp = self.net.backend.xp
        params = self._unflatten(flat)
        loss = self.loss if weights is None else type(self.loss)(weights)
        value, grads, _ = self.net._loss_and_grads(params, X, Y, loss)
        squares = sum(xp.sum(w * w) for w in params[0::2])
        grads = [g + rate * p if i % 2 == 0 else g for i, (p, g) in enumerate(zip(params, grads))]
        return xp.concat([xp.reshape(value * scale + 0.5 * rate * squares, (1,))]
                         + [xp.reshape(grads[i], (-1,)) for i in self.order])  # fmt: skip

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        flat = self._evaluate(self.net.backend.asarray(theta, self.net.dtype), self.X, self.Y, *self.inputs)
        out = host(flat).astype(np.float64)
        self.value = float(out[0])
        return self.value, out[1:]

    def report(self, *args: Any) -> None:
        self.iteration += 1
        print(f"Iteration {self.iteration}, loss = {self.value:.8f}")
