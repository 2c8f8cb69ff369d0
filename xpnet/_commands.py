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
import platform
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._backend import KNOWN_BACKENDS, backend_status, get_backend, to_numpy
from .data_io import Dataset, read_features, read_training_data
from .network import MLP, Network
from .preprocessing import choose_task, encode_classes, scaling, split_indices, standardize
from .training import TrainingInterrupted

__all__ = ["info", "predict", "train"]

#: Version of the layout of ``Network.info`` written by ``xpnet train``.
INFO_VERSION = 1


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
    _check_outputs(args)  # fail before training, not after it
    root = _distributed_root(args)
    global _muted
    _muted = not root
    device, gpu_note = _device_for(args)
    backend = get_backend(args.backend, device)
    _say(f"backend: {backend.name}, device: {_device_name(backend)}, dtype: {args.dtype}")
    if gpu_note:
        _say(f"note: {gpu_note}")

    data = _training_data(args)
    task, X, y, train_rows, test_rows, notes = _prepare(data, args)
    classes = notes.get("classes")
    what = f"{len(classes)} classes" if classes is not None else f"regression, {y.shape[1]} output(s)"
    _say(f"data: {data.source}, {len(y)} rows, {data.X.shape[1]} features, target {data.target!r} ({what})")
    _say(f"split: {len(train_rows)} training rows, {len(test_rows)} test rows (seed {args.seed}); "
         "features standardised on the training rows")

    n_out = len(classes) if classes is not None else y.shape[1]
    sizes = [X.shape[1], *args.hidden, n_out]
    output, loss = ("softmax", "cross_entropy") if task == "classification" else ("identity", "mse")
    net = MLP(sizes, args.activation, output, backend=backend, dtype=args.dtype, seed=args.seed)
    batch = "full batch" if args.batch_size is None else f"batch {args.batch_size}"
    activations = f"{args.activation}, {output}" if args.hidden else output
    _say(f"model: MLP {'-'.join(map(str, sizes))} ({activations}), {loss} loss, "
         f"{args.optimizer} lr {args.lr:g}, {batch}, {args.epochs} epochs")

    Xtr, ytr, Xte, yte = X[train_rows], y[train_rows], X[test_rows], y[test_rows]
    held_out = len(test_rows) > 0
    # The notes go in before training, so that every checkpoint is a usable model too.
    net.info = {"xpnet_train": INFO_VERSION, "task": task, "features": data.features, "target": data.target,
                **notes, "source": data.source}
    resume = _resume_from(args)
    fit_started = time.perf_counter()
    with _stop_on_signals() as stop:
        try:
            history = net.fit(
                Xtr, ytr, loss=loss, optimizer=args.optimizer, lr=args.lr, epochs=args.epochs,
                batch_size=args.batch_size, seed=args.seed,
                progress=not args.quiet and sys.stdout.isatty() and root,
                validation_data=(Xte, yte) if held_out else None,
                metrics=("accuracy",) if task == "classification" and held_out else (),
                checkpoint=args.checkpoint, resume=resume, interrupt=stop, distributed=args.distributed,
            )
        except TrainingInterrupted as exc:
            return _interrupted(exc, args, stop.signum) if root else 128 + (stop.signum or signal.SIGINT)
    fit_seconds = time.perf_counter() - fit_started

    Xr, yr, split = (Xte, yte, "test") if held_out else (Xtr, ytr, "training (no test rows)")
    scores = _scores(net, Xr, yr, task, notes)
    _say(f"{split} " + ", ".join(f"{name}: {value}" for name, value in scores.items()))
    _say(f"time: {fit_seconds:.2f} s training, {time.perf_counter() - started:.2f} s in all")

    net.info["epochs"] = history.epochs
    if not root:
        return 0
    if args.save:
        net.save(args.save)
        _say(f"saved the model to {args.save}")
    if args.plot:
        _plot(history, args.plot, task)
        _say(f"wrote the loss curves to {args.plot}")
    return 0


def _distributed_root(args: argparse.Namespace) -> bool:
    """Is this the process that prints and saves? (Always, unless
    ``--distributed`` runs under ``mpiexec`` and this is not rank 0.)"""
    if not args.distributed:
        return True
    from . import distributed

    return distributed.is_root()  # ImportError names the mpi extra


def _device_for(args: argparse.Namespace) -> tuple[Any, str | None]:
    """``--device``, or under ``--distributed`` a GPU per process (local rank
    % GPUs, so more processes than GPUs share them) and rank 0's note of it."""
    if args.device is not None or not args.distributed:
        return args.device, None
    from . import distributed

    return distributed.assign_gpus(get_backend(args.backend).name)


#: Where an interrupted `xpnet train` without --checkpoint leaves its checkpoint.
INTERRUPT_CHECKPOINT = "xpnet-interrupted.checkpoint.safetensors"


def _resume_from(args: argparse.Namespace) -> str | None:
    if not args.resume:
        return None
    if args.checkpoint is None:
        raise ValueError("--resume needs --checkpoint PATH: the checkpoint to resume from")
    if not Path(args.checkpoint).exists():
        _say(f"resume: no checkpoint at {args.checkpoint} yet; starting fresh")
        return None
    _say(f"resume: continuing from {args.checkpoint}")
    return args.checkpoint


class _StopFlag:
    """Set by SIGINT/SIGTERM: ``fit`` finishes its step, checkpoints, and stops.
    A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def is_set(self) -> bool:
        return self.signum is not None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\nxpnet: {signal.Signals(signum).name}: finishing this step and writing a checkpoint "
              "(Ctrl-C again to stop at once)", file=sys.stderr, flush=True)


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
        path = args.checkpoint or INTERRUPT_CHECKPOINT
        exc.write_checkpoint(path)
    name = signal.Signals(signum).name if signum else "interrupt"
    if path is None:
        print(f"xpnet: {name}: stopped; the weights were not finite, so no checkpoint was written", file=sys.stderr)
    else:
        again = [a for a in sys.argv[1:] if a != "--resume"]
        if args.checkpoint is None:
            again += ["--checkpoint", str(path)]
        print(f"xpnet: {name}: stopped after {exc.history.epochs} complete epoch(s); checkpoint written to {path}\n"
              f"xpnet: resume with: xpnet {' '.join(again)} --resume", file=sys.stderr)
    return 128 + (signum or signal.SIGINT)


def _prepare(data: Dataset, args: argparse.Namespace) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """Task, standardised ``X``, encoded ``y``, the split, and the notes that
    let ``predict`` repeat all of it (classes, scaling statistics).

    Classes become labels ``0..K-1``; regression targets are standardised
    too (on the training rows), so the learning rate suits any target scale."""
    task = choose_task(data.y, data.y_kind, args.task)
    notes: dict[str, Any] = {}
    if task == "classification":
        notes["classes"], y = encode_classes(data.y)
    else:
        y = data.y.reshape(len(data.y), -1)
    train_rows, test_rows = split_indices(len(y), args.test_size, args.seed, y if task == "classification" else None)
    x_mean, x_std = scaling(data.X[train_rows])
    notes.update(x_mean=x_mean.tolist(), x_std=x_std.tolist())
    if task == "regression":
        y_mean, y_std = scaling(y[train_rows])
        y = standardize(y, y_mean, y_std)
        notes.update(y_mean=y_mean.tolist(), y_std=y_std.tolist())
    return task, standardize(data.X, x_mean, x_std), y, train_rows, test_rows, notes


def _device_name(backend: Any) -> str:
    """A short device name: ``cuda:0`` for CuPy's index 0, ``CPU_DEVICE`` for
    array_api_strict, the library's own string elsewhere."""
    if backend.name == "cupy":
        return f"cuda:{backend.device.id}"
    return str(getattr(backend.device, "_device", backend.device))


def _check_outputs(args: argparse.Namespace) -> None:
    for option, path in (("--save", args.save), ("--plot", args.plot)):
        if path is None:
            continue
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"{option} {path} is a folder; give a file name")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"{option} {path}: the folder {path.parent} does not exist")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError("--plot needs matplotlib, which is not installed: pip install 'xpnet[plot]'") from None


def _training_data(args: argparse.Namespace) -> Dataset:
    if args.data is not None:
        return read_training_data(args.data, args.target)
    if args.target is not None:
        raise ValueError("--target selects a column of --data; the shipped digits have no columns to choose")
    from .datasets import load_digits

    X, y = load_digits()
    features = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    return Dataset(X, y, "integer", features, "digit", "digits (shipped with xpnet)")


def _scores(net: Network, X: np.ndarray, y: np.ndarray, task: str, notes: dict) -> dict[str, str]:
    """Accuracy for classifiers; MSE (in the target's own units) and R^2 for regressors."""
    Y = to_numpy(net.predict(X)).astype(np.float64)
    if task == "classification":
        hits = int((Y.argmax(axis=1) == y).sum())
        return {"accuracy": f"{hits / len(y):.4f} ({hits}/{len(y)} rows)"}
    std = np.asarray(notes["y_std"])
    err = (Y - y) * std  # standardised targets back to their units
    mse = float(np.mean(err**2))
    total = float(np.sum((y * std - (y * std).mean(axis=0)) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / total if total > 0 else float("nan")
    return {"mse": f"{mse:.6g}", "R^2": f"{r2:.4f}"}


def _plot(history: Any, path: str, task: str) -> None:
    from .plotting import plot_history

    ylabel = "cross-entropy" if task == "classification" else "MSE (standardised target)"
    plot_history(history, path, title="xpnet train", ylabel=ylabel)


# --------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------


def predict(args: argparse.Namespace) -> int:
    from .serialization import load

    net = load(args.model, backend=args.backend, device=args.device)
    info = net.info if isinstance(net.info, dict) else {}
    X = read_features(args.data, info.get("features"), net.n_in)
    if "x_mean" in info:
        X = standardize(X, info["x_mean"], info["x_std"])
    Y = to_numpy(net.predict(X)).astype(np.float64)

    target = str(info.get("target", "prediction"))
    classes = info.get("classes")
    if classes is not None or _softmax_output(net):
        index = Y.argmax(axis=1)
        labels = [classes[i] for i in index] if classes is not None else index.tolist()
        header, rows = [target], [[label] for label in labels]
    else:
        if "y_mean" in info:
            Y = Y * np.asarray(info["y_std"]) + np.asarray(info["y_mean"])
        header = [target] if Y.shape[1] == 1 else [f"{target}_{k}" for k in range(Y.shape[1])]
        rows = [[repr(float(v)) for v in row] for row in Y]
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as f:
            _write_csv(f, header, rows)
    else:
        _write_csv(sys.stdout, header, rows)
        sys.stdout.flush()
    return 0


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
