"""Normalisation layers with PyTorch's semantics: :class:`LayerNorm`
(``torch.nn.LayerNorm(n)``) and :class:`BatchNorm` (``torch.nn.BatchNorm1d(n)``).

Both compute ``Y = (X - mean) / sqrt(var + eps) * weight + bias`` with the
biased variance, and share one backward: with ``xhat`` the normalised input
and ``g = dY * weight``, ``dX = (g - mean(g) - xhat * mean(g * xhat)) /
sqrt(var + eps)``, the means taken over what was normalised. LayerNorm
normalises each row over its features; BatchNorm each feature over the
minibatch while training (updating its running statistics, which are
buffers: committed by the network with the parameters, saved in model files
and checkpoints) and with those running statistics otherwise. Weight decay
skips both layers' parameters (``decayed()`` is empty), as is usual.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import numpy as np

from ..registry import register
from ..validation import checked_param, positive_int
from .base import Layer

__all__ = ["BatchNorm", "LayerNorm"]


def _positive_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a positive number, got {value!r}")
    if not (math.isfinite(float(value)) and value > 0):
        raise ValueError(f"{what} must be a positive finite number, got {value!r}")
    return float(value)


def _eps(value: Any) -> float:
    return _positive_float(value, "eps")


def _momentum(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"BatchNorm momentum must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"BatchNorm momentum must be a number in [0, 1], got {value!r}")
    return float(value)


class _BatchCache(NamedTuple):
    """BatchNorm's forward for backward: ``d`` (``X - mean``; ``X`` when
    ``shift``, the running mean, is given), ``inv`` (``1 / sqrt(var + eps)``),
    and in training the minibatch's ``rows`` and the step's ``sync``."""

    d: Any
    inv: Any
    shift: Any = None
    rows: int = 0
    sync: Any = None


class _Normalisation(Layer):
    """``n`` features with an elementwise affine ``weight`` (ones) and ``bias`` (zeros)."""

    _setting_checks = {"n": None, "eps": _eps}

    def __init__(self, n: int, eps: float) -> None:
        super().__init__()
        self.n = positive_int(n, "n")
        self.eps = _eps(eps)

    def input_width(self) -> int:
        return self.n

    def output_width(self, n_in: int | None) -> int:
        return self.n

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.n,), "bias": (self.n,)}

    def decayed(self) -> tuple[str, ...]:
        return ()  # weight decay skips normalisation parameters

    def init_parameters(self, rng: np.random.Generator, dtype: str) -> dict[str, np.ndarray]:
        return {"weight": np.ones(self.n, dtype=dtype), "bias": np.zeros(self.n, dtype=dtype)}  # draws nothing

    # -- public state: checked, then stored where the network reads it (as Dense.weights) --

    @property
    def weight(self) -> Any:
        """The ``(n,)`` scale, a device array (``None`` until a network holds
        the layer); assigning checks shape and values."""
        return self._params[0] if self._params else None

    @weight.setter
    def weight(self, value: Any) -> None:
        self._put(self._params, 0, value, "weight")

    @property
    def bias(self) -> Any:
        """The ``(n,)`` shift, a device array (``None`` until a network holds
        the layer); assigning checks shape and values."""
        return self._params[1] if self._params else None

    @bias.setter
    def bias(self, value: Any) -> None:
        self._put(self._params, 1, value, "bias")

    def _put(self, arrays: list[Any], i: int, value: Any, name: str) -> None:
        """``arrays[i] = value``, checked and converted to the network's
        backend and dtype: the next predict, fit (or the epoch after a
        callback's edit), save and checkpoint read it from there."""
        self._require_built()
        arrays[i] = checked_param(self._backend, value, self._dtype, (self.n,), f"{type(self).__name__}.{name}",
                                  nonnegative=name in self.nonnegative_buffers())  # fmt: skip

    def _check_input(self, X: Any) -> None:
        if X.ndim != 2 or X.shape[1] != self.n:
            raise ValueError(f"{self!r} takes (n_samples, {self.n}) inputs, got shape {tuple(X.shape)}")


def _grads(xp: Any, xhat: Any, dY: Any) -> list[Any]:
    return [xp.sum(dY * xhat, axis=0), xp.sum(dY, axis=0)]


@register
class LayerNorm(_Normalisation):
    """Normalises each row over its ``n`` features (``torch.nn.LayerNorm(n)``)."""

    name = "LayerNorm"

    def __init__(self, n: int, eps: float = 1e-5) -> None:
        super().__init__(n, eps)

    def config(self) -> dict[str, Any]:
        return {"n": self.n, "eps": self.eps}

    def forward(self, xp: Any, params: Any, buffers: Any, X: Any, ctx: Any) -> tuple[Any, Any, Any]:
        self._check_input(X)
        d = X - xp.mean(X, axis=1, keepdims=True)
        inv = _inverse_std(xp, xp.mean(d * d, axis=1, keepdims=True), self.eps)
        xhat = d * inv
        return xhat * params[0] + params[1], (xhat, inv), buffers

    def backward(self, xp: Any, params: Any, cache: Any, dY: Any, need_dx: bool) -> tuple[Any, list[Any]]:
        xhat, inv = cache
        if not need_dx:
            return None, _grads(xp, xhat, dY)
        g = dY * params[0]
        dX = inv * (g - xp.mean(g, axis=1, keepdims=True) - xhat * xp.mean(g * xhat, axis=1, keepdims=True))
        return dX, _grads(xp, xhat, dY)

    def __repr__(self) -> str:
        return f"LayerNorm({self.n}, eps={self.eps!r})"


@register
class BatchNorm(_Normalisation):
    """Normalises each of ``n`` features over the minibatch
    (``torch.nn.BatchNorm1d(n)``).

    Training (``fit``): with the minibatch's mean and biased variance; then
    ``running = (1 - momentum) * running + momentum * batch``, with the
    unbiased variance for ``running_var``. Otherwise (``predict``,
    ``evaluate``, validation): with ``running_mean`` and ``running_var``
    (buffers; they start at 0 and 1). In a distributed fit the statistics are
    those of the whole global minibatch, summed over the processes
    (``Context.sync``), so N processes train as one does."""

    name = "BatchNorm"
    _setting_checks = {**_Normalisation._setting_checks, "momentum": _momentum}

    def __init__(self, n: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__(n, eps)
        self.momentum = _momentum(momentum)

    def config(self) -> dict[str, Any]:
        return {"n": self.n, "momentum": self.momentum, "eps": self.eps}

    def buffer_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"running_mean": (self.n,), "running_var": (self.n,)}

    def nonnegative_buffers(self) -> tuple[str, ...]:
        return ("running_var",)

    def init_buffers(self, dtype: str) -> dict[str, np.ndarray]:
        return {"running_mean": np.zeros(self.n, dtype=dtype), "running_var": np.ones(self.n, dtype=dtype)}

    @property
    def running_mean(self) -> Any:
        """The ``(n,)`` running mean (a buffer, a device array; ``None`` until
        a network holds the layer); assigning checks shape and values."""
        return self._buffers[0] if self._buffers else None

    @running_mean.setter
    def running_mean(self, value: Any) -> None:
        self._put(self._buffers, 0, value, "running_mean")

    @property
    def running_var(self) -> Any:
        """The ``(n,)`` running (unbiased) variance; assigning checks shape and
        values, and refuses a negative one (zero is allowed: ``eps`` is added)."""
        return self._buffers[1] if self._buffers else None

    @running_var.setter
    def running_var(self, value: Any) -> None:
        self._put(self._buffers, 1, value, "running_var")

    def forward(self, xp: Any, params: Any, buffers: Any, X: Any, ctx: Any) -> tuple[Any, Any, Any]:
        # Per-feature factors fold into vectors: Y = d * (inv * weight) + bias,
        # with d = X - mean kept for backward (xhat = d * inv is never formed).
        self._check_input(X)
        if not ctx.training:
            inv = 1.0 / xp.sqrt(buffers[1] + self.eps)
            scale = inv * params[0]
            return X * scale + (params[1] - buffers[0] * scale), _BatchCache(X, inv, buffers[0]), buffers
        sync = ctx.sync
        rows = X.shape[0] if sync is None else sync.rows

        def total(a: Any) -> Any:  # a sum over the minibatch: this process's rows, or every process's
            s = xp.sum(a, axis=0)
            return s if sync is None else sync.sum(xp, [s])[0]

        if rows < 2:
            raise ValueError(
                f"BatchNorm needs at least 2 rows in each training minibatch to estimate a variance, got {rows} "
                "(in fit, pick a batch_size that leaves no last minibatch of one row; Network.gradients and "
                "gradcheck normalise with the batch's statistics too: give them 2 rows or more)"
            )
        mean = total(X) / rows
        d = X - mean
        squares = total(d * d)
        inv = _inverse_std(xp, squares / rows, self.eps)
        m = self.momentum
        running = [m * mean + (1.0 - m) * buffers[0], m * (squares / (rows - 1)) + (1.0 - m) * buffers[1]]
        return d * (inv * params[0]) + params[1], _BatchCache(d, inv, None, rows, sync), running

    def backward(self, xp: Any, params: Any, cache: Any, dY: Any, need_dx: bool) -> tuple[Any, list[Any]]:
        # dX = (dY - mean(dY) - xhat * mean(dY * xhat)) * inv * weight: the
        # means are db / rows and dw / rows, so no other reduction is needed.
        d, inv, shift, rows, sync = cache
        if shift is not None:  # inference statistics: d is X, minus the running mean
            d = d - shift
        dw, db = xp.sum(dY * d, axis=0) * inv, xp.sum(dY, axis=0)
        if not need_dx:
            return None, [dw, db]
        if not rows:
            return dY * (inv * params[0]), [dw, db]
        if sync is None:
            m1, m2 = db / rows, dw / rows
        else:
            # Distributed: dY is this process's share of the loss gradient
            # divided by its weight w (the loss is sum_p w_p L_p): sum w * dY
            # terms over all rows, then divide by rows * w to stay in this scale.
            w = sync.weight
            s1, s2 = sync.sum(xp, [db * w, dw * w])
            scale = 1.0 / (rows * w) if w else 0.0
            m1, m2 = s1 * scale, s2 * scale
        return (dY - m1 - d * (inv * m2)) * (inv * params[0]), [dw, db]

    def __repr__(self) -> str:
        return f"BatchNorm({self.n}, momentum={self.momentum!r}, eps={self.eps!r})"


def _inverse_std(xp: Any, var: Any, eps: float) -> Any:
    """``1 / sqrt(var + eps)``, NaN where the variance overflowed: ``d * 0``
    would otherwise normalise huge inputs to zeros without a word (torch
    gives NaN too, which predict's overflow check and fit's NaN guard see)."""
    return 1.0 / xp.sqrt(var + eps) + 0.0 * var  # 0 * inf is NaN, 0 elsewhere: two small ops, no branch
