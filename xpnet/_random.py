"""Host-side randomness: initial weights and shuffles, as NumPy arrays.

Everything random is drawn from a seeded ``numpy.random.Generator`` on the
host, cast to the model dtype there and moved to the device once. The same
seed therefore means the same numbers on every backend, and no library's own
random state (``cupy.random``, ``torch.manual_seed``) is ever touched.

Draw order is fixed: layer by layer, weights then bias. Biases start at zero
and draw nothing unless an initializer says otherwise, so adding a bias never
shifts the next layer's weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .registry import register, registry_for

__all__ = [
    "INITIALIZERS", "Initializer", "check_seed", "default_init", "draw_weights", "host_rng", "initial_bias",
    "resolve_init",
]

InitFunction = Callable[[np.random.Generator, int, int], np.ndarray]


def host_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy generator from an int seed (or ``None``: fresh OS entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed(seed))


def check_seed(seed: Any) -> Any:
    """``seed`` as :func:`host_rng` takes it (a generator, a non-negative
    int, or ``None``), else a ``TypeError`` or ``ValueError``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return seed


class Initializer:
    """Base class of weight initialisers: ``__call__(rng, n_in, n_out)`` returns
    an ``(n_in, n_out)`` host array drawn from the NumPy generator ``rng``."""

    name: str = ""

    def __call__(self, rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(rng, n_in, n_out)")

    def config(self) -> dict:
        """Settings as plain values: ``type(self)(**config)`` rebuilds it."""
        return {}

    def __repr__(self) -> str:
        return f"Initializer({self.name!r})"


#: The registry of initialisers: name -> class (see :func:`xpnet.register`).
#: He for the ReLU family keeps the activations' variance constant through
#: rectifiers; Glorot does so for symmetric ones.
INITIALIZERS = registry_for("initializer", Initializer)


class _VarianceScaling(Initializer):
    """Zero-mean draws of variance ``gain / fan``, normal or uniform (limit
    ``sqrt(3 * gain / fan)``); the fan is ``n_in``, or ``n_in + n_out`` with
    ``fan_sum`` (Glorot)."""

    gain: float = 1.0
    fan_sum: bool = False
    uniform: bool = False

    def __call__(self, rng, n_in, n_out):
        fan = n_in + n_out if self.fan_sum else n_in
        if self.uniform:
            limit = np.sqrt(3 * self.gain / fan)
            return rng.uniform(-limit, limit, (n_in, n_out))
        return rng.standard_normal((n_in, n_out)) * np.sqrt(self.gain / fan)


@register
class HeNormal(_VarianceScaling):
    name, gain = "he_normal", 2.0


@register
class HeUniform(_VarianceScaling):
    name, gain, uniform = "he_uniform", 2.0, True


@register
class GlorotUniform(_VarianceScaling):
    name, gain, fan_sum, uniform = "glorot_uniform", 2.0, True, True


@register
class GlorotNormal(_VarianceScaling):
    name, gain, fan_sum = "glorot_normal", 2.0, True


@register
class LecunNormal(_VarianceScaling):
    name = "lecun_normal"


@register
class StandardNormal(Initializer):
    """N(0, 1), as ``np.random.randn`` in the seed documents."""

    name = "normal"

    def __call__(self, rng, n_in, n_out):
        return rng.standard_normal((n_in, n_out))


@register
class Uniform(Initializer):
    """U[0, 1), as ``np.random.rand`` in the seed documents."""

    name = "uniform"

    def __call__(self, rng, n_in, n_out):
        return rng.random((n_in, n_out))


#: Activations whose layers start He-normal: the rectifiers and their smooth
#: kin (gelu, elu, silu, softplus are ReLU-like: near zero for large negative
#: inputs, near the identity for large positive ones, so about half the
#: variance passes, as He assumes).
HE_ACTIVATIONS = frozenset({"relu", "leaky_relu", "gelu", "elu", "silu", "softplus"})


def default_init(activation_name: str) -> str:
    """He-normal for ReLU-family layers, Glorot-uniform otherwise."""
    return "he_normal" if activation_name in HE_ACTIVATIONS else "glorot_uniform"


def resolve_init(init: str | Initializer | InitFunction | None, activation_name: str) -> InitFunction:
    """An initializer from a name, a ``{"name", "config"}`` spec (as
    activations, losses and optimizers take), an :class:`Initializer`, a
    callable ``(rng, n_in, n_out) -> array``, or ``None`` (the activation's
    default)."""
    if init is None:
        init = default_init(activation_name)
    if isinstance(init, type) and issubclass(init, Initializer):
        return init()
    if isinstance(init, str | dict):
        return INITIALIZERS.build(init)
    if callable(init):
        return init
    raise TypeError("init must be a name, a {'name': ..., 'config': {...}} spec, an Initializer or a callable "
                    f"(rng, n_in, n_out) -> array, got {init!r}")


def draw_weights(init: InitFunction, rng: np.random.Generator, n_in: int, n_out: int, dtype: str) -> np.ndarray:
    """Draw an ``(n_in, n_out)`` matrix in float64 and cast it on the host."""
    w = np.asarray(init(rng, n_in, n_out))
    if w.dtype.kind not in "biuf":  # complex would be cut to its real part, with only a NumPy warning
        raise TypeError(f"init returned {w.dtype} values, expected real numbers")
    w = w.astype(np.float64)
    if w.shape != (n_in, n_out):
        raise ValueError(f"init returned shape {w.shape}, expected {(n_in, n_out)}")
    with np.errstate(over="ignore"):  # 1e40 is inf in float32: the caller names the initialiser, not NumPy's cast
        return w.astype(dtype)


def initial_bias(n_out: int, dtype: str) -> np.ndarray:
    """Biases start at zero and draw nothing from the generator."""
    return np.zeros(n_out, dtype=dtype)
