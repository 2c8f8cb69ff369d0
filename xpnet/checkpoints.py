"""Training checkpoints: a model file that also holds how to go on.

A checkpoint is a model file in ``save``'s format (so ``xpnet.load`` reads it
as the model at that point) with more: the optimizer's state tensors
(``optimizer.<key>.<i>``), the partial epoch loss when written mid-epoch,
and a ``checkpoint`` metadata entry (JSON) with the position (epoch, step),
the shuffling generator's state at that epoch's start, the optimizer's type,
settings and scalar state, and the History so far. Restoring all of it makes
a resumed run repeat the uninterrupted one exactly.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .serialization import model_metadata, model_tensors, params_from, read_model_file, write_atomic

__all__ = ["restore", "write"]

CHECKPOINT_VERSION = 1


def write(
    path: Any, net: Any, opt: Any, state: dict[str, Any], params: list[Any], history: Any, at: Any, buffers: Any = None
) -> None:
    """Write the checkpoint for position ``at`` atomically to ``path``."""
    from ._backend import to_numpy

    tensors = model_tensors(net, params, buffers)
    lists, scalars = {}, {}
    for key, value in state.items():
        if isinstance(value, list):
            lists[key] = len(value)
            for i, a in enumerate(value):
                tensors[f"optimizer.{key}.{i}"] = np.ascontiguousarray(to_numpy(a))
        else:
            scalars[key] = value
    if at.partial_loss is not None:
        tensors["train.partial_loss"] = np.reshape(to_numpy(at.partial_loss), (1,))
    meta = model_metadata(net)
    meta["checkpoint"] = json.dumps(
        {
            "version": CHECKPOINT_VERSION,
            "epoch": at.epoch,
            "step": at.step,
            "rng_state": at.rng_state,
            "history": history.to_dict(),
            "optimizer": {"type": opt.name, "config": opt.config(), "scalars": scalars, "lists": lists},
        }
    )
    write_atomic(path, tensors, meta)


def restore(path: Any, net: Any, opt: Any, backend: Any) -> tuple[list[Any], list[Any], dict[str, Any], Any, Any]:
    """``(params, buffers, optimizer state, History, position)`` from a
    checkpoint, after checking it belongs to this network and optimizer."""
    from .training import History, _Position

    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint to resume from at {path}")
    meta, tensors = read_model_file(path)
    if "checkpoint" not in meta:
        raise ValueError(f"{path} is a saved model, not a training checkpoint (it has no optimizer or epoch state)")
    try:
        ck = json.loads(meta["checkpoint"])
        epoch, step, rng_state = int(ck["epoch"]), int(ck["step"]), ck["rng_state"]
        history = History.from_dict(ck["history"])
        opt_info = ck["optimizer"]
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: corrupt checkpoint metadata ({exc})") from None
    if meta["architecture"] != net.config():
        raise ValueError(
            f"{path} was written for another architecture: {_describe(meta['architecture'])}, "
            f"this network is {_describe(net.config())}"
        )
    if meta["dtype"] != net.dtype:
        raise ValueError(f"{path} holds a {meta['dtype']} model, this network is {net.dtype}")
    if opt_info.get("type") not in (opt.name, type(opt).__name__):
        raise ValueError(f"{path} was written with optimizer {opt_info.get('type')}, this run uses {opt.name}")
    params, buffers = params_from(meta, tensors)
    params, buffers = [backend.asarray(p) for p in params], [backend.asarray(b) for b in buffers]
    state: dict[str, Any] = dict(opt_info.get("scalars", {}))
    for key, count in opt_info.get("lists", {}).items():
        arrays = []
        for i in range(count):
            name = f"optimizer.{key}.{i}"
            if name not in tensors or tensors[name].shape != tuple(params[i].shape):
                raise ValueError(f"{path}: optimizer state {name} is missing or has the wrong shape")
            arrays.append(backend.asarray(tensors[name]))
        state[key] = arrays
    expected = opt.init_state(params)
    if set(expected) != set(state):
        raise ValueError(f"{path}: optimizer state holds {sorted(state)}, {type(opt).__name__} needs {sorted(expected)}")
    partial = tensors.get("train.partial_loss")
    partial = None if partial is None else backend.asarray(partial[0])
    if step > 0 and partial is None:
        raise ValueError(f"{path}: a mid-epoch checkpoint without its partial loss")
    return params, buffers, state, history, _Position(epoch, step, rng_state, partial)


def _describe(arch: list[dict[str, Any]]) -> str:
    """An architecture for messages: ``4-8-2 (tanh,softmax)`` for a chain of
    Dense layers, else the layer types in order."""
    specs = [spec if isinstance(spec, dict) else {} for spec in arch]
    if specs and all(spec.get("type") == "Dense" for spec in specs):
        sizes = [specs[0].get("n_in")] + [spec.get("n_out") for spec in specs]
        acts = ",".join(str(spec.get("activation")) for spec in specs)
        return f"{'-'.join(map(str, sizes))} ({acts})"
    return ", ".join(str(spec.get("type")) for spec in specs)
