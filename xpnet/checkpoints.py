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
import math
import os
from typing import Any

import numpy as np

from ._files import loads_limited
from ._files import shorten as _short
from .modelfile import model_metadata, model_tensors, params_from, read_model_file, write_atomic
from .records import History, Position

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


def restore(
    path: Any,
    net: Any,
    opt: Any,
    backend: Any,
    *,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    metrics: list[str] | None = None,
    validation: bool | None = None,
) -> tuple[list[Any], list[Any], dict[str, Any], Any, Any]:
    """``(params, buffers, optimizer state, History, position)`` from a checkpoint,
    after checking every field against this network and optimizer, and
    against this run when its ``epochs``, ``steps_per_epoch``, History
    ``metrics`` names and ``validation`` (whether it has validation data)
    are given. Anything off is a ``ValueError`` naming the file and the field."""
    if not os.path.lexists(path):
        raise FileNotFoundError(f"no checkpoint to resume from at {path}")
    meta, tensors = read_model_file(path)
    if "checkpoint" not in meta:
        raise ValueError(f"{path} is a saved model, not a training checkpoint (it has no optimizer or epoch state)")
    ck = _checkpoint_fields(meta["checkpoint"], path)
    if meta["architecture"] != net.config():
        raise ValueError(
            f"{path} was written for another architecture: {_describe(meta['architecture'])}, "
            f"this network is {_describe(net.config())}"
        )
    if meta["dtype"] != net.dtype:
        raise ValueError(f"{path} holds a {meta['dtype']} model, this network is {net.dtype}")
    epoch, step = _check_position(ck, path, epochs, steps_per_epoch)
    history = _check_history(ck["history"], epoch, path, metrics, validation)
    rng_state = _check_rng_state(ck["rng_state"], path)
    host_params, host_buffers = params_from(meta, tensors)
    state, used = _optimizer_state(ck["optimizer"], opt, host_params, tensors, path)
    partial = _partial_loss(tensors, step, meta["dtype"], path)
    unexpected = set(tensors) - used - {"train.partial_loss"} - {n for n in tensors if n.startswith("layers.")}
    if unexpected:
        raise ValueError(f"{path}: unexpected tensors in a checkpoint: {sorted(unexpected)[:5]}")
    params = [backend.asarray(p) for p in host_params]
    buffers = [backend.asarray(b) for b in host_buffers]
    state = {k: [backend.asarray(a) for a in v] if isinstance(v, list) else v for k, v in state.items()}
    partial = None if partial is None else backend.asarray(partial[0])
    return params, buffers, state, history, Position(epoch, step, rng_state, partial)


def _checkpoint_fields(text: str, path: Any) -> dict[str, Any]:
    ck = loads_limited(text, f"{path}: the checkpoint metadata")
    fields = {"version", "epoch", "step", "rng_state", "history", "optimizer"}
    if not isinstance(ck, dict) or set(ck) != fields:
        got = sorted(ck) if isinstance(ck, dict) else type(ck).__name__
        raise ValueError(f"{path}: the checkpoint metadata must hold {sorted(fields)}, got {_short(got)}")
    version = ck["version"]
    if not _is_int(version) or version < 1:
        raise ValueError(f"{path}: checkpoint version must be a positive int, got {_short(version)}")
    if version > CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {version} is newer than this xpnet reads; upgrade xpnet")
    return ck


def _check_position(ck: dict[str, Any], path: Any, epochs: int | None, steps: int | None) -> tuple[int, int]:
    epoch, step = ck["epoch"], ck["step"]
    if not _is_int(epoch) or epoch < 0:
        raise ValueError(f"{path}: checkpoint epoch must be a non-negative int, got {_short(epoch)}")
    if not _is_int(step) or step < 0:
        raise ValueError(f"{path}: checkpoint step must be a non-negative int, got {_short(step)}")
    if epochs is not None and (epoch > epochs or (epoch == epochs and step > 0)):
        raise ValueError(
            f"{path} holds {epoch} completed epoch(s){f' and {step} step(s)' if step else ''}, "
            f"beyond epochs={epochs}; pass at least epochs={epoch + (step > 0)}"
        )
    if steps is not None and step >= steps:
        raise ValueError(
            f"{path}: checkpoint step {step} does not exist in an epoch of {steps} step(s) "
            f"(was it written with another batch_size or data?)"
        )
    return epoch, step


def _check_history(h: Any, epoch: int, path: Any, metrics: list[str] | None, validation: bool | None) -> Any:
    """The History so far: one entry per completed epoch in every list."""
    where = f"{path}: checkpoint history"
    keys = {"loss", "val_loss", "metrics", "stopped_early"}
    if not isinstance(h, dict) or set(h) != keys:
        raise ValueError(f"{where} must be an object with {sorted(keys)}, got {_short(h)}")
    if not isinstance(h["stopped_early"], bool):
        raise ValueError(f"{where}: stopped_early must be true or false, got {_short(h['stopped_early'])}")
    loss = _floats(h["loss"], f"{where}: loss", epoch, finite=True)
    val_loss = _floats(h["val_loss"], f"{where}: val_loss", (0, epoch))
    if not isinstance(h["metrics"], dict):
        raise ValueError(f"{where}: metrics must be an object, got {_short(h['metrics'])}")
    found = {k: _floats(v, f"{where}: metrics[{k!r}]", len(val_loss)) for k, v in h["metrics"].items()}
    if validation is not None and epoch and (len(val_loss) == epoch) != validation:
        had = "had" if val_loss else "had no"
        raise ValueError(f"{where}: the checkpoint's run {had} validation_data, this one {'has' if validation else 'has none'}")
    if metrics is not None and sorted(found) != sorted(metrics):
        raise ValueError(f"{where} records metrics {sorted(found)}, this run asks for {sorted(metrics)}")
    if h["stopped_early"] and not loss:
        raise ValueError(f"{where}: stopped_early is true after no epoch")
    return History(loss, val_loss, found, h["stopped_early"])


def _floats(values: Any, where: str, length: int | tuple[int, ...], finite: bool = False) -> list[float]:
    lengths = length if isinstance(length, tuple) else (length,)
    if not isinstance(values, list) or len(values) not in lengths:
        n = len(values) if isinstance(values, list) else type(values).__name__
        raise ValueError(f"{where} must be a list of {' or '.join(map(str, lengths))} number(s), one per epoch, got {n}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or (finite and not math.isfinite(v)):
            raise ValueError(f"{where} must hold {'finite ' if finite else ''}numbers, got {_short(v)}")
    return [float(v) for v in values]


def _check_rng_state(state: Any, path: Any) -> dict[str, Any]:
    """A state the shuffling generator accepts, shaped like its own (same
    generator, same keys, non-negative ints below 2**128)."""
    from ._random import host_rng

    rng = host_rng(0)
    if not _same_layout(state, rng.bit_generator.state):
        raise ValueError(
            f"{path}: checkpoint rng_state is not a {type(rng.bit_generator).__name__} generator state: {_short(state)}"
        )
    if state["bit_generator"] == "PCG64" and state["state"]["inc"] % 2 == 0:
        raise ValueError(f"{path}: checkpoint rng_state has an even PCG64 increment; a generator never does")
    try:
        rng.bit_generator.state = state
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        raise ValueError(f"{path}: checkpoint rng_state is refused by the generator ({exc})") from None
    return state


def _same_layout(got: Any, want: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and set(got) == set(want) and all(_same_layout(got[k], want[k]) for k in want)
    if isinstance(want, str):
        return got == want
    if _is_int(want):
        return _is_int(got) and 0 <= got < 2**128
    return False


def _optimizer_state(
    info: Any, opt: Any, params: list[np.ndarray], tensors: dict[str, np.ndarray], path: Any
) -> tuple[dict[str, Any], set[str]]:
    """The optimizer's state as host data, checked by the optimizer itself;
    and the names of the tensors it came from."""
    where = f"{path}: checkpoint optimizer"
    keys = {"type", "config", "scalars", "lists"}
    if not isinstance(info, dict) or set(info) != keys:
        raise ValueError(f"{where} must be an object with {sorted(keys)}, got {_short(info)}")
    if info["type"] not in (opt.name, type(opt).__name__):  # the class name: files of xpnet 0.1
        name = info["type"][:60] if isinstance(info["type"], str) else _short(info["type"])
        raise ValueError(f"{path} was written with optimizer {name}, this run uses {opt.name}")
    scalars, lists = info["scalars"], info["lists"]
    if not isinstance(info["config"], dict) or not isinstance(scalars, dict) or not isinstance(lists, dict):
        raise ValueError(f"{where}: config, scalars and lists must be objects")
    state: dict[str, Any] = dict(scalars)
    used = set()
    for key, count in lists.items():
        if key in state or not _is_int(count) or not 0 <= count <= len(params):
            raise ValueError(f"{where}: lists[{key!r}] must be a count in 0..{len(params)}, got {_short(count)}")
        names = [f"optimizer.{key}.{i}" for i in range(count)]
        missing = [n for n in names if n not in tensors]
        if missing:
            raise ValueError(f"{where}: state tensor {missing[0]} is missing")
        state[key] = [tensors[n] for n in names]
        used.update(names)
    try:
        opt.check_state(state, params)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return state, used


def _partial_loss(tensors: dict[str, np.ndarray], step: int, dtype: str, path: Any) -> np.ndarray | None:
    partial = tensors.get("train.partial_loss")
    if step == 0:
        if partial is not None:
            raise ValueError(f"{path}: a partial loss in a checkpoint written at the end of an epoch")
        return None
    if partial is None:
        raise ValueError(f"{path}: a mid-epoch checkpoint without its partial loss")
    if partial.shape != (1,) or partial.dtype != np.dtype(dtype):
        raise ValueError(f"{path}: train.partial_loss must be one {dtype} value, got shape {partial.shape}, {partial.dtype}")
    return partial


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _describe(arch: list[dict[str, Any]]) -> str:
    """An architecture for messages: ``4-8-2 (tanh,softmax)`` for a chain of
    Dense layers, else the layer types in order."""
    specs = [spec if isinstance(spec, dict) else {} for spec in arch]
    if specs and all(spec.get("type") == "Dense" for spec in specs):
        sizes = [specs[0].get("n_in")] + [spec.get("n_out") for spec in specs]
        acts = ",".join(str(spec.get("activation")) for spec in specs)
        return f"{'-'.join(map(str, sizes))} ({acts})"
    return ", ".join(str(spec.get("type")) for spec in specs)
