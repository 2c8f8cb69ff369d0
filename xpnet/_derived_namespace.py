"""xpnet's namespaces for NumPy, torch and JAX are a library's namespace
with a few functions replaced: one way to make such a module."""

from __future__ import annotations

import types
from typing import Any

__all__ = ["derived"]


def derived(base: types.ModuleType, name: str, **replaced: Any) -> types.ModuleType:
    """A new module called ``name`` with every public name of ``base``, then
    ``replaced`` (which may add names). Keeping ``base``'s name keeps
    array-api-compat's ``is_*_namespace`` (how xpnet recognises libraries)
    saying the same library."""
    ns = types.ModuleType(name, base.__doc__)
    ns.__dict__.update({k: v for k, v in vars(base).items() if not k.startswith("__")})
    ns.__dict__.update(replaced)
    return ns
