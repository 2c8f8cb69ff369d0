"""Saving and loading networks as safetensors files.

:func:`save` writes a network in the model file format of
:mod:`xpnet.modelfile` (atomically); :func:`load` reads one back, checked,
and builds the network on any backend. This module sits above
:mod:`xpnet.network` (it builds networks); the format below it is shared with
the training checkpoints, so nothing that trains imports this module.
"""

from __future__ import annotations

import os
from typing import Any

from ._backend import get_backend
from .modelfile import (  # noqa: F401  (the format's names, as before the split)
    FORMAT,
    FORMAT_VERSION,
    STALE_AFTER,
    _host_tag,
    model_metadata,
    model_tensors,
    params_from,
    read_model_file,
    write_atomic,
)
from .network import Network

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "network_from", "read_model_file", "save", "write_atomic"]


def save(net: Network, path: str | os.PathLike) -> None:
    """Write ``net`` to ``path`` (safetensors), atomically (``Network.save``)."""
    net.save(path)


def load(path: str | os.PathLike, backend: Any = None, device: Any = None) -> Network:
    """A network read from ``path``, on ``backend``/``device`` (default: auto)."""
    meta, tensors = read_model_file(path)
    return network_from(meta, tensors, backend, device)


def network_from(meta: dict[str, Any], tensors: dict[str, Any], backend: Any = None, device: Any = None) -> Network:
    """The network that :func:`read_model_file`'s ``(meta, tensors)`` hold,
    on ``backend``/``device``: :func:`load` in two steps, for a caller that
    must see the model's dtype first (the CLI, to switch on JAX's float64)."""
    target = get_backend(backend, device)
    params, buffers = params_from(meta, tensors)
    _check_holds(target, meta["dtype"])  # a dtype the target cannot hold is named before anything is copied
    params, buffers = [target.asarray(p) for p in params], [target.asarray(b) for b in buffers]
    net = Network._assemble(meta["architecture"], target, meta["dtype"], params, buffers)
    net.info = meta["info"]
    return net


def _check_holds(target: Any, dtype: str) -> None:
    """Refuse a model whose dtype ``target`` cannot hold, saying how to get
    it there: ``load`` and ``xpnet predict`` take no dtype, so the backend's
    own advice (``dtype='float32'``) cannot be followed. JAX's 64-bit mode
    keeps its message: switching it on is the way."""
    try:
        target.dtype(dtype)
    except ValueError:
        if target.name == "jax":
            raise
        raise ValueError(
            f"the model's weights are {dtype}, which {target} cannot hold; predict on a device that can, "
            f"or convert a copy: xpnet.load(path, backend='numpy').to({target.name!r}, device=..., dtype='float32')"
        ) from None
