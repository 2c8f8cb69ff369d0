"""Optimizers as pure updates: ``step(params, grads, state) -> (params, state)``.

An optimizer object holds only its settings. Its state (velocities, moment
estimates, the step count) is a plain dict passed in and returned, and the
parameters it returns are new arrays: nothing is written in place. The network
commits the result in one place, so the same code runs on immutable arrays
(JAX), and a step that produced NaN can simply be dropped.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from .validation import positive

__all__ = ["OPTIMIZERS", "SGD", "Adam", "Optimizer", "get_optimizer"]

Params = list[Any]
State = dict[str, Any]


class Optimizer:
    """Base class of the update rules."""

    name: str = ""

    def init_state(self, params: Params) -> State:
        return {}

    def step(self, params: Params, grads: Params, state: State) -> tuple[Params, State]:  # pragma: no cover
        raise NotImplementedError

    def config(self) -> dict[str, float]:
        """The settings, as plain numbers (saved in checkpoints)."""
        return {}

    def check_state(self, state: State, params: Params) -> None:
        """Refuse a state (from a checkpoint) that does not fit ``params``:
        its keys, each array's shape and dtype, finite values, and scalars
        of :meth:`init_state`'s type (ints in ``0..2**53``). A ``ValueError``
        names the entry; a wrong state would corrupt the resumed run silently."""
        expected = self.init_state(params)
        if not isinstance(state, dict) or set(state) != set(expected):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"optimizer state holds {got}, {type(self).__name__} needs {sorted(expected)}")
        for key, want in expected.items():
            got = state[key]
            if isinstance(want, list):
                _check_arrays(key, got, want)
            elif isinstance(want, int):
                if isinstance(got, bool) or not isinstance(got, int) or not 0 <= got <= 2**53:
                    raise ValueError(f"optimizer state {key} must be an int in 0..2**53, got {got!r}")
            elif isinstance(got, bool) or not isinstance(got, int | float) or not math.isfinite(got):
                raise ValueError(f"optimizer state {key} must be a finite number, got {got!r}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.config() == self.config()


class SGD(Optimizer):
    """Gradient descent, with heavy-ball momentum when ``momentum > 0``.

    PyTorch's form: ``v = momentum * v + g``, ``p = p - lr * v`` (so a run
    can be compared with ``torch.optim.SGD`` step by step)."""

    name = "sgd"

    def __init__(self, lr: float = 0.01, momentum: float = 0.0) -> None:
        self.lr = positive(lr, "lr")
        if isinstance(momentum, bool) or not isinstance(momentum, int | float) or not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be a number in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)

    def init_state(self, params: Params) -> State:
        if self.momentum == 0.0:
            return {}
        return {"velocity": _zeros_like(params)}

    def step(self, params: Params, grads: Params, state: State) -> tuple[Params, State]:
        lr = self.lr
        if self.momentum == 0.0:
            return [p - lr * g for p, g in zip(params, grads)], state
        mu = self.momentum
        velocity = [mu * v + g for v, g in zip(state["velocity"], grads)]
        return [p - lr * v for p, v in zip(params, velocity)], {"velocity": velocity}

    def config(self) -> dict[str, float]:
        return {"lr": self.lr, "momentum": self.momentum}


class Adam(Optimizer):
    """Adam (Kingma & Ba), with bias-corrected moment estimates.

    The step count lives on the host as a Python int, so the bias corrections
    are host scalars and need no device round trip."""

    name = "adam"

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.lr = positive(lr, "lr")
        for what, beta in (("beta1", beta1), ("beta2", beta2)):
            if isinstance(beta, bool) or not isinstance(beta, int | float) or not 0.0 <= beta < 1.0:
                raise ValueError(f"{what} must be a number in [0, 1), got {beta!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = positive(eps, "eps")

    def init_state(self, params: Params) -> State:
        return {"t": 0, "m": _zeros_like(params), "v": _zeros_like(params)}

    def step(self, params: Params, grads: Params, state: State) -> tuple[Params, State]:
        b1, b2 = self.beta1, self.beta2
        t = state["t"] + 1
        step_size = self.lr / (1.0 - b1**t)
        root_correction = (1.0 - b2**t) ** 0.5
        eps = self.eps
        m = [b1 * m_ + (1.0 - b1) * g for m_, g in zip(state["m"], grads)]
        v = [b2 * v_ + (1.0 - b2) * (g * g) for v_, g in zip(state["v"], grads)]
        new = [p - step_size * m_ / (_sqrt(v_) / root_correction + eps) for p, m_, v_ in zip(params, m, v)]
        return new, {"t": t, "m": m, "v": v}

    def config(self) -> dict[str, float]:
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def check_state(self, state: State, params: Params) -> None:
        """As :meth:`Optimizer.check_state`; the second moments ``v`` must not be negative."""
        super().check_state(state, params)
        for i, v in enumerate(state["v"]):
            if bool(array_namespace(v).any(v < 0)):
                raise ValueError(f"optimizer state v.{i} (Adam's second moments) holds negative values")


def _check_arrays(key: str, got: Any, want: Params) -> None:
    if not isinstance(got, list) or len(got) != len(want):
        n = len(got) if isinstance(got, list) else type(got).__name__
        raise ValueError(f"optimizer state {key} must hold {len(want)} arrays, one per parameter, got {n}")
    for i, (g, w) in enumerate(zip(got, want)):
        if not hasattr(g, "shape") or tuple(g.shape) != tuple(w.shape) or g.dtype != w.dtype:
            what = f"shape {tuple(g.shape)}, dtype {g.dtype}" if hasattr(g, "shape") else type(g).__name__
            raise ValueError(
                f"optimizer state {key}.{i} must have shape {tuple(w.shape)} and dtype {w.dtype} "
                f"(as its parameter), got {what}"
            )
        xp = array_namespace(g)
        if not bool(xp.all(xp.isfinite(g))):
            raise ValueError(f"optimizer state {key}.{i} holds NaN or infinite values")


def _sqrt(a: Any) -> Any:
    return a**0.5


def _zeros_like(params: Params) -> Params:
    if not params:
        return []
    xp = array_namespace(*params)
    return [xp.zeros_like(p) for p in params]


OPTIMIZERS = ("sgd", "momentum", "adam")


def get_optimizer(optimizer: str | Optimizer, lr: float = 0.01) -> Optimizer:
    """An optimizer from a name (``lr`` applies) or an object (kept as is)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be a name or an optimizer object, got {type(optimizer).__name__}")
    key = optimizer.strip().lower()
    if key == "sgd":
        return SGD(lr)
    if key == "momentum":
        return SGD(lr, momentum=0.9)
    if key == "adam":
        return Adam(lr)
    raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZERS)} or an optimizer object")
