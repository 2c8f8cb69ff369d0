"""What ``xpnet train``, ``predict`` and ``info`` do, given parsed arguments.

The data side (reading, splitting, scaling, class labels) is NumPy on the
host; the model computes on the chosen backend. Everything ``predict``
needs to repeat the preparation (feature names, classes, scaling, task) is
stored in ``Network.info`` and so travels inside the model file.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import platform
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._backend import KNOWN_BACKENDS, BackendUnavailable, backend_status, environment_choice, get_backend, to_numpy
from ._cli_data import INFO_VERSION, prediction_inputs, training_data
from ._files import shorten
from ._usage import UsageError
from .columns import features_from_info
from .data_io import DataError
from .modelfile import read_model_file
from .network import MLP, Network
from .preprocessing import split_indices
from .training import TrainingInterrupted

__all__ = ["info", "predict", "train"]

#: Set in the processes other than rank 0 of an ``mpiexec`` job: only rank 0 speaks.
_muted = False


def _say(*parts: Any) -> None:
    if not _muted:
        print(*parts, flush=True)


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------


def train(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    root = _distributed_root(args)
    global _muted
    _muted = not root
    backend = _announced_backend(args)
    data = _announced_data(args)
    net, loss, epochs, control, stopping = _announced_model(args, data, backend)
    # The notes go in before training, so that every checkpoint is a usable model too.
    net.info = {**data.info, "run": _run_options(args, data, control)}
    resume = _resume_from(args, net.info["run"], epochs)
    fit_started = time.perf_counter()
    with _stop_on_signals() as stop:
        try:
            history = net.fit(
                data.X_train, data.y_train, loss=loss, lr=args.lr, epochs=epochs,
                batch_size=args.batch_size, seed=args.seed,
                progress=not args.quiet and sys.stderr.isatty() and root,  # where the bar is drawn
                checkpoint=args.checkpoint, resume=resume, interrupt=stop, distributed=args.distributed, **control,
            )
        except TrainingInterrupted as exc:
            return _interrupted(exc, args, stop.signum) if root else 128 + (stop.signum or signal.SIGINT)
        except FloatingPointError as exc:
            error = _diverged(exc, args, net, root)
            if args.distributed:  # the others wait for rank 0's save: a failing rank's exit aborts the job
                from . import distributed

                distributed.barrier()
            raise error from None
    fit_seconds = time.perf_counter() - fit_started
    if stopping:
        _say(_stopping_outcome(history, epochs))
    _say_scores(net, data)
    _say(f"time: {fit_seconds:.2f} s training, {time.perf_counter() - started:.2f} s in all")
    net.info["epochs"] = history.epochs
    if root:
        _write_outputs(args, net, history, data.task)
    return 0


def _diverged(exc: FloatingPointError, args: argparse.Namespace, net: Network, root: bool) -> FloatingPointError:
    """The error of a run whose loss diverged. The network holds its last
    finite epoch's weights (fit's NaN guard): ``--save`` writes them, or
    they would end with the process that the message says keeps them."""
    kept = getattr(exc, "epochs_kept", 0)
    if not root:
        return exc
    if not kept:  # the initial weights: nothing trained to save
        return exc if args.save is None else FloatingPointError(f"{exc}; nothing was saved to {args.save}")
    if args.save is None:
        return FloatingPointError(f"{exc}; they were not saved (no --save)")
    net.info["epochs"] = kept
    net.save(args.save)
    return FloatingPointError(f"{exc}; saved them to {args.save}")


def _announced_backend(args: argparse.Namespace) -> Any:
    """The backend of ``--backend``/``--device``, and the line that names it."""
    device, gpu_note = _device_for(args)
    backend = _backend(args, device)
    _say(f"backend: {backend.name}, device: {_device_name(backend)}, dtype: {args.dtype}")
    if gpu_note:
        _say(f"note: {gpu_note}")
    return backend


def _announced_data(args: argparse.Namespace) -> Any:
    """The training (and test) rows, with what reading them found out said."""
    data = training_data(args)
    for line in data.lines:
        _say(line)
    for warning in data.warnings:
        _warn(warning)
    return data


def _announced_model(
    args: argparse.Namespace, data: Any, backend: Any
) -> tuple[Network, str, int, dict[str, Any], str]:
    """The network and how to train it (loss, epochs, ``fit`` arguments, the
    early-stopping line, see :func:`_fit_control`), said in two lines."""
    task, n_train = data.task, len(data.y_train)
    n_out = len(data.info["classes"]) if task == "classification" else data.y_train.shape[1]
    sizes = [data.X_train.shape[1], *args.hidden, n_out]
    output, loss = ("softmax", "cross_entropy") if task == "classification" else ("identity", "mse")
    net = _network(args, sizes, output, backend)
    _check_space(args, sizes)
    labels = data.y_train if task == "classification" else None  # fit holds out a share of each class
    epochs, control, stopping = _fit_control(args, n_train, task, labels)
    batch = "full batch" if args.batch_size is None else f"batch {args.batch_size}"
    activations = f"{args.activation}, {output}" if args.hidden else output
    dropout = f", dropout {args.dropout:g}" if args.dropout else ""
    schedule = control.get("lr_schedule")
    schedule = "" if schedule is None else f", lr schedule {args.lr_schedule.describe(schedule)}"
    _say(f"model: MLP {'-'.join(map(str, sizes))} ({activations}{dropout}), {loss} loss, "
         f"{_optimizer_text(control['optimizer'])}{schedule}, {batch}, "
         f"{'at most ' if stopping else ''}{epochs} epochs" + ("" if args.epochs else " (auto)"))
    _say(stopping or _no_stopping_reason(args, n_train))
    return net, loss, epochs, control, stopping


def _say_scores(net: Network, data: Any) -> None:
    """The scores on the test rows, or on the training rows where there are none."""
    if len(data.y_test) > 0:
        X, y, split = data.X_test, data.y_test, "test"
    else:
        X, y, split = data.X_train, data.y_train, "training (no test rows)"
    scores = _scores(net, X, y, data.task, data.info)
    _say(f"{split} " + ", ".join(f"{name}: {value}" for name, value in scores.items()))


def _write_outputs(args: argparse.Namespace, net: Network, history: Any, task: str) -> None:
    """``--save`` and ``--plot`` (rank 0 only)."""
    if args.save:
        net.save(args.save)
        _say(f"saved the model to {args.save}")
    if args.plot:
        _plot(history, args.plot, task)
        _say(f"wrote the loss curves to {args.plot}")


#: --epochs auto: this many epochs for small data (the most, with early stopping; else the count) ...
AUTO_EPOCHS, AUTO_EPOCHS_NO_STOPPING = 500, 100
#: ... and for large data as many as make about this many optimizer steps (at least AUTO_MIN_EPOCHS).
AUTO_STEPS, AUTO_MIN_EPOCHS = 20_000, 5
#: Early stopping needs this many training rows (a validation share of fewer judges nothing).
MIN_ROWS_TO_STOP_EARLY = 20


def _network(args: argparse.Namespace, sizes: list[int], output: str, backend: Any) -> Network:
    """The MLP; with ``--dropout``, a Dropout layer after each hidden layer's activation."""
    if not args.dropout:
        return MLP(sizes, args.activation, output, backend=backend, dtype=args.dtype, seed=args.seed)
    from .layers import Dense, Dropout

    layers: list[Any] = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [Dense(n_in, n_out, args.activation), Dropout(args.dropout)]
    layers.append(Dense(sizes[-2], sizes[-1], output))
    return Network(layers, backend=backend, dtype=args.dtype, seed=args.seed)


def _fit_control(args: argparse.Namespace, n_train: int, task: str,
                 labels: Any = None) -> tuple[int, dict[str, Any], str]:  # fmt: skip
    """How to train: the (most) epochs, the ``fit`` arguments of the
    optimizer, schedule and early stopping, and the line that describes the
    early stopping ("" when it is off; issue 13, items 9 and 10). ``labels``:
    the training rows' classes, of which fit holds out a share each."""
    from .callbacks import EarlyStopping
    from .optimizers import OPTIMIZERS, PRESETS

    held = _validation_rows(args.validation_split, n_train, labels)
    stopping = args.patience > 0 and args.validation_split > 0 and n_train >= MIN_ROWS_TO_STOP_EARLY and held > 0
    n_fit = n_train - held if stopping else n_train
    epochs = args.epochs or auto_epochs(n_fit, args.batch_size, AUTO_EPOCHS if stopping else AUTO_EPOCHS_NO_STOPPING)
    name, preset = PRESETS.get(args.optimizer, (args.optimizer, {}))
    decay = {} if args.weight_decay is None else {"weight_decay": args.weight_decay}
    control: dict[str, Any] = {"optimizer": OPTIMIZERS.lookup(name)(lr=args.lr, **preset, **decay)}
    if args.lr_schedule is not None:
        control["lr_schedule"] = args.lr_schedule(epochs, "val_loss" if stopping else "loss")
    if not stopping:
        return epochs, control, ""
    control["validation_split"] = args.validation_split
    control["metrics"] = ("accuracy",) if task == "classification" else ()
    control["callbacks"] = [EarlyStopping(monitor="val_loss", patience=args.patience, restore_best=True)]
    line = (f"early stopping: on the validation loss of {args.validation_split * 100:g}% of the training rows "
            f"({n_train - n_fit} rows), patience {args.patience} epochs, keeping the best epoch's weights")
    return epochs, control, line


def _validation_rows(share: float, n_train: int, labels: Any) -> int:
    """How many rows ``fit(validation_split=share)`` holds out, by the rule
    that splits them (stratified by ``labels``; the count takes no seed)."""
    if not 0 < share < 1:
        return 0
    return len(split_indices(n_train, share, 0, None if labels is None else np.asarray(labels))[1])


def _no_stopping_reason(args: argparse.Namespace, n_train: int) -> str:
    if args.patience == 0:
        typed = getattr(args.patience, "typed", "0")  # --patience none, as typed
        return f"early stopping: off (--patience {typed}); training all epochs on all training rows"
    if args.validation_split == 0:
        return "early stopping: off (--validation-split 0); training all epochs on all training rows"
    if n_train >= MIN_ROWS_TO_STOP_EARLY:  # every class too small to give a row at this share
        return (f"early stopping: off (--validation-split {args.validation_split:g} of each class's training rows "
                "leaves no validation row: the classes are too small); training all epochs on all training rows")
    return (f"early stopping: off ({n_train} training rows are too few to hold out validation rows; it needs "
            f"{MIN_ROWS_TO_STOP_EARLY}); training all epochs")


def _optimizer_text(opt: Any) -> str:
    """``sgd lr 0.001 momentum 0.9``: every setting that is not the default
    (``--optimizer momentum`` printed as plain SGD)."""
    decay, momentum = getattr(opt, "weight_decay", 0.0), getattr(opt, "momentum", 0.0)
    text = f"{getattr(opt, 'name', '') or type(opt).__name__.lower()} lr {opt.lr:g}"  # a plugin's by its name
    text += (" nesterov" if getattr(opt, "nesterov", False) else "") + (f" momentum {momentum:g}" if momentum else "")
    return text + (f" weight decay {decay:g}" if decay else "")


def _stopping_outcome(history: Any, epochs: int) -> str:
    """Whether training stopped early, and which epoch's weights it kept."""
    best = history.best_epoch
    kept = "" if best is None else (
        f"; restored the weights of epoch {best + 1} (validation loss {history.val_loss[best]:.4g})")
    if history.stopped_early:
        return f"stopped early after epoch {history.epochs} of at most {epochs}{kept}"
    return f"trained all {history.epochs} epochs without stopping early{kept}"


def auto_epochs(n_rows: int, batch_size: int | None, most: int = AUTO_EPOCHS) -> int:
    """``--epochs auto``: enough steps for small tables (iris has 4 steps per
    epoch), few passes over large ones (a million rows make 31,250 steps)."""
    steps = 1 if batch_size is None else max(1, -(-n_rows // batch_size))
    return int(min(most, max(AUTO_MIN_EPOCHS, -(-AUTO_STEPS // steps))))


def keep_jax_programs() -> None:
    """The CLI on JAX keeps its compiled programs on disk, as CuPy keeps its
    kernels (``~/.cupy/kernel_cache``): a second run loads them instead of
    compiling them (the digits run on a 2-core CPU: 2.8 s -> 1.9 s). In
    ``$XDG_CACHE_HOME/xpnet/jax`` (``~/.cache``), unless JAX has a cache
    folder already (``JAX_COMPILATION_CACHE_DIR``) or ``XPNET_JAX_CACHE=0``.
    Set before JAX compiles anything: its cache starts with the first."""
    import jax

    if os.environ.get("XPNET_JAX_CACHE", "1") == "0" or jax.config.jax_compilation_cache_dir:
        return
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xpnet" / "jax"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # no cache folder here (a read-only home): compile every run, as without one
        return
    try:
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # xpnet's programs compile fast
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    except (AttributeError, KeyError, ValueError):  # a JAX without these settings: it compiles every run
        pass


def _warn(message: str) -> None:
    if not _muted:
        print(f"xpnet: warning: {message}", file=sys.stderr, flush=True)


def quick_jax_compiles() -> None:
    """The CLI on JAX compiles without XLA's GPU autotuning, which times
    several algorithms for each matrix product of each program: on an H200
    the digits run took 6.9 s of training and 14.1 s in all on a machine's
    first run, 3.5 s and 7.4 s without it, for products the CLI's tables
    keep small. Left alone where ``XLA_FLAGS`` names an autotune level, or
    once JAX has started its backends (XLA reads the variable then, once)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_gpu_autotune_level" in flags:
        return
    try:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            return
    except (ImportError, AttributeError):  # another JAX: set it, as its backends start late
        pass
    os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_autotune_level=0".strip()


def _backend(args: argparse.Namespace, device: Any) -> Any:
    """The backend; a device it does not have is a bad option value (exit 2)."""
    if _named_backend(args.backend) == "jax":  # before JAX compiles anything
        quick_jax_compiles()
        keep_jax_programs()
    backend = _resolved_backend(args.backend, device)
    jax_float64(backend, args.dtype)
    try:  # a device without float64 (array_api_strict's no_float64): found once the data was read and split
        backend.dtype(args.dtype)
    except ValueError:
        raise UsageError(f"--dtype {args.dtype}: the {backend.name} device {_device_name(backend)!r} does not support "
                         f"{args.dtype} (pass --dtype float32, or another --device; `xpnet info` lists them)") from None
    return backend


def _resolved_backend(name: str | None, device: Any) -> Any:
    """``get_backend``; a backend or device it does not know, or a device a
    usable backend lacks (torch without CUDA asked for ``cuda``), is a bad
    option value (exit 2), in train and predict alike; an unusable backend
    says why (exit 1)."""
    try:
        return get_backend(name, device)
    except BackendUnavailable as exc:
        named = _named_backend(name)
        if device is None or named is None or not backend_status(named).usable:
            raise
        raise UsageError(f"{exc} (`xpnet info` lists the devices usable here)") from None
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{exc} (`xpnet info` lists the devices usable here)") from None


def jax_float64(backend: Any, dtype: str) -> None:
    """The CLI owns its process: float64 asked of JAX (``--dtype``, or a
    float64 model) switches on JAX's 64-bit mode, before any array exists,
    where the library refuses rather than change a setting of its caller's."""
    if backend.name == "jax" and dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)


def _check_space(args: argparse.Namespace, sizes: list[int]) -> None:
    """Refuse, before training, to train a model that --save or --checkpoint
    cannot write for lack of disk space (the size is known once the data is)."""
    weights = sum((n_in + 1) * n_out for n_in, n_out in zip(sizes, sizes[1:]))
    need = weights * np.dtype(args.dtype).itemsize + (1 << 16)
    for option, path in (("--save", args.save), ("--checkpoint", args.checkpoint)):
        if path is None:
            continue
        folder = Path(path).resolve().parent
        try:
            stat = os.statvfs(folder)
        except (OSError, AttributeError):
            continue
        free = stat.f_bavail * stat.f_frsize
        # A file is replaced: the old one and the new one are on disk together. A checkpoint also holds
        # the optimizer state (Adam's two moments) and EarlyStopping's best weights: 4 sets of weights.
        factor = 2 * (4 if option == "--checkpoint" else 1)
        if free < factor * need:
            raise OSError(f"{option} {path}: the folder {folder} has {free / 2**20:.1f} MiB free, the model needs "
                          f"about {factor * need / 2**20:.1f} MiB")


def _distributed_root(args: argparse.Namespace) -> bool:
    """Is this the process that prints and saves? (Always, unless
    ``--distributed`` runs under ``mpiexec`` and this is not rank 0.)"""
    if not args.distributed:
        return True
    from . import distributed

    return distributed.is_root()  # ImportError names the mpi extra


def _named_backend(option: str | None) -> str | None:
    """The backend ``--backend`` names, or for auto the one ``XPNET_BACKEND``
    names (None when auto will choose)."""
    name = environment_choice()[0] if option in (None, "auto") else option
    return None if name is None else name.lower()


def _device_for(args: argparse.Namespace) -> tuple[Any, str | None]:
    """``--device`` (or the device ``XPNET_BACKEND`` gives auto), or under
    ``--distributed`` a GPU per process (local rank % GPUs, so more
    processes than GPUs share them) and rank 0's note of it."""
    if args.device is not None or not args.distributed:
        return args.device, None
    backend = _backend(args, None)  # a bad name or device: exit 2, as without --distributed
    if args.backend in (None, "auto") and environment_choice()[1] is not None:
        return None, None  # the variable's device, for every process
    from . import distributed

    return distributed.assign_gpus(backend.name)


#: Where an interrupted `xpnet train` without --checkpoint leaves its checkpoint.
INTERRUPT_CHECKPOINT = "xpnet-interrupted.checkpoint.safetensors"


#: The options that decide which rows train and test and how a run steps
#: through them: a resumed run must repeat them (``fit`` checks the model).
_RUN_OPTIONS = ("data", "seed", "test_size", "test_data", "batch_size", "lr", "weight_decay", "patience", "missing")
#: The options that decide the model and its training: fit refuses a checkpoint of other ones in its own
#: terms (another architecture, epochs=, lr_schedule=, validation_split=); compared first, named by their flags.
_MODEL_OPTIONS = ("hidden", "activation", "dropout", "optimizer", "lr_schedule", "validation_split")
#: The options that decide which columns are read, and how: named where the training rows differ.
_COLUMN_OPTIONS = ("target", "task", "ignore", "categorical", "max_categories", "sep", "encoding", "decimal",
                   "na_values")


def _run_options(args: argparse.Namespace, data: Any, control: dict[str, Any]) -> dict[str, Any]:
    """The options a resumed run must share with the one that wrote the
    checkpoint (``control``: fit's arguments, for the schedule and
    validation share in effect), and a fingerprint of the training rows
    (the same path may hold other rows by then)."""
    options = {name: getattr(args, name) for name in (*_RUN_OPTIONS, *_COLUMN_OPTIONS)}
    for name in ("data", "test_data"):  # one file however it is written (./t.csv, an absolute path)
        if options[name] is not None:
            options[name] = os.path.realpath(options[name])
    schedule = control.get("lr_schedule")
    options.update(hidden=list(args.hidden), activation=args.activation, dropout=args.dropout,
                   optimizer=args.optimizer, validation_split=control.get("validation_split", 0.0),
                   lr_schedule=None if schedule is None else args.lr_schedule.describe(schedule))
    if args.checkpoint is not None:  # only a resume compares it (hashing costs about a second per GB)
        options["rows"] = _fingerprint(data.X_train, data.y_train)
    return options


def _fingerprint(*arrays: np.ndarray) -> str:
    """A short hash of the arrays' shapes, dtypes and bytes."""
    import hashlib

    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.shape}{a.dtype}".encode())
        digest.update(a.data if a.dtype.kind != "O" else repr(a.tolist()).encode())
    return digest.hexdigest()[:16]


def _resume_from(args: argparse.Namespace, run: dict[str, Any], epochs: int) -> str | None:
    """The checkpoint to resume from (None: start fresh), checked against
    this run's options (``run``) and ``epochs``, said on one line."""
    if not args.resume:
        return None
    if args.checkpoint is None:
        raise ValueError("--resume needs --checkpoint PATH: the checkpoint to resume from")
    if not Path(args.checkpoint).exists():
        _say(f"resume: no checkpoint at {args.checkpoint} yet; starting fresh")
        return None
    meta, _ = read_model_file(args.checkpoint, verify=False)  # the resume checks the checksum after each field
    _same_run_options(args, meta, run)
    _say(_resume_line(args, meta, epochs))
    return args.checkpoint


def _resume_line(args: argparse.Namespace, meta: dict[str, Any], epochs: int) -> str:
    """Where the checkpoint's run stands against --epochs: fewer epochs than
    it holds is refused naming --epochs (fit said 'pass at least epochs=5');
    a run that holds them all has nothing left to train, which is said."""
    import json

    path = args.checkpoint
    try:
        fields = json.loads(meta["checkpoint"])
        epoch, step = int(fields["epoch"]), int(fields["step"])
    except (KeyError, TypeError, ValueError, OverflowError):  # no checkpoint, or a malformed one: fit names it
        return f"resume: continuing from {path}"
    need = epoch + (step > 0)
    if need > epochs:
        given = f"--epochs {epochs}" if args.epochs else f"--epochs auto ({epochs} here)"
        steps = f" and {step} step(s) of the next" if step else ""
        raise DataError(f"{path} holds {epoch} completed epochs{steps}, more than {given} runs",
                        f"pass --epochs {need} or more to resume it")
    if epoch == epochs:
        return f"resume: {path} holds all {epochs} epochs: nothing left to train (a larger --epochs trains on)"
    return f"resume: continuing from {path} ({epoch} of {epochs} epochs done)"


def _same_run_options(args: argparse.Namespace, meta: dict[str, Any], run: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint with other data, split, model or
    stepping options than the run that wrote it had, naming them: another
    --seed or --test-size would hold out other rows (the first epochs
    trained on some of the new test rows), another --data file or other
    rows in it, --batch-size, --lr, --weight-decay or --patience would not
    be the run that was stopped; --hidden, --optimizer, ... fit refuses."""
    info = meta.get("info")
    found = info.get("run") if isinstance(info, dict) else None
    if not isinstance(found, dict):
        return  # a checkpoint of an older xpnet, or of the Python API: fit's own checks apply
    now = {**run, "dtype": args.dtype}
    found = {**found, "dtype": meta["dtype"]}  # the rows' fingerprint hashes their dtype: named before it
    changed = _changed(found, now, ("dtype", *_RUN_OPTIONS, *_MODEL_OPTIONS))
    if not changed and found.get("rows", now["rows"]) != now["rows"]:  # the options that split the rows agree
        changed = _changed(found, now, _COLUMN_OPTIONS)
        if not changed:
            raise DataError(f"{args.checkpoint} was written by a run on other training rows than "
                            f"{args.data or 'the data'} holds now (the file, or a reading option, changed since)",
                            "resume with the data of the run that wrote it, or delete the checkpoint to train "
                            "afresh")  # fmt: skip
    if changed:
        raise DataError(
            f"{args.checkpoint} was written by a run with "
            + ", ".join(f"{_flag(n)} {_given(n, found[n])}" for n in changed) + "; this one has "
            + ", ".join(f"{_flag(n)} {_given(n, now[n])}" for n in changed) + _schedule_note(args, found, now),
            "resume with the options of the run that wrote it, or delete the checkpoint to train afresh",
        )


def _schedule_note(args: argparse.Namespace, found: dict[str, Any], now: dict[str, Any]) -> str:
    """Why a plain ``--lr-schedule cosine`` differs: its length is --epochs,
    so the message's ``cosine:5`` and ``cosine:8`` are numbers the user never
    typed; ``cosine:5`` keeps the run's length with the new --epochs."""
    then, spec = found.get("lr_schedule"), now.get("lr_schedule")
    if not getattr(args.lr_schedule, "follows_epochs", False) or then == spec:
        return ""
    if not (isinstance(then, str) and then.startswith("cosine:") and isinstance(spec, str)):
        return ""
    old, new = then.partition(":")[2], spec.partition(":")[2]
    return f"; cosine without T_MAX decays over --epochs ({old} then, {new} now): --lr-schedule {then} keeps its length"


def _changed(found: dict[str, Any], now: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in found and found[name] != now.get(name)]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _given(name: str, value: Any) -> str:
    """An option's value as the command line spells it."""
    if name == "hidden" and isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    if value is None or value == []:
        return "(not given)"
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


class _StopFlag:
    """Set by SIGINT/SIGTERM: ``fit`` finishes its step, checkpoints, and stops.
    A SIGINT after either (a second Ctrl-C) interrupts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def is_set(self) -> bool:
        return self.signum is not None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        if _muted:  # a process other than rank 0 of a distributed run: the launcher signals every one
            return
        now = "Ctrl-C again" if signum == signal.SIGINT else "send SIGINT"  # a SIGTERM came from no keyboard
        print(f"\nxpnet: {signal.Signals(signum).name}: finishing this step (on JAX, its program: up to 64 steps) "
              f"and writing a checkpoint ({now} to stop at once)", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _stop_on_signals():
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():  # signals go to the main thread only
        yield flag
        return
    previous = {sig: signal.signal(sig, flag) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupted(exc: Any, args: argparse.Namespace, signum: int | None) -> int:
    path = exc.checkpoint
    if path is None and exc.write_checkpoint is not None:
        path = args.checkpoint or _free_interrupt_path()
        exc.write_checkpoint(path)
    name = signal.Signals(signum).name if signum else "interrupt"
    if path is None:
        print(f"xpnet: {name}: stopped; the weights were not finite, so no checkpoint was written", file=sys.stderr)
    else:
        again = [a for a in sys.argv[1:] if a != "--resume"]
        if args.checkpoint is None:
            again += ["--checkpoint", str(path)]
        launcher = "mpiexec -n N " if args.distributed else ""  # the same job again, as many processes
        print(f"xpnet: {name}: stopped after {exc.history.epochs} complete epoch(s); checkpoint written to {path}\n"
              f"xpnet: resume with: {launcher}{shlex.join(['xpnet', *again, '--resume'])}", file=sys.stderr)
    return 128 + (signum or signal.SIGINT)


def _free_interrupt_path() -> str:
    """Where a run without --checkpoint leaves its checkpoint: the default
    name, or, where an earlier interrupted run left one there, the next free
    ``xpnet-interrupted-N...`` (that run's epochs are not written over)."""
    stem, suffix = INTERRUPT_CHECKPOINT.split(".", 1)
    path, n = INTERRUPT_CHECKPOINT, 1
    while os.path.lexists(path):
        n += 1
        path = f"{stem}-{n}.{suffix}"
    return path


def _device_name(backend: Any) -> str:
    """A short device name: ``cuda:0`` for CuPy's index 0, ``CPU_DEVICE`` for
    array_api_strict, the library's own string elsewhere."""
    if backend.name == "cupy":
        return f"cuda:{backend.device.id}"
    return str(getattr(backend.device, "_device", backend.device))


def _scores(net: Network, X: np.ndarray, y: np.ndarray, task: str, info: dict) -> dict[str, str]:
    """Accuracy for classifiers; MSE (in the target's own units) and R^2 for regressors."""
    Y = to_numpy(net.predict(X)).astype(np.float64)
    if task == "classification":
        hits = int((Y.argmax(axis=1) == y).sum())
        return {"accuracy": f"{hits / len(y):.4f} ({hits}/{len(y)} rows)"}
    std = np.asarray(info["y_std"], dtype=np.float64)
    with np.errstate(all="ignore"):
        err = np.mean((Y - y) ** 2, axis=0)  # per output, in standardised units
        spread = np.mean((y - y.mean(axis=0)) ** 2, axis=0)
        r2 = np.where(spread > 0, 1.0 - err / np.where(spread > 0, spread, 1.0), np.nan)
    if not np.any(spread > 0):  # R^2 divides by the target's spread about its mean, which is none here
        why = "one row" if len(y) == 1 else "a constant target"
        return {"mse": _mse_in_units(err, std), "R^2": f"undefined ({why}: no spread to explain)"}
    varying = spread > 0  # a constant output has no R^2: the mean is over the others, and says so
    note = "" if varying.all() else f" (of the {int(varying.sum())} of {varying.size} outputs that vary)"
    return {"mse": _mse_in_units(err, std), "R^2": f"{float(np.mean(r2[varying])):.4f}{note}"}


def _mse_in_units(err: np.ndarray, std: np.ndarray) -> str:
    """``mean(err * std**2)`` formatted, even beyond float64's range (targets
    near 1e308): the exponent is then computed in logarithms."""
    with np.errstate(all="ignore"):
        mse = float(np.mean(err * std**2))
    if np.isfinite(mse):
        return f"{mse:.6g}"
    top = float(np.max(std))
    log10 = 2 * np.log10(top) + np.log10(float(np.mean(err * (std / top) ** 2)))
    exponent = int(np.floor(log10))
    return f"{10 ** (log10 - exponent):.5f}e+{exponent}"


def _plot(history: Any, path: str, task: str) -> None:
    from .plotting import plot_history

    ylabel = "cross-entropy" if task == "classification" else "MSE (standardised target)"
    plot_history(history, path, title="xpnet train", ylabel=ylabel)


# --------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------


def predict(args: argparse.Namespace) -> int:
    from .serialization import network_from

    backend = _resolved_backend(args.backend, args.device)  # before the model is read: a bad option first
    meta, tensors = _read_model(args.model, args.data)
    jax_float64(backend, meta["dtype"])
    net = network_from(meta, tensors, backend)
    info = net.info if isinstance(net.info, dict) else {}
    _check_record_version(info, args.model)
    _check_target_record(info, net.n_out, args.model)
    features = _stored_features(info, net.n_in, args.model)
    X, skipped = prediction_inputs(args, info, features, net.n_in, net.dtype)
    if len(skipped) == 0:
        _no_rows_note(args.data)
    if features is not None and features.unseen_rows:
        _warn(f"{features.unseen_rows} of {len(X)} rows hold a category the model was not trained on "
              "(--unknown ignore: encoded as all zeros)")  # fmt: skip
    try:
        if len(X):
            Y = to_numpy(net.predict(X)).astype(np.float64)
        else:  # every row dropped (a missing value, --missing drop): nothing to predict, each row left empty
            Y = np.zeros((0, net.n_out))
        header, columns = _prediction_columns(net, info, Y)
    except FloatingPointError as exc:  # the CLI's hint would say --dtype float64 to a float64 model too
        exc.hint = _overflow_hint(net.dtype)
        raise
    if skipped.any():
        full = [np.full(len(skipped), "", dtype=object) for _ in columns]
        for out, values in zip(full, columns):
            out[~skipped] = values
        columns = full
        print(f"xpnet: warning: {int(skipped.sum())} row(s) with a missing value got no prediction "
              f"(the model was trained with --missing drop)", file=sys.stderr)
    rows = zip(*columns)
    if args.output:
        _write_output(args.output, header, rows)
    else:
        _csv_stdout()
        _write_csv(sys.stdout, header, rows)
        sys.stdout.flush()
    return 0


def _read_model(model: str, data: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """MODEL's metadata and tensors. When MODEL is no model but DATA is one
    (``xpnet predict data.csv m.safetensors``), the error says the order."""
    try:
        return read_model_file(model)
    except ValueError as exc:
        try:
            read_model_file(data, verify=False)
        except (OSError, ValueError):  # DATA is no model either: the error as it is
            raise exc from None
        raise DataError(str(exc), f"{data} is an xpnet model: the order is `xpnet predict MODEL DATA`") from None


def _no_rows_note(path: str) -> None:
    """A DATA file without rows (an empty day's export) gets a header-only
    output, as a batch job expects, and a note that says why it is empty."""
    from .data_io import check_input_file

    what = "has no data rows (its X has none)" if check_input_file(path)[1] else "has a header but no data rows"
    print(f"xpnet: note: {path} {what}; wrote the header only", file=sys.stderr, flush=True)


def _overflow_hint(dtype: str) -> str:
    """What a user can do about predictions that overflowed in ``dtype``."""
    far = "check the rows: some are likely far beyond those the model was trained on"
    return f"{far}, or retrain the model with --dtype float64" if dtype == "float32" else far


def _write_output(path: str, header: list[str], rows: Any) -> None:
    """The CSV to ``--output``; a failed write (a full disk) names the file."""
    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            _write_csv(f, header, rows)
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise type(exc)(exc.errno, exc.strerror, path) from None  # shown as "<strerror>: <path>"
        raise


def _csv_stdout() -> None:
    """Stdout that is not a terminal (``> out.csv``, a pipe) is a CSV file:
    written in UTF-8, as --output writes it. In the locale's encoding
    (Windows' code page, LANG=C) a label such as '北京' ended the run with the
    file half written. An encoding asked for (PYTHONIOENCODING) is kept."""
    if not sys.stdout.isatty() and "PYTHONIOENCODING" not in os.environ and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")


def _check_record_version(info: dict, model: str) -> None:
    """``info["xpnet_train"]``, the version of the record train writes (its
    columns, scaling, classes): one from a newer xpnet may mean something
    this one would misread, so it is refused rather than predicted with."""
    if "xpnet_train" not in info:  # a model saved from Python, or of the first layout
        return
    version = info["xpnet_train"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{model}: the model's record is malformed (xpnet_train must be a whole number from 1, "
                         f"the version of xpnet train's record, got {shorten(version)}); save it again with xpnet "
                         "train")  # fmt: skip
    if version > INFO_VERSION:
        raise ValueError(f"{model} holds version {version} of xpnet train's record, newer than this xpnet reads "
                         f"({INFO_VERSION}); upgrade xpnet to predict with it")  # fmt: skip


def _check_target_record(info: dict, n_out: int, model: str) -> None:
    """The notes that turn outputs into labels or the target's units, checked
    as the column record is: an edited file ended in an IndexError or a
    KeyError called a bug, or a y_std of another length silently turned
    each row's one output into several; a target of 5 or a class [1, 2]
    became the header '5' or the label '[1, 2]'."""
    problem = _target_names_problem(info) or _classes_problem(info, n_out)
    for key in ("y_mean", "y_std") if "y_mean" in info or "y_std" in info else ():
        if problem is None and not _finite_numbers(info.get(key), n_out):
            problem = f"{key} must be a list of {n_out} finite number(s), one per output, got {shorten(info.get(key))}"
    if problem is not None:
        raise ValueError(f"{model}: the model's target record is malformed ({problem}); "
                         "save it again with xpnet train")  # fmt: skip


def _target_names_problem(info: dict) -> str | None:
    """``target`` and ``targets``, the names that head predict's columns."""
    if "target" in info and not isinstance(info["target"], str):
        return f"target must be a text, the target column's name, got {shorten(info['target'])}"
    targets = info.get("targets")
    if "targets" in info and not (isinstance(targets, list) and all(isinstance(t, str) for t in targets)):
        return f"targets must be a list of texts, the target columns' names, got {shorten(targets)}"
    return None


def _classes_problem(info: dict, n_out: int) -> str | None:
    """``classes`` (one label per output) and ``class_spellings`` (one text per class)."""
    classes = info.get("classes")
    if classes is None:
        return None
    if not isinstance(classes, list) or len(classes) != n_out:
        return f"classes must be a list of {n_out} labels, one per output, got {shorten(classes)}"
    for i, label in enumerate(classes):
        if not (isinstance(label, str | bool | int) or isinstance(label, float) and np.isfinite(label)):
            return f"classes[{i}] must be a label (a text, a finite number or true/false), got {shorten(label)}"
    spellings = info.get("class_spellings")
    if spellings is not None and not (isinstance(spellings, list) and len(spellings) == n_out
                                      and all(isinstance(w, str) for w in spellings)):  # fmt: skip
        return f"class_spellings must be a list of {n_out} texts, one per class, got {shorten(spellings)}"
    return None


def _stored_features(info: dict, n_in: int, model: str) -> Any:
    """The column record (:func:`features_from_info`); a malformed one named with the model."""
    try:
        return features_from_info(info, n_in)
    except ValueError as exc:
        raise ValueError(f"{model}: {exc}") from None


def _finite_numbers(values: Any, n: int) -> bool:
    return isinstance(values, list) and len(values) == n and all(
        isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in values)


def _prediction_columns(net: Network, info: dict, Y: np.ndarray) -> tuple[list[str], list[Any]]:
    """Header and output columns: class labels for a classifier, values in
    the target's units for a regressor."""
    targets = info.get("targets")
    target = str(info.get("target", "prediction"))
    classes = info.get("classes")
    if classes is not None or _softmax_output(net):
        index = Y.argmax(axis=1)
        spellings = info.get("class_spellings")  # as written in the training file: TRUE, not True
        if spellings is not None and classes is not None:  # (checked: one text per class)
            classes = spellings
        labels = np.asarray(classes, dtype=object)[index] if classes is not None else index
        return [target], [labels.tolist()]
    if "y_mean" in info:
        with np.errstate(all="ignore"):
            Y = Y * np.asarray(info["y_std"], dtype=np.float64) + np.asarray(info["y_mean"], dtype=np.float64)
    if not np.isfinite(Y).all():
        raise FloatingPointError("some predictions are beyond float64's range (about 1.8e308)")
    if isinstance(targets, list) and len(targets) == Y.shape[1]:
        header = [str(t) for t in targets]
    else:
        header = [target] if Y.shape[1] == 1 else [f"{target}_{k}" for k in range(Y.shape[1])]
    return header, [Y[:, k].tolist() for k in range(Y.shape[1])]


def _write_csv(f: Any, header: list[str], rows: list[list[Any]]) -> None:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


# --------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------


def info(args: argparse.Namespace) -> int:
    import array_api_compat

    from . import __version__

    _say(f"xpnet {__version__}")
    _say(f"Python {platform.python_version()} ({sys.executable}) on {platform.platform()}")
    _say(f"numpy {np.__version__}, array-api-compat {array_api_compat.__version__}")
    _say("backends:")
    width = max(map(len, KNOWN_BACKENDS))
    for status in backend_status():
        version = status.version or "-"
        if status.usable:
            _say(f"  {status.name:<{width}}  usable      {version:<14} devices: {', '.join(status.devices)}")
        else:
            _say(f"  {status.name:<{width}}  not usable  {version:<14} {status.reason}")
    _say(f"auto choice: {_auto_choice()}")
    _say(f"mpi: {_mpi_line()}")
    return 0


def _mpi_line() -> str:
    """MPI for ``--distributed``: usable (library, CUDA-awareness, world size) or why not."""
    from . import distributed

    usable, reason, _ = distributed.mpi_status()
    return f"usable, {reason}" if usable else f"not usable: {reason}"


def _auto_choice() -> str:
    import os

    env = os.environ.get("XPNET_BACKEND", "").strip()
    why = f"XPNET_BACKEND={env}" if env and env != "auto" else "cupy if usable, else numpy"
    try:
        backend = get_backend()
    except (ValueError, RuntimeError) as exc:
        return f"none: {exc} ({why})"
    return f"{backend.name} on {_device_name(backend)} ({why})"


def _softmax_output(net: Any) -> bool:
    """Does the model end in a softmax (class probabilities)? Any last layer."""
    act = net._root.output_activation()
    return act is not None and act.name == "softmax"
