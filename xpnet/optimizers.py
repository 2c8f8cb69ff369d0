"""Optimizers as pure updates: ``step(params, grads, state, decay) -> (params, state)``.

An optimizer object holds only its settings. Its state (velocities, moment
estimates, the step count) is a plain dict passed in and returned, and the
parameters it returns are new arrays: nothing is written in place. The network
commits the result in one place, so the same code runs on immutable arrays
(JAX), and a step that produced NaN can simply be dropped.

Every update follows ``torch.optim`` formula for formula (the tests run 20
steps of each against it), weight decay included: ``weight_decay`` is added
to the gradient (``g + wd * p``, "L2") by SGD, Adam and RMSprop, and shrinks
the weights directly (``p * (1 - lr * wd)``) in AdamW. It applies to the
parameters that ``decay`` marks: the network marks weights, not biases or
normalisation parameters, as one would with two torch parameter groups.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from .registry import register, registry_for
from .validation import positive

__all__ = ["OPTIMIZERS", "SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "get_optimizer"]

Params = list[Any]
State = dict[str, Any]
Decay = Sequence[bool] | None


class Optimizer:
    """Base class of the update rules.

    ``step(params, grads, state, decay=None)`` returns new parameters and a
    new state. ``decay`` is a sequence of Python bools, one per parameter,
    true where weight decay applies; ``None`` applies it to every parameter
    (torch's single parameter group). ``init_state`` gives the state of step
    0: a dict whose keys depend only on the settings (checkpoints store its
    lists of arrays by key, and plain numbers such as a step count as they
    are)."""

    name: str = ""
    #: State lists that hold running squares and so can never be negative.
    nonnegative: tuple[str, ...] = ()

    def init_state(self, params: Params) -> State:
        return {}

    def step(  # pragma: no cover - abstract
        self, params: Params, grads: Params, state: State, decay: Decay = None
    ) -> tuple[Params, State]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Every setting, as plain values: ``type(self)(**config)`` rebuilds
        the optimizer, and checkpoints store and compare it."""
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
        for key in self.nonnegative:
            for i, v in enumerate(state[key]):
                if bool(array_namespace(v).any(v < 0)):
                    raise ValueError(f"optimizer state {key}.{i} (running squares) holds negative values")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.config() == self.config()


#: The registry of optimizers: name -> class (see :func:`xpnet.register`).
OPTIMIZERS = registry_for("optimizer", Optimizer)


@register
class SGD(Optimizer):
    """Gradient descent, with heavy-ball momentum when ``momentum > 0`` and
    Nesterov's lookahead with ``nesterov=True``.

    PyTorch's form: ``g = g + weight_decay * p``; ``v = momentum * v + g``;
    ``p = p - lr * v``, or ``p = p - lr * (g + momentum * v)`` with Nesterov
    (so a run can be compared with ``torch.optim.SGD`` step by step)."""

    name = "sgd"

    def __init__(
        self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0
    ) -> None:
        self.lr = positive(lr, "lr")
        self.momentum = _fraction(momentum, "momentum")
        self.nesterov = _flag(nesterov, "nesterov")
        if self.nesterov and self.momentum == 0.0:
            raise ValueError(
                "nesterov=True needs momentum > 0 (Nesterov's lookahead acts on the velocity), got momentum=0.0"
            )
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    def init_state(self, params: Params) -> State:
        if self.momentum == 0.0:
            return {}
        return {"velocity": _zeros_like(params)}

    def step(self, params: Params, grads: Params, state: State, decay: Decay = None) -> tuple[Params, State]:
        grads = _coupled_decay(params, grads, self.weight_decay, decay)
        lr = self.lr
        if self.momentum == 0.0:
            return [p - lr * g for p, g in zip(params, grads)], state
        mu = self.momentum
        velocity = [mu * v + g for v, g in zip(state["velocity"], grads)]
        if self.nesterov:
            new = [p - lr * (g + mu * v) for p, g, v in zip(params, grads, velocity)]
        else:
            new = [p - lr * v for p, v in zip(params, velocity)]
        return new, {"velocity": velocity}

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.weight_decay}


@register
class Adam(Optimizer):
    """Adam (Kingma & Ba), with bias-corrected moment estimates, and L2 weight
    decay added to the gradient as ``torch.optim.Adam`` does (see
    :class:`AdamW` for the decoupled kind).

    The step count lives on the host as a Python int, so the bias corrections
    are host scalars and need no device round trip."""

    nonnegative = ("v",)

    name = "adam"

    def __init__(
        self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0
    ) -> None:
        self.lr = positive(lr, "lr")
        self.beta1, self.beta2 = _fraction(beta1, "beta1"), _fraction(beta2, "beta2")
        self.eps = positive(eps, "eps")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    def init_state(self, params: Params) -> State:
        return {"t": 0, "m": _zeros_like(params), "v": _zeros_like(params)}

    def step(self, params: Params, grads: Params, state: State, decay: Decay = None) -> tuple[Params, State]:
        return self._adam(params, _coupled_decay(params, grads, self.weight_decay, decay), state)

    def _adam(self, params: Params, grads: Params, state: State) -> tuple[Params, State]:
        b1, b2 = self.beta1, self.beta2
        t = state["t"] + 1
        step_size = self.lr / (1.0 - b1**t)
        root_correction = (1.0 - b2**t) ** 0.5
        eps = self.eps
        m = [b1 * m_ + (1.0 - b1) * g for m_, g in zip(state["m"], grads)]
        v = [b2 * v_ + (1.0 - b2) * (g * g) for v_, g in zip(state["v"], grads)]
        new = [p - step_size * m_ / (_sqrt(v_) / root_correction + eps) for p, m_, v_ in zip(params, m, v)]
        return new, {"t": t, "m": m, "v": v}

    def config(self) -> dict[str, Any]:
        return {
            "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "weight_decay": self.weight_decay
        }


@register
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as
    ``torch.optim.AdamW``: the decayed weights shrink by ``1 - lr *
    weight_decay`` before the Adam update, and the moments never see the
    decay, so it does not get divided by their scale as Adam's L2 term is."""

    name = "adamw"

    def __init__(
        self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.01
    ) -> None:
        super().__init__(lr, beta1, beta2, eps, weight_decay)

    def step(self, params: Params, grads: Params, state: State, decay: Decay = None) -> tuple[Params, State]:
        return self._adam(_decoupled_decay(params, self.lr * self.weight_decay, decay), grads, state)


@register
class RMSprop(Optimizer):
    """RMSprop (Hinton), as ``torch.optim.RMSprop``: ``s = alpha s + (1 -
    alpha) g**2``; ``p = p - lr g / (sqrt(s) + eps)``. ``centered=True`` also
    tracks the mean gradient ``m`` and divides by ``sqrt(s - m**2) + eps``;
    ``momentum > 0`` accumulates the scaled step in a buffer first. ``eps``
    sits outside the square root, as in torch (Keras puts it inside)."""

    nonnegative = ("square_avg",)

    name = "rmsprop"

    def __init__(
        self,
        lr: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        self.lr = positive(lr, "lr")
        self.alpha = _fraction(alpha, "alpha")
        self.eps = positive(eps, "eps")
        self.momentum = _fraction(momentum, "momentum")
        self.centered = _flag(centered, "centered")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    def init_state(self, params: Params) -> State:
        state = {"square_avg": _zeros_like(params)}
        if self.centered:
            state["grad_avg"] = _zeros_like(params)
        if self.momentum > 0.0:
            state["momentum_buffer"] = _zeros_like(params)
        return state

    def step(self, params: Params, grads: Params, state: State, decay: Decay = None) -> tuple[Params, State]:
        grads = _coupled_decay(params, grads, self.weight_decay, decay)
        a, eps = self.alpha, self.eps
        square_avg = [a * s + (1.0 - a) * (g * g) for s, g in zip(state["square_avg"], grads)]
        new_state = {"square_avg": square_avg}
        if self.centered:
            grad_avg = [a * m + (1.0 - a) * g for m, g in zip(state["grad_avg"], grads)]
            # s - m**2 >= 0 in exact arithmetic; the floor keeps rounding from making it a nan
            xp = array_namespace(*square_avg) if square_avg else None
            denom = [_sqrt(xp.maximum(s - m * m, 0.0)) + eps for s, m in zip(square_avg, grad_avg)]
            new_state["grad_avg"] = grad_avg
        else:
            denom = [_sqrt(s) + eps for s in square_avg]
        lr = self.lr
        if self.momentum > 0.0:
            mu = self.momentum
            buffer = [mu * b + g / d for b, g, d in zip(state["momentum_buffer"], grads, denom)]
            new_state["momentum_buffer"] = buffer
            return [p - lr * b for p, b in zip(params, buffer)], new_state
        return [p - lr * (g / d) for p, g, d in zip(params, grads, denom)], new_state

    def config(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "alpha": self.alpha,
            "eps": self.eps,
            "momentum": self.momentum,
            "centered": self.centered,
            "weight_decay": self.weight_decay,
        }


def _coupled_decay(params: Params, grads: Params, weight_decay: float, decay: Decay) -> Params:
    """``g + weight_decay * p`` for the parameters that decay (torch's L2 form)."""
    if weight_decay == 0.0:
        _decay_flags(decay, params)  # still refuse a malformed mask
        return grads
    flags = _decay_flags(decay, params)
    return [g + weight_decay * p if f else g for p, g, f in zip(params, grads, flags)]


def _decoupled_decay(params: Params, rate: float, decay: Decay) -> Params:
    """``p * (1 - rate)`` for the parameters that decay (AdamW's form)."""
    if rate == 0.0:
        _decay_flags(decay, params)
        return params
    flags = _decay_flags(decay, params)
    keep = 1.0 - rate
    return [p * keep if f else p for p, f in zip(params, flags)]


def _decay_flags(decay: Decay, params: Params) -> list[bool]:
    """One host bool per parameter (a device array here would cost a sync per step)."""
    if decay is None:
        return [True] * len(params)
    flags = list(decay)
    if len(flags) != len(params) or not all(isinstance(f, bool | np.bool_) for f in flags):
        raise ValueError(
            f"decay must be a sequence of {len(params)} Python bools (one per parameter, "
            f"True where weight decay applies), got {decay!r}"
        )
    return [bool(f) for f in flags]


def _fraction(value: Any, what: str) -> float:
    """A number in [0, 1): momentum and averaging factors."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be a number in [0, 1), got {value!r}")
    return float(value)


def _non_negative(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0.0 <= value < math.inf):
        raise ValueError(f"{what} must be a non-negative finite number, got {value!r}")
    return float(value)


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return value


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
