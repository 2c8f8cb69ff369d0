"""Optimizers as pure updates: ``step(params, grads, state, decay) -> (params, state)``.

An optimizer object holds only its settings. Its state (velocities, moment
estimates, the step count) is a plain dict passed in and returned, and the
parameters it returns are new arrays: nothing it was given is written. The
network commits the result in one place, so the same code runs on immutable
arrays (JAX), and a step that produced NaN can simply be dropped.

Each rule is written once, as an elementwise :class:`~xpnet._kernels.Kernel`
per parameter (weight decay folded in), and run by
:func:`xpnet._kernels.update`: one fused kernel per parameter on CuPy, each
operation once for all parameters on eager CUDA torch, and in place on NumPy
and torch's CPU where the training step donates arrays it owns
(:class:`~xpnet._trainstep.TrainStep`); a plain call stays pure.

Every update follows ``torch.optim`` formula for formula (the tests run 20
steps of each against it), weight decay included: ``weight_decay`` is added
to the gradient (``g + wd * p``, "L2") by SGD, Adam and RMSprop, and shrinks
the weights directly (``p * (1 - lr * wd)``) in AdamW. It applies to the
parameters that ``decay`` marks: the network marks weights, not biases or
normalisation parameters, as one would with two torch parameter groups.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ._kernels import Kernel, update
from ._programs import one_program
from .registry import register, registry_for
from .validation import positive, true_or_false

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
    #: ``fit`` may compile steps with this class (``jax.jit``, CUDA graphs):
    #: every number that changes between steps reaches the arrays through
    #: :func:`xpnet._kernels.update`, and its step does nothing else per
    #: call (true of the built-in rules). Read from the class itself, never
    #: inherited: a subclass runs eagerly unless it declares it too.
    compilable: bool = False

    def init_state(self, params: Params) -> State:
        """The state before the first step: a dict of lists of arrays (one
        per parameter) and plain numbers, e.g. ``{"velocity": [...]}``."""
        return {}

    def step(self, params: Params, grads: Params, state: State, decay: Decay = None) -> tuple[Params, State]:
        """``(new_params, new_state)``, writing nothing in place (the network
        commits them). ``decay[i]``: does weight decay apply to parameter i."""
        raise NotImplementedError(f"{type(self).__name__} must define step(params, grads, state, decay=None)")

    def config(self) -> dict[str, Any]:
        """Every setting, as plain values: ``type(self)(**config)`` rebuilds
        the optimizer, and checkpoints store and compare it."""
        return {}

    def program_config(self) -> dict[str, Any]:
        """The settings a compiled step is traced with: optimizers of one
        class with equal program configs share one compiled program, each
        sending its other settings as :func:`xpnet._kernels.update` scalars.
        The default is every setting but ``lr`` (a scalar already, since a
        schedule changes it between steps), so another momentum compiles
        anew; the built-ins name only what picks their kernels and state,
        so a search over rates, betas or decay compiles once. Read from the
        class itself, as ``compilable`` is: a subclass that declares none
        gets this default."""
        return {k: v for k, v in self.config().items() if k != "lr"}

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
        _check_nonnegative_keys(self, expected)
        for key in self.nonnegative:
            for i, v in enumerate(state[key]):
                if bool(array_namespace(v).any(v < 0)):
                    raise ValueError(f"optimizer state {key}.{i} (running squares) holds negative values")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.config() == self.config()


def initial_state(opt: Optimizer, params: Params) -> State:
    """``opt.init_state(params)``, refused unless a dict (what ``fit`` passes
    to ``step``, compares on ``warm_start`` and checkpoints by key): a list
    failed in the training step with "'list' object has no attribute
    'items'", naming no optimizer."""
    state = opt.init_state(params)
    if not isinstance(state, dict):
        raise ValueError(f"{type(opt).__name__}.init_state returned a {type(state).__name__}; an optimizer's state "
                         "is a dict of lists of arrays (one per parameter) and plain numbers, e.g. "
                         "{'velocity': [...], 't': 0}")  # fmt: skip
    for key, value in state.items():
        if not isinstance(value, list) and plain_number(value) is None:
            raise ValueError(f"{type(opt).__name__}.init_state returned {key!r} as a {type(value).__name__}; an "
                             "optimizer's state holds lists of arrays (one per parameter) and plain numbers (a Python "
                             "int or float, such as a step count), which checkpoints keep as they are")  # fmt: skip
        if isinstance(value, list):
            _check_state_library(opt, key, value, params)
    _check_nonnegative_keys(opt, state)
    return state


def refuse_state(opt: Optimizer, state: Any, params: Params) -> None:
    """The ``ValueError`` for a state a step cannot read (called once its
    lookup failed, so a step pays nothing for it): not a dict, or without
    keys ``init_state`` makes (``step(params, grads, {})`` was a bare
    ``KeyError: 't'``), or holding an entry :meth:`Optimizer.check_state`
    refuses (a step count of ``None`` failed in ``None + 1``). Returns when
    none is the case, for the caller to re-raise its own error."""
    name, how = type(opt).__name__, "start from state = opt.init_state(params) and pass on the state each step returns"
    if not isinstance(state, dict):
        raise ValueError(f"{name}.step takes its state as a dict from {name}.init_state(params), "
                         f"got {type(state).__name__}: {how}")  # fmt: skip
    needed = list(opt.init_state([]))  # its keys depend only on the settings; params may be what failed
    missing = [key for key in needed if key not in state]
    if missing:
        raise ValueError(f"{name}.step's state lacks {missing} (it holds {list(state)}, {name} needs {needed}): "
                         f"{how}")  # fmt: skip
    opt.check_state(state, params)  # an entry of the wrong kind (a step count of None), named


def _check_state_library(opt: Optimizer, key: str, arrays: list[Any], params: Params) -> None:
    """Each array of a state list of its parameter's library: NumPy zeros on
    a torch network failed in the optimizer's step with torch's words
    ("Concatenation operation is not implemented for NumPy arrays"). JAX's
    operations take NumPy arrays; what is no array is left to
    :meth:`Optimizer.check_state`."""
    for i, (a, p) in enumerate(zip(arrays, params)):
        taken = isinstance(a, np.ndarray) and type(p).__module__.startswith("jax")
        if type(a) is type(p) or not hasattr(a, "shape") or taken:
            continue
        try:
            same = array_namespace(a) is array_namespace(p)
        except TypeError:
            same = False
        if not same:
            raise ValueError(f"{type(opt).__name__}.init_state returned {key!r} holding a "
                             f"{type(a).__module__.split('.', 1)[0]} {type(a).__name__} for parameter {i}, not the "
                             f"parameters' kind of array ({type(p).__name__}): make it from the parameter (p * 0.0, "
                             "or the namespace of array_namespace(p))")  # fmt: skip


def plain_number(value: Any) -> int | float | None:
    """``value`` as the Python int or float a checkpoint keeps of a state's
    plain number (NumPy's scalars included), or ``None`` for anything else:
    a bool, or an array (a 0-d torch tensor failed inside ``json`` at the
    first checkpoint, after an epoch of training, naming no optimizer)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return None
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _check_nonnegative_keys(opt: Optimizer, state: State) -> None:
    """``opt.nonnegative`` names lists of ``state``: a misspelt key failed as
    a KeyError when a checkpoint was resumed, after the run that wrote it."""
    missing = [key for key in opt.nonnegative if not isinstance(state.get(key), list)]
    if missing:
        raise ValueError(f"{type(opt).__name__}.nonnegative names {missing}, which its init_state does not make "
                         f"(it makes {sorted(state)}): nonnegative names state lists of running squares")


#: The registry of optimizers: name -> class (see :func:`xpnet.register`).
OPTIMIZERS = registry_for("optimizer", Optimizer, reserved={"momentum": "SGD with momentum 0.9"})


@register
class SGD(Optimizer):
    """Gradient descent, with heavy-ball momentum when ``momentum > 0`` and
    Nesterov's lookahead with ``nesterov=True``.

    PyTorch's form: ``g = g + weight_decay * p``; ``v = momentum * v + g``;
    ``p = p - lr * v``, or ``p = p - lr * (g + momentum * v)`` with Nesterov
    (so a run can be compared with ``torch.optim.SGD`` step by step)."""

    compilable = True
    name = "sgd"

    def __init__(
        self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0
    ) -> None:
        self.lr = positive(lr, "lr")
        self.momentum = self._checked_momentum(momentum)
        self.nesterov = true_or_false(nesterov, "nesterov")
        if self.nesterov and self.momentum == 0.0:
            raise ValueError(
                "nesterov=True needs momentum > 0 (Nesterov's lookahead acts on the velocity), got momentum=0.0"
            )
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    @staticmethod
    def _checked_momentum(value: Any) -> float:
        """In [0, 1): a velocity that never decays is refused (scikit-learn's
        form of the update, :class:`xpnet.sklearn` allows 1)."""
        return _fraction(value, "momentum")

    def init_state(self, params: Params) -> State:
        if self.momentum == 0.0:
            return {}
        return {"velocity": _zeros_like(params)}

    def step(self, params: Params, grads: Params, state: State, decay: Decay = None) -> tuple[Params, State]:
        kernels = _per_parameter(_sgd_kernel, params, decay, self.weight_decay, self.momentum > 0.0, self.nesterov)
        scalars = (self.lr, self.momentum, self.weight_decay)
        if self.momentum == 0.0:
            (new,) = update(kernels, [params, grads], scalars)
            return new, state
        try:
            velocity = state["velocity"]
        except (KeyError, TypeError):
            refuse_state(self, state, params)
            raise
        new, velocity = update(kernels, [params, grads, velocity], scalars)
        return new, {"velocity": velocity}

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def program_config(self) -> dict[str, Any]:
        return {"momentum": self.momentum > 0.0, "nesterov": self.nesterov, "weight_decay": self.weight_decay != 0.0}


@register
class Adam(Optimizer):
    """Adam (Kingma & Ba), with bias-corrected moment estimates, and L2 weight
    decay added to the gradient as ``torch.optim.Adam`` does (see
    :class:`AdamW` for the decoupled kind).

    The step count lives on the host as a Python int, so the bias corrections
    are host scalars and need no device round trip."""

    nonnegative = ("v",)

    compilable = True
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

    #: How weight decay enters: "l2" (added to the gradient) or "decoupled" (AdamW).
    _decay_kind = "l2"

    def step(self, params: Params, grads: Params, state: State, decay: Decay = None) -> tuple[Params, State]:
        if type(self)._adam is not Adam._adam:  # a subclass's own order of operations (scikit-learn's)
            flags = _decay_flags(decay, params)
            if self._decay_kind == "decoupled":
                keep = 1.0 - self.lr * self.weight_decay
                params = [p * keep if f and keep != 1.0 else p for p, f in zip(params, flags)]
            elif self.weight_decay != 0.0:
                grads = [g + self.weight_decay * p if f else g for p, g, f in zip(params, grads, flags)]
            return self._adam(params, grads, state)
        return self._kernel_step(params, grads, state, decay, self.weight_decay)

    def _adam(self, params: Params, grads: Params, state: State) -> tuple[Params, State]:
        """Adam without weight decay (``step`` applies it first): the hook a
        subclass overrides for another order of operations."""
        return self._kernel_step(params, grads, state, None, 0.0)

    def _kernel_step(self, params: Params, grads: Params, state: State, decay: Decay, weight_decay: float):
        kind = self._decay_kind
        kernels = _per_parameter(_adam_kernel, params, decay, weight_decay, kind)
        b1, b2 = self.beta1, self.beta2
        try:
            t, m, v = state["t"] + 1, state["m"], state["v"]
        except (KeyError, TypeError):
            refuse_state(self, state, params)
            raise
        step_size = self.lr / (1.0 - b1**t)
        root_correction = (1.0 - b2**t) ** 0.5
        wd = 1.0 - self.lr * weight_decay if kind == "decoupled" else weight_decay
        scalars = (b1, 1.0 - b1, b2, 1.0 - b2, step_size, root_correction, self.eps, wd)
        new, m, v = update(kernels, [params, grads, m, v], scalars)
        return new, {"t": t, "m": m, "v": v}

    def config(self) -> dict[str, Any]:
        return {
            "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "weight_decay": self.weight_decay
        }

    def program_config(self) -> dict[str, Any]:
        return {"weight_decay": self.weight_decay != 0.0}


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

    _decay_kind = "decoupled"
    compilable = True
    program_config = Adam.program_config


@register
class RMSprop(Optimizer):
    """RMSprop (Hinton), as ``torch.optim.RMSprop``: ``s = alpha s + (1 -
    alpha) g**2``; ``p = p - lr g / (sqrt(s) + eps)``. ``centered=True`` also
    tracks the mean gradient ``m`` and divides by ``sqrt(s - m**2) + eps``;
    ``momentum > 0`` accumulates the scaled step in a buffer first. ``eps``
    sits outside the square root, as in torch (Keras puts it inside)."""

    nonnegative = ("square_avg",)

    compilable = True
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
        self.centered = true_or_false(centered, "centered")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    def init_state(self, params: Params) -> State:
        state = {"square_avg": _zeros_like(params)}
        if self.centered:
            state["grad_avg"] = _zeros_like(params)
        if self.momentum > 0.0:
            state["momentum_buffer"] = _zeros_like(params)
        return state

    def step(self, params: Params, grads: Params, state: State, decay: Decay = None) -> tuple[Params, State]:
        momentum = self.momentum > 0.0
        kernels = _per_parameter(_rmsprop_kernel, params, decay, self.weight_decay, self.centered, momentum)
        keys = ["square_avg"] + ["grad_avg"] * self.centered + ["momentum_buffer"] * momentum
        a = self.alpha
        scalars = (a, 1.0 - a, self.eps, self.lr, self.momentum, self.weight_decay)
        try:
            arrays = [state[k] for k in keys]
        except (KeyError, TypeError):
            refuse_state(self, state, params)
            raise
        new, *states = update(kernels, [params, grads, *arrays], scalars)
        return new, dict(zip(keys, states))

    def config(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "alpha": self.alpha,
            "eps": self.eps,
            "momentum": self.momentum,
            "centered": self.centered,
            "weight_decay": self.weight_decay,
        }

    def program_config(self) -> dict[str, Any]:
        return {"momentum": self.momentum > 0.0, "centered": self.centered, "weight_decay": self.weight_decay != 0.0}


# -- the update rules, one elementwise kernel per variant ---------------------
# ``decay``: this parameter takes weight decay (and the optimizer has some).
# Each formula is torch.optim's, operation for operation.


@functools.cache
def _sgd_kernel(decay: bool, momentum: bool, nesterov: bool) -> Kernel:
    def sgd(xp, p, g, lr, mu, wd):
        return (p - lr * (g + wd * p if decay else g),)

    def sgd_momentum(xp, p, g, v, lr, mu, wd):
        if decay:
            g = g + wd * p
        v = mu * v + g
        return p - lr * (g + mu * v if nesterov else v), v

    name = "sgd" + "_decay" * decay + "_momentum" * momentum + "_nesterov" * nesterov
    return Kernel(sgd_momentum, 3, 3, name) if momentum else Kernel(sgd, 2, 3, name)


@functools.cache
def _adam_kernel(decay: bool, kind: str) -> Kernel:
    def adam(xp, p, g, m, v, b1, c1, b2, c2, step_size, root_correction, eps, wd):
        if decay and kind == "decoupled":
            p = p * wd  # AdamW: wd is 1 - lr * weight_decay
        elif decay:
            g = g + wd * p
        m = b1 * m + c1 * g
        v = b2 * v + c2 * (g * g)
        return p - step_size * m / (xp.sqrt(v) / root_correction + eps), m, v

    return Kernel(adam, 4, 8, "adam" + f"_{kind}" * decay)


@functools.cache
def _rmsprop_kernel(decay: bool, centered: bool, momentum: bool) -> Kernel:
    def rmsprop(xp, p, g, s, *rest):
        *state, a, c, eps, lr, mu, wd = rest
        if decay:
            g = g + wd * p
        s = a * s + c * (g * g)
        out = [s]
        if centered:
            m = a * state.pop(0) + c * g
            # s - m**2 >= 0 in exact arithmetic; the floor keeps rounding from making it a nan
            denom = xp.sqrt(xp.maximum(s - m * m, 0.0)) + eps
            out.append(m)
        else:
            denom = xp.sqrt(s) + eps
        if not momentum:
            return (p - lr * (g / denom), *out)
        b = mu * state.pop(0) + g / denom
        return (p - lr * b, *out, b)

    name = "rmsprop" + "_decay" * decay + "_centered" * centered + "_momentum" * momentum
    return Kernel(rmsprop, 3 + centered + momentum, 6, name)


def _per_parameter(kernel_for: Any, params: Params, decay: Decay, weight_decay: float, *variant: Any) -> list[Kernel]:
    """The kernel of each parameter: with weight decay where ``decay`` marks
    it. Remembered per mask (a training loop passes the same one every
    step, and small networks feel each microsecond); a malformed mask is
    never remembered, so it is refused every time."""
    mask = tuple(decay) if isinstance(decay, (list, tuple)) else decay  # a tuple of types: no union made per step
    plain = mask is None or (isinstance(mask, tuple) and all(type(f) is bool for f in mask))  # 1 == True: not alike
    key = (kernel_for, mask, len(params), weight_decay != 0.0, variant)
    kernels = _KERNELS.get(key) if plain else None
    if kernels is None:
        flags = _decay_flags(decay, params)
        kernels = [kernel_for(f and weight_decay != 0.0, *variant) for f in flags]
        if len(_KERNELS) < 256 and plain:
            _KERNELS[key] = kernels
    return kernels


_KERNELS: dict[tuple, list[Kernel]] = {}


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
    """A number in [0, 1): momentum and averaging factors (NumPy's scalars
    too, as hyper-parameter grids hold them)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be a number in [0, 1), got {value!r}")
    return float(value)


def _non_negative(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0.0 <= value < math.inf):
        raise ValueError(f"{what} must be a non-negative finite number, got {value!r}")
    return float(value)


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


def _zeros_like(params: Params) -> Params:
    """Zeros shaped as each parameter (as one program on JAX, not one per shape)."""
    if not params:
        return []
    return one_program(_zeros, params[0])(list(params))


def _zeros(params: list[Any]) -> list[Any]:
    xp = array_namespace(*params)
    return [xp.zeros_like(p) for p in params]


#: Names that stand for a registered optimizer with other defaults.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {"momentum": ("sgd", {"momentum": 0.9})}


def get_optimizer(optimizer: str | dict | Optimizer, lr: float | None = None) -> Optimizer:
    """An optimizer from a name or registered class (built with ``lr=lr``,
    or its own default rate when ``lr`` is None), a ``{"name", "config"}``
    spec (built with ``lr=lr`` too unless its config sets ``lr``), or an
    object (kept as is)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer(**_rate(optimizer, lr))
    if isinstance(optimizer, dict):
        return _from_spec(optimizer, lr)
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be a name or an optimizer object, got {type(optimizer).__name__}")
    name, preset = PRESETS.get(optimizer.strip().lower(), (optimizer, {}))
    cls = OPTIMIZERS.lookup(name)
    return cls(**_rate(cls, lr), **preset)


def _from_spec(spec: dict, lr: float | None) -> Optimizer:
    """An optimizer from a ``{"name", "config"}`` spec: a preset's settings
    under its config, and ``lr`` where the config sets no rate, as a name is
    built (``{"name": "adam"}`` beside fit's ``lr=0.04`` was built at
    Adam's 0.001, and so refused as "an optimizer object with its own
    lr=0.001"). A config that sets ``lr`` keeps it. Another key is
    refused: ``{"name": "adam", "lr": 0.1}`` trained at Adam's default."""
    extra = [key for key in spec if key not in ("name", "config")]
    if extra:
        raise ValueError(f"optimizer spec {spec!r} holds {extra} beside 'name' and 'config': settings go in the "
                         "config, {'name': 'adam', 'config': {'lr': 0.01}}")  # fmt: skip
    name, config = spec.get("name"), spec.get("config", {})
    if isinstance(name, str) and isinstance(config, dict):
        base, preset = PRESETS.get(name.strip().lower(), (name, {}))
        config = {**preset, **config}
        if lr is not None and "lr" not in config:
            config = {**_rate(OPTIMIZERS.lookup(base), lr), **config}
        spec = {**spec, "name": base, "config": config}
    return OPTIMIZERS.build(spec)


def _rate(cls: type, lr: float | None) -> dict[str, float]:
    """``lr`` for the constructor: the one given, else none (the class's own
    default), or 0.01 for a class whose ``lr`` has no default. A class that
    takes no ``lr`` is refused, naming the rule, where Python's "unexpected
    keyword argument 'lr'" came from deep in ``fit`` or the command line."""
    takes_lr, needs_lr = _lr_parameter(cls, cls.__init__)
    if lr is not None:
        if not takes_lr:
            raise TypeError(f"optimizer {cls.name!r} is built by name as {cls.__name__}(lr={lr!r}), but its "
                            "constructor takes no lr: an optimizer's constructor takes the learning rate as lr=; "
                            f"or pass an object ({cls.__name__}(...)) instead of its name")  # fmt: skip
        return {"lr": lr}
    return {"lr": 0.01} if needs_lr else {}


@functools.cache
def _lr_parameter(cls: type, init: Any) -> tuple[bool, bool]:
    """Does ``cls``'s constructor (``init``, part of the key: a class whose
    ``__init__`` is replaced is asked again) take ``lr``, and without a
    default? ``inspect.signature`` costs 60 us, every ``fit`` by name."""
    params = inspect.signature(cls).parameters
    param = params.get("lr")
    takes = param is not None or any(p.kind is p.VAR_KEYWORD for p in params.values())
    return takes, param is not None and param.default is inspect.Parameter.empty
