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

import numpy as np

__all__ = ["INITIALIZERS", "default_init", "draw_weights", "host_rng", "initial_bias", "resolve_init"]

Initializer = Callable[[np.random.Generator, int, int], np.ndarray]


def host_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy generator from an int seed (or ``None``: fresh OS entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return np.random.default_rng(seed)


def _he_normal(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    return rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)


def _he_uniform(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / n_in)
    return rng.uniform(-limit, limit, (n_in, n_out))


def _glorot_uniform(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, (n_in, n_out))


def _glorot_normal(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    return rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / (n_in + n_out))


def _lecun_normal(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    return rng.standard_normal((n_in, n_out)) * np.sqrt(1.0 / n_in)


def _standard_normal(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """N(0, 1), as ``np.random.randn`` in the seed documents."""
    return rng.standard_normal((n_in, n_out))


def _uniform(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """U[0, 1), as ``np.random.rand`` in the seed documents."""
    return rng.random((n_in, n_out))


#: Weight initializers by name. He for the ReLU family keeps the activations'
#: variance constant through rectifiers; Glorot does so for symmetric ones.
INITIALIZERS: dict[str, Initializer] = {
    "he_normal": _he_normal,
    "he_uniform": _he_uniform,
    "glorot_uniform": _glorot_uniform,
    "glorot_normal": _glorot_normal,
    "lecun_normal": _lecun_normal,
    "normal": _standard_normal,
    "uniform": _uniform,
}


def default_init(activation_name: str) -> str:
    """He-normal for ReLU-family layers, Glorot-uniform otherwise."""
    return "he_normal" if activation_name in ("relu", "leaky_relu") else "glorot_uniform"


def resolve_init(init: str | Initializer | None, activation_name: str) -> Initializer:
    """An initializer from a name, a callable ``(rng, n_in, n_out) -> array``, or ``None``."""
    if init is None:
        init = default_init(activation_name)
    if callable(init):
        return init
    if isinstance(init, str) and init.lower() in INITIALIZERS:
        return INITIALIZERS[init.lower()]
    raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INITIALIZERS)} or a callable")


def draw_weights(init: Initializer, rng: np.random.Generator, n_in: int, n_out: int, dtype: str) -> np.ndarray:
    """Draw an ``(n_in, n_out)`` matrix in float64 and cast it on the host."""
    w = np.asarray(init(rng, n_in, n_out), dtype=np.float64)
    if w.shape != (n_in, n_out):
        raise ValueError(f"init returned shape {w.shape}, expected {(n_in, n_out)}")
    return w.astype(dtype)


def initial_bias(n_out: int, dtype: str) -> np.ndarray:
    """Biases start at zero and draw nothing from the generator."""
    return np.zeros(n_out, dtype=dtype)
