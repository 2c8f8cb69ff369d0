"""Training checkpoints: a model file that also holds how to go on.

A checkpoint is a model file in ``save``'s format (so ``xpnet.load`` reads it
as the model at that point) with more: the optimizer's state tensors
(``optimizer.<key>.<i>``), the partial epoch loss when written mid-epoch,
and a ``checkpoint`` metadata entry (JSON) with the position (epoch, step),
the shuffling generator's state at that epoch's start, the optimizer's type,
settings and scalar state, the History so far, and the run's record (its
random key and validation split, the learning-rate schedule's name, settings
and state, each callback's state; the callbacks' arrays as tensors
``callbacks.<i>.<j>``). Restoring all of it makes a resumed run repeat the
uninterrupted one exactly.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import to_numpy
from ._files import loads_limited
from ._files import shorten as _short
from .callbacks import callback_name
from .modelfile import (
    _plain_number,
    as_saved,
    check_checksum,
    model_metadata,
    model_tensors,
    params_from,
    read_model_file,
    write_atomic,
)
from .optimizers import plain_number
from .records import History, Position, RunRecord

__all__ = ["Checkpoint", "read", "restore", "write"]

#: Version 2 added the run record (key, validation split), the schedule, the
#: callbacks and the History's rates and best epoch; version 1 files resume.
CHECKPOINT_VERSION = 2
_FIELDS_V1 = {"version", "epoch", "step", "rng_state", "history", "optimizer"}
_FIELDS = _FIELDS_V1 | {"run", "schedule", "callbacks"}


def write(
    path: Any, net: Any, opt: Any, state: dict[str, Any], params: list[Any], history: Any, at: Any, buffers: Any = None,
    run: RunRecord | None = None,
) -> None:  # fmt: skip
    """Write the checkpoint for position ``at`` atomically to ``path``."""
    run = RunRecord() if run is None else run
    tensors = model_tensors(net, params, buffers)
    lists, scalars = {}, {}
    for key, value in state.items():
        if isinstance(value, list):
            lists[key] = len(value)
            for i, a in enumerate(value):
                tensors[f"optimizer.{key}.{i}"] = np.asarray(to_numpy(a), order="C")  # keeps 0-d arrays 0-d
        else:
            scalars[key] = _state_number(opt, key, value)
    if at.partial_loss is not None:
        tensors["train.partial_loss"] = np.reshape(to_numpy(at.partial_loss), (1,))
    callbacks = []
    for i, (entry, arrays) in enumerate(zip(run.callbacks, run.callback_arrays)):
        callbacks.append({**entry, "arrays": len(arrays)})
        tensors.update({f"callbacks.{i}.{j}": _callback_tensor(a, net.dtype, entry, j) for j, a in enumerate(arrays)})
        _check_json(entry, i)
    meta = model_metadata(net)
    fields = {
        "version": CHECKPOINT_VERSION,
        "epoch": at.epoch,
        "step": at.step,
        "rng_state": at.rng_state,
        "history": history.to_dict(),
        "optimizer": {"type": opt.name, "config": opt.config(), "scalars": scalars, "lists": lists},
        "run": {"key": run.key, "validation_split": run.validation_split, "shuffle": run.shuffle},
        "schedule": run.schedule,
        "callbacks": callbacks,
    }
    try:  # plain JSON, all finite; NumPy numbers in a config (np.int64(2)) are written as numbers, as in model files
        json.dumps({k: v for k, v in fields.items() if k != "history"}, allow_nan=False, default=_plain_number)
    except TypeError as exc:  # JSON's bare "Object of type X is not JSON serializable" named no component
        raise TypeError(f"cannot write the checkpoint: the optimizer's ({opt.name}) and the schedule's config() and "
                        f"state must hold JSON values only (numbers, strings, lists, dicts): {exc}") from None
    # The validation figures may not be finite (an outlier's squared error overflows float32): JSON's
    # Infinity and NaN, which resume reads back (it refuses them in the training loss and rates only).
    meta["checkpoint"] = json.dumps(fields, default=_plain_number)
    write_atomic(path, tensors, meta)


def _state_number(opt: Any, key: str, value: Any) -> int | float:
    """A plain number of the optimizer's state, as JSON keeps it; refused,
    naming the optimizer and the entry, where it is not one (a step that
    made its count an array): ``json`` failed with a bare ``TypeError`` at
    the first checkpoint, naming neither."""
    number = plain_number(value)
    if number is None:
        raise ValueError(f"{type(opt).__name__}.step returned a {type(value).__name__} as its state {key!r}, which a "
                         "checkpoint cannot keep: an optimizer's state holds lists of arrays (one per parameter) and "
                         "plain numbers (a Python int or float)")  # fmt: skip
    return number


def _callback_tensor(a: Any, dtype: str, entry: dict[str, Any], j: int) -> np.ndarray:
    """A callback's array as the checkpoint keeps it: refused now, naming the
    callback, where resuming would refuse it (only finite arrays of the
    network's dtype are read back from a file)."""
    host = None if a is None else np.asarray(to_numpy(a), order="C")  # keeps 0-d arrays 0-d
    if host is None or host.dtype != np.dtype(dtype) or not np.isfinite(host).all():
        got = "None" if host is None else f"dtype {host.dtype}"
        raise ValueError(f"callback {entry['type']}: get_arrays()[{j}] must be a finite array of the network's "
                         f"dtype ({dtype}) for a checkpoint to resume from, got {got}")  # fmt: skip
    return host


def _check_json(entry: dict[str, Any], i: int) -> None:
    try:
        json.dumps(entry["state"], allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"callback {entry['type']} (callbacks[{i}]): get_state() must return plain JSON values "
                         f"(str, int, float, bool, None, lists and dicts of them; no NaN): {exc}") from None


@dataclass
class Checkpoint:
    """A checkpoint file read and checked against a network and optimizer
    (:func:`read`); :func:`restore` checks the rest against the run."""

    path: Any
    meta: dict[str, Any]
    tensors: dict[str, np.ndarray]
    fields: dict[str, Any]

    @property
    def key(self) -> int | None:
        """The run's random key (``None`` in version 1 files)."""
        return self.fields["run"]["key"]


def read(path: Any, net: Any, opt: Any) -> Checkpoint:
    """The checkpoint at ``path``: its format, version, architecture, dtype,
    optimizer type and run record checked (``ValueError`` naming the file);
    :func:`restore` checks its fields' values, then its checksum."""
    if not os.path.lexists(path):
        raise FileNotFoundError(f"no checkpoint to resume from at {path}")
    meta, tensors = read_model_file(path, verify=False)  # restore checks the checksum after each field
    if "checkpoint" not in meta:
        raise ValueError(f"{path} is a saved model, not a training checkpoint (it has no optimizer or epoch state)")
    ck = _checkpoint_fields(meta["checkpoint"], path)
    config = as_saved(net.config())  # a tuple setting reads back from the file as a list
    if meta["architecture"] != config:
        raise ValueError(
            f"{path} was written for another architecture: {_describe(meta['architecture'])}, "
            f"this network is {_describe(config)}{_layer_difference(meta['architecture'], config)}"
        )
    if meta["dtype"] != net.dtype:
        raise ValueError(f"{path} holds a {meta['dtype']} model, this network is {net.dtype}")
    _check_optimizer_type(ck["optimizer"], opt, path)
    _same_settings(ck["optimizer"], opt, path)
    _check_run(ck["run"], path)
    return Checkpoint(path, meta, tensors, ck)


def restore(
    ck: Checkpoint,
    opt: Any,
    backend: Any,
    *,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    metrics: list[str] | None = None,
    validation: bool | None = None,
    run: RunRecord | None = None,
    schedule: Any = None,
    callbacks: list[Any] | None = None,
) -> tuple[list[Any], list[Any], dict[str, Any], History, Position, Any]:
    """``(params, buffers, optimizer state, History, position, schedule
    state)`` from a checkpoint, after checking every field against this run
    when its ``epochs``, ``steps_per_epoch``, History ``metrics`` names,
    ``validation`` (whether it has validation data), ``run`` record,
    ``schedule`` and ``callbacks`` are given; the callbacks get their state.
    Anything off is a ``ValueError`` naming the file and the field."""
    path, fields, tensors = ck.path, ck.fields, ck.tensors
    epoch, step = _check_position(fields, path, epochs, steps_per_epoch)
    history = _check_history(fields["history"], epoch, path, metrics, validation, fields["version"] == 1, _v1_rate(fields))
    rng_state = _check_rng_state(fields["rng_state"], path)
    host_params, host_buffers = params_from(ck.meta, tensors)
    state, used = _optimizer_state(fields["optimizer"], opt, host_params, tensors, path)
    partial = _partial_loss(tensors, step, ck.meta["dtype"], path)
    if run is not None:
        _same_run(fields["run"], run, path)
    sched_state = _schedule_state(fields["schedule"], schedule, path)
    if schedule is not None:
        _same_base_rate(fields["optimizer"], opt, path)
    used |= _callback_states(fields["callbacks"], callbacks, tensors, ck.meta["dtype"], path, epoch)
    unexpected = set(tensors) - used - {"train.partial_loss"} - {n for n in tensors if n.startswith("layers.")}
    if unexpected:
        raise ValueError(f"{path}: unexpected tensors in a checkpoint: {sorted(unexpected)[:5]}")
    check_checksum(ck.meta, tensors, path)  # last: a tampered field is named by its own check first
    params = [backend.asarray(p) for p in host_params]
    buffers = [backend.asarray(b) for b in host_buffers]
    state = {k: [backend.asarray(a) for a in v] if isinstance(v, list) else v for k, v in state.items()}
    partial = None if partial is None else backend.asarray(partial[0])
    return params, buffers, state, history, Position(epoch, step, rng_state, partial), sched_state


def _checkpoint_fields(text: str, path: Any) -> dict[str, Any]:
    ck = loads_limited(text, f"{path}: the checkpoint metadata")
    version = ck.get("version") if isinstance(ck, dict) else None
    if isinstance(ck, dict) and _is_int(version) and version > CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {version} is newer than this xpnet reads; upgrade xpnet")
    fields = _FIELDS_V1 if version == 1 else _FIELDS
    if not isinstance(ck, dict) or set(ck) != fields:
        got = sorted(ck) if isinstance(ck, dict) else type(ck).__name__
        raise ValueError(f"{path}: the checkpoint metadata must hold {sorted(fields)}, got {_short(got)}")
    if not _is_int(version) or version < 1:
        raise ValueError(f"{path}: checkpoint version must be a positive int, got {_short(version)}")
    if version == 1:  # no run record, schedule or callbacks then
        ck = {**ck, "run": {"key": None, "validation_split": None}, "schedule": None, "callbacks": []}
    return ck


def _v1_rate(fields: dict[str, Any]) -> float | None:
    """Version 1 files have no rates in their History: they ran at the
    optimizer's ``lr`` (there were no schedules)."""
    return _saved_lr(fields["optimizer"]) if fields["version"] == 1 else None


def _saved_lr(info: Any) -> float | None:
    """The ``lr`` of the optimizer a checkpoint names, if it holds a finite one."""
    config = info.get("config") if isinstance(info, dict) else None
    lr = config.get("lr") if isinstance(config, dict) else None
    return float(lr) if isinstance(lr, int | float) and not isinstance(lr, bool) and math.isfinite(lr) else None


def _check_run(run: Any, path: Any) -> None:
    where = f"{path}: checkpoint run"
    if not isinstance(run, dict) or set(run) - {"shuffle"} != {"key", "validation_split"}:  # older: no shuffle
        raise ValueError(f"{where} must be an object with ['key', 'shuffle', 'validation_split'], got {_short(run)}")
    key, share, shuffle = run["key"], run["validation_split"], run.get("shuffle")
    if shuffle is not None and not isinstance(shuffle, bool):
        raise ValueError(f"{where}: shuffle must be true, false or null, got {_short(shuffle)}")
    if key is not None and (not _is_int(key) or not 0 <= key < 2**63):
        raise ValueError(f"{where}: key must be an int in 0..2**63 or null, got {_short(key)}")
    if share is not None and (not _is_number(share) or not 0.0 < share < 1.0):
        raise ValueError(f"{where}: validation_split must be a number in (0, 1) or null, got {_short(share)}")


def _same_run(found: dict[str, Any], run: RunRecord, path: Any) -> None:
    if found["validation_split"] != run.validation_split:
        raise ValueError(
            f"{path}: checkpoint run: the checkpoint's run held out validation_split={found['validation_split']}, "
            f"this one asks for {run.validation_split}"
        )
    shuffled = found.get("shuffle")
    if None not in (shuffled, run.shuffle) and shuffled != run.shuffle:  # the rest on other minibatches
        raise ValueError(f"{path}: checkpoint run: the checkpoint's run was given shuffle={shuffled}, this one asks "
                         f"for shuffle={run.shuffle}; resume with the same shuffle")  # fmt: skip


def _same_base_rate(info: Any, opt: Any, path: Any) -> None:
    """A schedule's saved state carries on from the run's ``lr``, and some
    parts of it (a warm-up's next schedule, a cosine restart) read ``lr``
    again: another ``lr`` on resume would be half applied. Refused."""
    saved, lr = _saved_lr(info), getattr(opt, "lr", None)
    if saved is not None and isinstance(lr, int | float) and saved != float(lr):
        raise ValueError(f"{path}: the checkpoint's run had lr={saved} under its lr_schedule, this one passes "
                         f"lr={lr}; the schedule's saved state goes on from the first: pass lr={saved} to resume "
                         "(or start a new run with the new rate)")  # fmt: skip


def _schedule_state(found: Any, schedule: Any, path: Any) -> Any:
    """The schedule's state, checked against this run's schedule (same name
    and settings; a callable is taken on trust: it stores nothing)."""
    from .registry import component_spec

    where = f"{path}: checkpoint schedule"
    if found is not None and (not isinstance(found, dict) or set(found) != {"spec", "state"}):
        raise ValueError(f"{where} must be null or an object with ['spec', 'state'], got {_short(found)}")
    want = None if schedule is None else component_spec(schedule)
    have = None if found is None else found["spec"]
    if have != want:
        raise ValueError(f"{where}: the checkpoint's run used lr_schedule {_short(have)}, this one {_short(want)}")
    if schedule is None:
        return None
    try:
        schedule.check_state(found["state"])
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return found["state"]


def _callback_states(found: Any, callbacks: list[Any] | None, tensors: dict[str, np.ndarray], dtype: str, path: Any,
                     epoch: int) -> set[str]:  # fmt: skip
    """Hand each callback its state and arrays from the file, checked (a
    built-in's also against the ``epoch`` epochs run); the names of the
    tensors used."""
    where = f"{path}: checkpoint callbacks"
    callbacks = [] if callbacks is None else callbacks
    if not isinstance(found, list) or len(found) != len(callbacks):
        n = len(found) if isinstance(found, list) else _short(found)
        raise ValueError(f"{where}: the checkpoint's run had {n} callback(s), this one has {len(callbacks)}")
    used: set[str] = set()
    for i, (entry, cb) in enumerate(zip(found, callbacks)):
        if not isinstance(entry, dict) or set(entry) != {"type", "state", "arrays"}:
            raise ValueError(f"{where}[{i}] must be an object with ['arrays', 'state', 'type'], got {_short(entry)}")
        if entry["type"] != callback_name(cb):
            raise ValueError(f"{where}[{i}] is a {_short(entry['type'])}, this run's is a {callback_name(cb)}")
        count = entry["arrays"]
        if not _is_int(count) or not 0 <= count <= 100_000:
            raise ValueError(f"{where}[{i}]: arrays must be a count, got {_short(count)}")
        names = [f"callbacks.{i}.{j}" for j in range(count)]
        arrays = [_callback_array(tensors, name, dtype, where) for name in names]
        try:
            cb.set_state(entry["state"])
            getattr(cb, "_check_epochs_run", lambda n: None)(epoch)
            cb.set_arrays(arrays)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}[{i}] ({callback_name(cb)}): {exc}") from None
        used.update(names)
    return used


def _callback_array(tensors: dict[str, np.ndarray], name: str, dtype: str, where: str) -> np.ndarray:
    if name not in tensors:
        raise ValueError(f"{where}: tensor {name} is missing")
    a = tensors[name]
    if a.dtype != np.dtype(dtype) or not np.all(np.isfinite(a)):
        raise ValueError(f"{where}: tensor {name} must hold finite {dtype} values, got {a.dtype}")
    return a


def _check_optimizer_type(info: Any, opt: Any, path: Any) -> None:
    where = f"{path}: checkpoint optimizer"
    keys = {"type", "config", "scalars", "lists"}
    if not isinstance(info, dict) or set(info) != keys:
        raise ValueError(f"{where} must be an object with {sorted(keys)}, got {_short(info)}")
    if info["type"] not in (opt.name, type(opt).__name__):  # the class name: files of xpnet 0.1
        name = info["type"][:60] if isinstance(info["type"], str) else _short(info["type"])
        raise ValueError(f"{path} was written with optimizer {name}, this run uses {opt.name}")


def _same_settings(info: Any, opt: Any, path: Any) -> None:
    """The optimizer's settings other than ``lr`` (which the caller may
    lower) as the checkpoint's run had them at its last epoch: a callback
    may have switched a momentum or a weight decay on during that run, and
    a resume from the optimizer as first passed went on without it (a
    different run, silently) or failed on the state it keeps (a velocity
    SGD without momentum cannot take). Refused, naming each setting."""
    saved, now = info.get("config"), opt.config()
    if not isinstance(saved, dict):
        return  # reported with the optimizer's state
    now = json.loads(json.dumps(now, default=_plain_number))  # as the file holds them: a tuple reads back as a list
    differ = [f"{key}={saved[key]!r} there, {now[key]!r} here" for key in now
              if key != "lr" and key in saved and saved[key] != now[key]]  # fmt: skip
    if differ:
        raise ValueError(f"{path}: the checkpoint's run ended with other {opt.name} settings than this one passes "
                         f"({'; '.join(differ)}; a callback may have changed them during that run): pass "
                         "the optimizer with the checkpoint's settings to resume it")  # fmt: skip


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


def _check_history(
    h: Any, epoch: int, path: Any, metrics: list[str] | None, validation: bool | None, v1: bool = False,
    v1_rate: float | None = None,
) -> History:  # fmt: skip
    """The History so far: one entry per completed epoch in every list
    (``v1``: a version 1 History, which ran at ``v1_rate`` and has no best epoch)."""
    where = f"{path}: checkpoint history"
    keys = {"loss", "val_loss", "metrics", "stopped_early"} | (set() if v1 else {"lr", "best_epoch"})
    if not isinstance(h, dict) or set(h) != keys:
        raise ValueError(f"{where} must be an object with {sorted(keys)}, got {_short(h)}")
    if v1:
        h = {**h, "lr": [] if v1_rate is None else [v1_rate] * epoch, "best_epoch": None}
    if not isinstance(h["stopped_early"], bool):
        raise ValueError(f"{where}: stopped_early must be true or false, got {_short(h['stopped_early'])}")
    loss = _floats(h["loss"], f"{where}: loss", epoch, finite=True)
    val_loss = _floats(h["val_loss"], f"{where}: val_loss", (0, epoch))
    lr = _floats(h["lr"], f"{where}: lr", (0, epoch), finite=True)
    if any(rate < 0 for rate in lr):
        raise ValueError(f"{where}: lr must hold the rates used, none negative, got {_short(h['lr'])}")
    if not isinstance(h["metrics"], dict):
        raise ValueError(f"{where}: metrics must be an object, got {_short(h['metrics'])}")
    found = {k: _floats(v, f"{where}: metrics[{k!r}]", len(val_loss)) for k, v in h["metrics"].items()}
    if validation is not None and epoch and (len(val_loss) == epoch) != validation:
        had = "had" if val_loss else "had no"
        raise ValueError(
            f"{where}: the checkpoint's run {had} validation data (validation_data or validation_split), "
            f"this one {'has' if validation else 'has none'}"
        )
    if metrics is not None and sorted(found) != sorted(metrics):
        raise ValueError(f"{where} records metrics {sorted(found)}, this run asks for {sorted(metrics)}")
    if h["stopped_early"] and not loss:
        raise ValueError(f"{where}: stopped_early is true after no epoch")
    best = h["best_epoch"]
    if best is not None and (not _is_int(best) or not 0 <= best < epoch):
        raise ValueError(f"{where}: best_epoch must be null or an epoch index in 0..{epoch - 1}, got {_short(best)}")
    return History(loss, val_loss, found, h["stopped_early"], lr, best)


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


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _layer_difference(have: Any, want: list[dict[str, Any]]) -> str:
    """The first layer whose settings differ, for a message whose two
    descriptions read the same (the layer types of a network of other
    widths, or of a Dropout rate a callback changed during the run): without
    it the refusal named no difference at all."""
    if _describe(have) != _describe(want):
        return ""
    found = _first_difference(have, want, "layers")
    return "" if found is None else f" (at {found[0]}: {_short(found[1])} there, {_short(found[2])} here)"


def _first_difference(have: Any, want: Any, where: str) -> tuple[str, Any, Any] | None:
    """``(name, saved spec, this spec)`` of the first layer that differs,
    named as the parameters are (``layers.3.1``); containers are entered."""
    if not isinstance(have, list) or not isinstance(want, list) or len(have) != len(want):
        return (where, have, want) if have != want else None
    for i, (a, b) in enumerate(zip(have, want)):
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and {k: v for k, v in a.items() if k != "layers"} == {
            k: v for k, v in b.items() if k != "layers"
        }:  # fmt: skip
            return _first_difference(a.get("layers"), b.get("layers"), f"{where}.{i}")
        return (f"{where}.{i}", a, b)
    return None


def _describe(arch: list[dict[str, Any]]) -> str:
    """An architecture for messages: ``4-8-2 (tanh,softmax)`` for a chain of
    Dense layers, else the layer types in order."""
    specs = [spec if isinstance(spec, dict) else {} for spec in arch]
    if specs and all(spec.get("type") == "Dense" for spec in specs):
        sizes = [specs[0].get("n_in")] + [spec.get("n_out") for spec in specs]
        acts = ",".join(str(spec.get("activation")) for spec in specs)
        return f"{'-'.join(map(str, sizes))} ({acts})"
    return ", ".join(str(spec.get("type")) for spec in specs)
