"""Optimizers as pure updates: ``step(params, grads, state) -> (params, state)``.

An optimizer object holds only its settings. Its state (velocities, moment
estimates, the step count) is a plain dict passed in and returned, and the
parameters it returns are new arrays: nothing is written in place. The network
commits the result in one place, so the same code runs on immutable arrays
(JAX), and a step that produced NaN can simply be dropped.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

from .registry import register, registry_for
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

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.config() == self.config()


#: The registry of optimizers: name -> class (see :func:`xpnet.register`).
OPTIMIZERS = registry_for("optimizer", Optimizer)


@register
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


@register
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


def _sqrt(a: Any) -> Any:
    return a**0.5


def _zeros_like(params: Params) -> Params:
    if not params:
        return []
    xp = array_namespace(*params)
    return [xp.zeros_like(p) for p in params]


#: Names that stand for a registered optimizer with other defaults.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {"momentum": ("sgd", {"momentum": 0.9})}


def get_optimizer(optimizer: str | dict | Optimizer, lr: float = 0.01) -> Optimizer:
    """An optimizer from a name (built with ``lr=lr``), a ``{"name",
    "config"}`` spec, a registered class, or an object (kept as is)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer(lr=lr)
    if isinstance(optimizer, dict):
        return OPTIMIZERS.build(optimizer)
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be a name or an optimizer object, got {type(optimizer).__name__}")
    name, preset = PRESETS.get(optimizer.strip().lower(), (optimizer, {}))
    return OPTIMIZERS.lookup(name)(lr=lr, **preset)
