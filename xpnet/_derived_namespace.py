"""xpnet's namespaces for NumPy, torch and JAX are a library's namespace
with a few functions replaced: one way to make such a module."""

from __future__ import annotations

import types
from typing import Any

__all__ = ["derived"]


def derived(base: types.ModuleType, name: str, **replaced: Any) -> types.ModuleType:
    """A new module called ``name`` with every public name of ``base`` (and
    the standard's ``__array_namespace_info__``), then
    ``replaced`` (which may add names). Keeping ``base``'s name keeps
    array-api-compat's ``is_*_namespace`` (how xpnet recognises libraries)
    saying the same library."""
    ns = types.ModuleType(name, base.__doc__)
    keep = ("__array_namespace_info__", "__array_api_version__")  # the standard's own dunder names
    ns.__dict__.update({k: v for k, v in vars(base).items() if not k.startswith("__") or k in keep})
    ns.__dict__.update(replaced)
    return ns
