"""The JAX namespace xpnet computes with: ``jax.numpy``, with ``matmul`` at
full float32 precision unless the user chose a precision.

On a GPU, JAX's default precision for a float32 product is TF32 (inputs
rounded to 10 mantissa bits), while CuPy and torch compute full float32
products (torch's ``allow_tf32`` is off by default). The same fit on JAX then
differed from the same fit on CuPy, torch or NumPy by about 1e-3 relative:
seen on an H100, where a figure test agreed on the CPU and failed on the
GPU. So xpnet asks for ``Precision.HIGHEST``, as the other libraries compute
by default. A precision the user set (``jax.default_matmul_precision(...)``,
``JAX_DEFAULT_MATMUL_PRECISION``) wins: it is read at each call, which under
``jax.jit`` is once per trace. On a CPU every precision computes the same.
"""

from __future__ import annotations

import types
from typing import Any

import array_api_compat as _compat
import jax
import jax.numpy as _jnp
import numpy as _np

from ._derived_namespace import derived

_HIGHEST = jax.lax.Precision.HIGHEST


def matmul(x1: Any, x2: Any, /) -> Any:
    if jax.config.jax_default_matmul_precision is None:  # the user chose none
        return _jnp.matmul(x1, x2, precision=_HIGHEST)
    return _jnp.matmul(x1, x2)


def namespace() -> types.ModuleType:
    """A module with every name of ``jax.numpy`` and ``matmul`` replaced. It
    keeps that module's name, so that array-api-compat's
    ``is_jax_namespace`` (how xpnet recognises libraries) still says JAX."""
    return derived(_jnp, _jnp.__name__, matmul=matmul)


def _cache_compat_lookup() -> None:
    """array-api-compat finds JAX's namespace through ``jnp.empty(0)``, a
    host-to-device transfer that ``jax.transfer_guard("disallow")`` refuses,
    once per array type (its lookup is cached). Done here, once, for JAX's
    arrays: while JAX traces, where ``jnp.empty(0)`` neither transfers nor
    compiles, so that ``array_namespace`` on a JAX array transfers nothing."""
    array = jax.device_put(_np.empty(0, dtype=_np.float32))
    jax.make_jaxpr(lambda: _compat.array_namespace(array) and None)()


xp = namespace()
_cache_compat_lookup()
