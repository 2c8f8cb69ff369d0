"""Data-parallel training over MPI: ``fit(..., distributed=True)`` under ``mpiexec``.

Every process of ``MPI.COMM_WORLD`` holds the whole model and the whole data
set and runs the same loop. At the start, rank 0's initial weights, buffers,
optimizer state and shuffling state are broadcast, so all processes start
alike and draw the same global minibatches. Each global minibatch ``[start, stop)`` is split into ``N``
contiguous, near-equal shares (:func:`share`); a process computes the loss and
gradients of its rows, scaled to be its part of the global minibatch loss
(for mean losses: times ``n_local / n_global``), and one ``Allreduce`` of a
single flat buffer (loss, then every gradient) sums the parts. All processes
then hold the same numbers and apply the same update. Layers that need
statistics of the whole minibatch (BatchNorm) sum them over the processes
through the step's :class:`BatchSync` (``Context.sync``), and Dropout draws
each row's mask by its global row index, so N processes train as one.

The buffer goes through the host (NumPy memory) unless the backend is CuPy and
the MPI library is CUDA-aware (:func:`cuda_aware`): then the device buffer is
handed to MPI directly. Everything MPI lives in this module, and ``mpi4py`` is
imported only when one of its functions needs it (install ``xpnet[mpi]``).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ._warnings import caller_stacklevel
from .records import TrainingInterrupted, check_figure

__all__ = [
    "DataParallel",
    "assign_gpus",
    "barrier",
    "cuda_aware",
    "gpu_count",
    "gpu_index",
    "gpu_note",
    "is_root",
    "launched_by_mpiexec",
    "local_rank",
    "mpi_status",
    "rank",
    "share",
    "world_size",
]

INSTALL_HINT = "pip install 'xpnet[mpi]'"

#: Environment variables that process managers set in the processes they start
#: (MPICH/Hydra and Intel MPI, Open MPI, PMIx, Slurm).
_LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "SLURM_PROCID")

#: Errors whose message says it all (bad input, bad arguments, divergence): on
#: abort they are reported in one line; anything else gets its traceback too.
_PLAIN_ERRORS = (ValueError, TypeError, FileNotFoundError, FloatingPointError, ImportError, KeyboardInterrupt)


def _mpi() -> Any:
    """The ``mpi4py.MPI`` module, or ``ImportError`` naming the extra."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(
            f"distributed training needs mpi4py and an MPI library ({INSTALL_HINT}): {_one_line(exc)}"
        ) from exc
    except Exception as exc:  # mpi4py is there but no MPI library loads
        raise ImportError(
            f"mpi4py is installed but cannot load an MPI library ({INSTALL_HINT} brings MPICH): {_one_line(exc)}"
        ) from exc
    return MPI


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def launched_by_mpiexec() -> bool:
    """Was this process started by an MPI process manager (``mpiexec``, ``srun``)?"""
    return any(v in os.environ for v in _LAUNCHER_VARIABLES)


# --------------------------------------------------------------------------
# The world, for callers (the CLI): who am I, how many are we
# --------------------------------------------------------------------------


def world_size() -> int:
    """The number of processes in ``MPI.COMM_WORLD`` (1 outside ``mpiexec``)."""
    return _mpi().COMM_WORLD.Get_size()


def rank() -> int:
    """This process's rank in ``MPI.COMM_WORLD`` (0 outside ``mpiexec``)."""
    return _mpi().COMM_WORLD.Get_rank()


def abort_job(status: int) -> None:
    """End every process of an ``mpiexec`` job from one that failed outside
    ``fit`` (its data file missing on one node, a plugin that fails on one
    rank): the others would wait in their first collective forever. Does
    nothing with one process; never returns with several."""
    if not launched_by_mpiexec() or world_size() == 1:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(0.5)  # as in DataParallel.together: let the launcher forward this rank's message first
    _mpi().COMM_WORLD.Abort(status)
    os._exit(status)


def barrier() -> None:
    """Wait for every process of the job (nothing with one process)."""
    if launched_by_mpiexec() and world_size() > 1:
        _mpi().COMM_WORLD.Barrier()


def is_root() -> bool:
    """Is this rank 0, the process that prints, shows progress and saves?"""
    return rank() == 0


def local_rank() -> int:
    """This process's rank among the processes on the same machine: the GPU
    index to use when every process of a node should get its own GPU."""
    MPI = _mpi()
    node = MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_rank()
    finally:
        node.Free()


# --------------------------------------------------------------------------
# Which GPU each process computes on
# --------------------------------------------------------------------------

#: The device string of GPU ``i`` for each backend that can have GPUs.
_GPU_NAMES = {"cupy": "cuda:{}", "torch": "cuda:{}", "jax": "gpu:{}"}


def gpu_index(local_rank: int, n_gpus: int) -> int:
    """The GPU of the process with this rank on its machine: ``local_rank %
    n_gpus``. More processes than GPUs is common on a workstation; they then
    share the GPUs round robin (4 processes on 2 GPUs: 0, 1, 0, 1)."""
    if n_gpus < 1:
        raise ValueError(f"n_gpus must be at least 1, got {n_gpus}")
    if local_rank < 0:
        raise ValueError(f"local_rank must be >= 0, got {local_rank}")
    return local_rank % n_gpus


def gpu_count(backend: str) -> int:
    """How many GPUs the library of ``backend`` (a name) sees on this machine;
    0 for the CPU backends and when the library or its driver fails."""
    try:
        if backend == "cupy":
            import cupy

            return int(cupy.cuda.runtime.getDeviceCount())
        if backend == "torch":
            import torch

            return torch.cuda.device_count() if torch.cuda.is_available() else 0
        if backend == "jax":
            import jax

            return len(jax.devices("gpu"))
    except Exception:  # no driver, no GPU platform: no GPU to assign
        return 0
    return 0


def assign_gpus(backend: str, comm: Any = None) -> tuple[str | None, str | None]:
    """This process's GPU for ``backend`` (``'cuda:1'``; None where it sees no
    GPU) by :func:`gpu_index`, and on rank 0 a note of every rank's GPU
    (:func:`gpu_note`; None elsewhere). Collective: every process calls it."""
    MPI = _mpi()
    comm = MPI.COMM_WORLD if comm is None else comm
    n_gpus = gpu_count(backend) if backend in _GPU_NAMES else 0
    index = gpu_index(local_rank(), n_gpus) if n_gpus else None
    everyone = comm.allgather((MPI.Get_processor_name(), index, n_gpus))
    device = None if index is None else _GPU_NAMES[backend].format(index)
    return device, gpu_note(everyone) if comm.Get_rank() == 0 else None


def gpu_note(assigned: Sequence[tuple[str, int | None, int]]) -> str | None:
    """One line on who computes where; ``assigned[r]`` is rank ``r``'s
    ``(machine, GPU index or None, GPUs on that machine)``. None without GPUs."""
    groups: dict[tuple[str, int], list[int]] = {}
    gpus_on: dict[str, int] = {}
    for r, (host, index, n_gpus) in enumerate(assigned):
        if index is not None:
            groups.setdefault((host, index), []).append(r)
            gpus_on[host] = n_gpus
    if not groups:
        return None
    several = len(gpus_on) > 1
    parts = [
        f"{host + ' ' if several else ''}cuda:{index} <- rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))}"
        for (host, index), ranks in sorted(groups.items(), key=lambda g: g[1][0])
    ]
    n = sum(gpus_on.values())
    shared = any(len(ranks) > 1 for ranks in groups.values())
    how = "shared, GPU = local rank % GPUs per machine" if shared else "one GPU each"
    line = f"{len(assigned)} processes on {n} GPU{'s' if n != 1 else ''} ({how}): {'; '.join(parts)}"
    without = [r for r, (_, index, _) in enumerate(assigned) if index is None]
    if without:
        line += f"; no GPU seen by rank{'s' if len(without) > 1 else ''} {', '.join(map(str, without))}"
    return line


def cuda_aware() -> bool:
    """Can the MPI library read and write CUDA device memory?

    ``XPNET_MPI_CUDA_AWARE=1`` or ``0`` decides; otherwise the library is
    asked through the ``MPIX_Query_cuda_support`` extension (Open MPI, MPICH).
    The ``mpich`` wheel from PyPI is not CUDA-aware.
    """
    forced = os.environ.get("XPNET_MPI_CUDA_AWARE", "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    _mpi()
    return bool(_query_mpix_cuda_support())


def _query_mpix_cuda_support() -> int:
    """``MPIX_Query_cuda_support()`` from the loaded MPI library, or 0."""
    import ctypes

    try:
        with open("/proc/self/maps") as maps:  # the libmpi that mpi4py loaded
            paths = {line.split()[-1] for line in maps if "/libmpi" in line}
    except OSError:  # not Linux: ask the process's global symbols
        paths = {None}
    for path in sorted(paths, key=str):
        try:
            fn = getattr(ctypes.CDLL(path), "MPIX_Query_cuda_support")
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_int
        return int(fn())
    return 0


def mpi_status() -> tuple[bool, str, int | None]:
    """``(usable, reason, world_size)`` for ``xpnet info``.

    ``usable`` is True when mpi4py imports and an MPI library loads;
    ``reason`` says which library (or why not); ``world_size`` is the number
    of processes of this job (1 outside ``mpiexec``), ``None`` if unusable.
    Importing mpi4py initialises MPI in this process.
    """
    try:
        MPI = _mpi()
        import mpi4py

        size = MPI.COMM_WORLD.Get_size()
        library = MPI.Get_library_version().strip().splitlines()[0]
        library = " ".join(library.replace("Version:", "").split())
        aware = "CUDA-aware" if cuda_aware() else "not CUDA-aware (GPU arrays are staged through the host)"
    except Exception as exc:
        return False, str(exc) if isinstance(exc, ImportError) else _one_line(exc), None
    where = "under mpiexec" if launched_by_mpiexec() else "not under mpiexec"
    return True, f"{library}, mpi4py {mpi4py.__version__}, {aware}; {size} process(es), {where}", size


# --------------------------------------------------------------------------
# Splitting a global minibatch
# --------------------------------------------------------------------------


def share(start: int, stop: int, rank: int, size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous share ``[lo, hi)`` of the rows ``[start, stop)``
    split among ``size`` processes: near-equal, the first ``(stop - start) %
    size`` shares one row longer (as ``numpy.array_split``); a share may be
    empty when there are fewer rows than processes."""
    for name, v in (("start", start), ("stop", stop), ("rank", rank), ("size", size)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise TypeError(f"share: {name} must be an int, got {v!r}")
    if not (0 <= start <= stop and size >= 1 and 0 <= rank < size):
        raise ValueError(f"share: expected 0 <= start <= stop, size >= 1 and 0 <= rank < size, got "
                         f"start={start}, stop={stop}, rank={rank}, size={size}")  # fmt: skip
    base, extra = divmod(stop - start, size)
    lo = start + rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


# --------------------------------------------------------------------------
# The communicator wrapper fit uses
# --------------------------------------------------------------------------


class DataParallel:
    """What ``fit`` needs from MPI, on ``comm`` (default ``MPI.COMM_WORLD``).

    Pass ``fit(..., distributed=DataParallel(comm))`` to train on another
    communicator; ``stats`` then tells how long the exchanges took.
    """

    def __init__(self, comm: Any = None) -> None:
        MPI = _mpi()
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self._in_place = MPI.IN_PLACE
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.cuda_aware = cuda_aware()
        #: Set by each step: did any process's ``interrupt`` ask to stop?
        self.interrupt_requested = False
        #: Seconds in ``Allreduce``, in packing, staging and unpacking, and the
        #: steps. On an asynchronous device (a GPU), staging also waits for the
        #: step's backward pass to finish.
        self.stats = {"allreduce_s": 0.0, "staging_s": 0.0, "steps": 0}
        self._last_allreduce_s = 0.0
        if self.size == 1 and not launched_by_mpiexec():
            warnings.warn(
                "distributed=True, but this process was not started by mpiexec: training on this "
                "process alone (run e.g. `mpiexec -n 2 python script.py` to train on 2)",
                stacklevel=caller_stacklevel(),
            )

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def share(self, start: int, stop: int) -> tuple[int, int]:
        """This process's rows of the global minibatch ``[start, stop)``."""
        return share(start, stop, self.rank, self.size)

    # -- start of training ---------------------------------------------------

    def check_same(self, what: dict[str, Any]) -> None:
        """Raise ``ValueError`` on every process unless all passed equal ``what``
        (shapes and settings: a mismatch would otherwise hang the job)."""
        if self.size == 1:
            return
        everyone = self.comm.allgather(what)
        for r, theirs in enumerate(everyone):
            for key in everyone[0]:
                if theirs.get(key) != everyone[0].get(key):
                    raise ValueError(
                        f"distributed training needs the same data and arguments on every process: "
                        f"{key} is {everyone[0].get(key)!r} on rank 0 but {theirs.get(key)!r} on rank {r}"
                    )

    def from_root(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process (a callable shuffle's order)."""
        return value if self.size == 1 else self.comm.bcast(value, root=0)

    def agreed(self, stop: bool, epochs: int) -> bool:
        """The processes' decisions to stop after ``epochs`` epochs, which
        must agree: ``ValueError`` on every process where they do not (their
        validation data or callbacks differ), where the ones that went on
        would wait in the next step's allreduce forever."""
        votes = self._votes(bool(stop), lambda v: "stop" if v else "go on")
        if votes is not None:
            raise ValueError(f"distributed training needs the same data and arguments on every process, but after "
                             f"epoch {epochs} the processes decided differently whether to stop ({votes}): their "
                             "validation data or callbacks differ")  # fmt: skip
        return stop

    def agreed_rate(self, rate: float, epochs: int) -> None:
        """A schedule's rate decided on each process's own figures
        (``ReduceLROnPlateau``) after ``epochs`` epochs: ``ValueError`` on
        every process where they differ, or the processes would train
        different models from then on."""
        votes = self._votes(float(rate), repr)
        if votes is not None:
            raise ValueError(f"distributed training needs the same data and arguments on every process, but after "
                             f"epoch {epochs} the schedule set different learning rates ({votes}): their validation "
                             "data differ")  # fmt: skip

    def agreed_best(self, best_epoch: int | None, epochs: int) -> None:
        """The epoch whose weights a callback restores at the end
        (EarlyStopping's best), which must be the same on every process:
        ``ValueError`` on every process where it is not (their validation
        data differ), or each would keep the weights of its own best epoch."""
        votes = self._votes(best_epoch, repr)
        if votes is not None:
            raise ValueError(f"distributed training needs the same data and arguments on every process, but after "
                             f"epoch {epochs} the processes' best epochs differ ({votes}), so each would restore its "
                             "own best weights: their validation data differ")  # fmt: skip

    def agreed_edits(self, edited: bool, epochs: int, settings: dict[str, str] | None = None) -> bool:
        """Did a callback set the network's weights after ``epochs`` epochs,
        on every process? On some only, ``ValueError`` on every process: the
        ones that kept the loop's weights would train another model. So for
        ``settings`` (``{what: text}``: the optimizer's with its rate, the
        loss's, the network's), which a callback may change between epochs:
        where they differ, the processes would apply different updates."""
        if self.size == 1:
            return edited
        votes = self.comm.allgather((bool(edited), settings))
        if len({e for e, _ in votes}) > 1:
            shown = ", ".join(f"rank {r}: {'set' if e else 'kept'}" for r, (e, _) in enumerate(votes))
            raise ValueError(f"distributed training needs the same callbacks on every process, but after epoch "
                             f"{epochs} a callback set the network's weights on some processes only ({shown})")
        for r, (_, theirs) in enumerate(votes):
            for key in settings or {}:
                if theirs[key] != settings[key]:
                    raise ValueError(f"distributed training needs the same callbacks on every process, but after "
                                     f"epoch {epochs} a callback changed the {key} on some processes only: "
                                     f"{votes[0][1][key]} on rank 0 but {theirs[key]} on rank {r}")  # fmt: skip
        return edited

    def _votes(self, value: Any, shown: Any) -> str | None:
        """Every process's ``value`` (one ``allgather``): None where they are
        equal, else each rank's, as ``shown`` writes it, for the message."""
        if self.size == 1:
            return None
        votes = self.comm.allgather(value)
        if len(set(votes)) == 1 or len({shown(v) for v in votes}) == 1:  # as written, NaN everywhere agrees
            return None
        return ", ".join(f"rank {r}: {shown(v)}" for r, v in enumerate(votes))

    def broadcast_start(
        self, backend: Any, params: list[Any], buffers: list[Any], state: dict[str, Any], rng: np.random.Generator
    ) -> tuple[list[Any], list[Any], dict[str, Any]]:
        """Rank 0's parameters, buffers (running statistics) and optimizer
        state (returned), and its shuffling state (set into ``rng``). The
        buffers and state matter after fits of each process's own: with
        ``warm_start`` every process continued its own, and the processes
        applied different updates from then on."""
        if self.size == 1:
            return params, buffers, state
        lists = [key for key, value in state.items() if isinstance(value, list)]
        plain = {key: value for key, value in state.items() if key not in lists}  # a step count: plain numbers
        rng.bit_generator.state, plain = self.comm.bcast((rng.bit_generator.state, plain), root=0)
        arrays = self.from_root_arrays(backend, [*params, *buffers, *(a for key in lists for a in state[key])])
        i = len(params) + len(buffers)
        for key in lists:
            plain[key], i = arrays[i : i + len(state[key])], i + len(state[key])
        return arrays[: len(params)], arrays[len(params) : len(params) + len(buffers)], {k: plain[k] for k in state}

    def from_root_arrays(self, backend: Any, arrays: list[Any]) -> list[Any]:
        """Rank 0's ``arrays`` on every process, in one ``Bcast`` per dtype among them."""
        if self.size == 1 or not arrays:
            return arrays
        xp, out = backend.xp, list(arrays)
        for dtype in dict.fromkeys(str(a.dtype) for a in arrays):  # the same order on every process
            which = [i for i, a in enumerate(arrays) if str(a.dtype) == dtype]
            host = _writable(backend.to_numpy(_flat(xp, [arrays[i] for i in which])))
            self.comm.Bcast(host, root=0)
            for i, a in zip(which, _unflat(xp, backend.asarray(host), [arrays[i].shape for i in which])):
                out[i] = a
        return out

    # -- every step ----------------------------------------------------------

    def loss_and_grads(
        self, net: Any, params: list[Any], Xb: Any, Tb: Any, loss: Any, n_global: int, interrupt: Any = None,
        buffers: Any = None, ctx: Any = None,
    ) -> tuple[Any, list[Any], list[Any]]:
        """The global minibatch's loss and gradients, from this process's rows
        ``(Xb, Tb)`` of ``n_global`` and one ``Allreduce``; every process gets
        the same result. Buffers (running statistics) come back from the
        global minibatch's statistics (:class:`BatchSync`), the same on every
        process. Also sets :attr:`interrupt_requested`."""
        stop_here = interrupt is not None and interrupt.is_set()
        n_local = Xb.shape[0]
        if ctx is not None and self.size > 1:
            ctx = self._step_context(ctx, n_local, n_global, loss, net.backend)
        if n_local:
            value, grads, buffers = net._loss_and_grads(params, Xb, Tb, loss, buffers, ctx)
            check_figure(value, f"loss {loss.name or type(loss).__name__!r}: its _value")  # before it is flattened
        else:
            value, grads = None, None
            if ctx is not None and self.size > 1:
                buffers = _take_part(net, params, Xb, buffers, ctx)
        if self.size == 1:
            self.interrupt_requested = stop_here
            return value, grads, buffers
        t0 = time.perf_counter()
        backend, xp = net.backend, net.backend.xp
        with_flag = interrupt is not None
        shapes = [(), *(p.shape for p in params)] + ([()] if with_flag else [])
        if n_local:
            dtype = getattr(xp, net.dtype)  # a value of another dtype (a loss computed wider) would promote the buffer:
            if value.dtype != dtype:  # the gradients too, and its bytes would differ from an empty share's
                value = xp.astype(value, dtype)
            parts = [value, *grads]
            if loss.reduction == "mean" and n_local != n_global:
                scale = backend.asarray(np.asarray(n_local / n_global, dtype=net.dtype))  # on the model's device
                parts = [p * scale for p in parts]
            if with_flag:
                parts.append(backend.asarray(np.asarray([float(stop_here)], dtype=net.dtype)))
            flat = _flat(xp, parts)
        else:  # an empty share contributes zeros (and its interrupt flag)
            host = np.zeros(sum(_count(s) for s in shapes), dtype=net.dtype)
            if with_flag:
                host[-1] = stop_here
            flat = backend.asarray(host)
        if self.cuda_aware and backend.name == "cupy":
            reduced, last = self._allreduce_on_device(backend, flat, with_flag)
        else:
            reduced, last = self._allreduce_through_host(backend, flat)
        parts = _unflat(xp, reduced, shapes)
        self.interrupt_requested = with_flag and last > 0
        self.stats["staging_s"] += time.perf_counter() - t0 - self._last_allreduce_s
        self.stats["steps"] += 1
        return parts[0], parts[1 : 1 + len(params)], buffers

    def _step_context(self, ctx: Any, n_local: int, n_global: int, loss: Any, backend: Any) -> Any:
        """The step's context on this process: Dropout's random source moved
        to this process's first row of the global minibatch (so every row
        gets the mask it gets in one process), and a :class:`BatchSync`."""
        lo, _ = share(0, n_global, self.rank, self.size)
        weight = n_local / n_global if loss.reduction == "mean" else 1.0
        rng = None if ctx.rng is None else ctx.rng.at_row(lo)
        return ctx._replace(rng=rng, sync=BatchSync(self, backend, n_global, weight))

    def _allreduce(self, buffer: Any) -> None:
        t = time.perf_counter()
        self.comm.Allreduce(self._in_place, buffer)
        self._last_allreduce_s = time.perf_counter() - t
        self.stats["allreduce_s"] += self._last_allreduce_s

    def _allreduce_through_host(self, backend: Any, flat: Any) -> tuple[Any, float]:
        """Copy to a NumPy buffer (none for NumPy and torch on the CPU), sum, copy back."""
        host = _writable(backend.to_numpy(flat))
        self._allreduce(host)
        return backend.asarray(host), float(host[-1])

    def _allreduce_on_device(self, backend: Any, flat: Any, with_flag: bool) -> tuple[Any, float]:
        """CUDA-aware MPI: hand the CuPy buffer to MPI without a host copy."""
        import cupy

        with backend.device:  # a cupy.cuda.Device
            cupy.cuda.get_current_stream().synchronize()  # MPI reads the memory, not the stream
            self._allreduce(flat)  # a fresh contiguous array from the concatenation
            return flat, float(flat[-1].get()) if with_flag else 0.0

    # -- failures ------------------------------------------------------------

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """Run a distributed ``fit``: all processes leave it together, or the
        whole job ends.

        On success (and on the :class:`~xpnet.TrainingInterrupted` of an
        ``interrupt``, agreed in the step's allreduce, or the NaN guard's
        ``FloatingPointError``, which every process raises at the same step:
        their losses and weights are the same) a barrier holds the others
        until rank 0 has written its last checkpoint, so a ``resume`` right
        after finds it, and the caller may save the last finite weights (the
        command line's ``--save``). Any other exception may leave processes
        waiting in a collective for this one forever: print it with this
        rank, then ``Abort`` the job. With one process, exceptions propagate
        as usual.
        """
        try:
            yield
        except TrainingInterrupted as exc:
            if not getattr(exc, "every_process", False):  # raised on this process alone (a callback's)
                self._abort(exc)
            self.comm.Barrier()
            raise
        except FloatingPointError as exc:
            if getattr(exc, "epochs_kept", None) is None:  # not the NaN guard's: this process's own
                self._abort(exc)
            self.comm.Barrier()
            raise
        except BaseException as exc:
            self._abort(exc)
        self.comm.Barrier()

    def _abort(self, exc: BaseException) -> None:
        """Re-raise ``exc`` with one process; else print it with this rank and
        end the whole job."""
        if self.size == 1:
            raise exc
        prefix = f"[xpnet rank {self.rank}/{self.size}]"
        lines = [f"{prefix} {_one_line(exc)}; aborting the MPI job"]
        if not isinstance(exc, _PLAIN_ERRORS):
            lines += [f"{prefix} {line}" for line in "".join(traceback.format_exception(exc)).splitlines()]
        print("\n".join(lines), file=sys.stderr, flush=True)
        sys.stdout.flush()
        # The launcher forwards our output through a pipe and stops reading
        # once a process aborts; when every rank fails at once, an Abort
        # can otherwise swallow the others' messages. A moment's grace on
        # this (already failed) path lets them through.
        time.sleep(0.5)
        self.comm.Abort(1)
        # MPICH's Abort may return while the process manager tears the job
        # down; unwinding further (atexit's MPI_Finalize) could hang.
        os._exit(1)


class BatchSync:
    """What a layer needs to compute statistics of the whole global minibatch
    in a distributed fit (``Context.sync``; BatchNorm's mean and variance).

    ``rows``: the global minibatch's rows. ``weight``: the factor this
    process's loss and gradients get before the step's sum (``n_local /
    n_global`` for mean losses, 1 for sums). ``sum(xp, arrays)``: the arrays
    summed over all processes, in one ``Allreduce``; collective, so every
    process must call it at the same point of the same step, which holds
    because every process runs the same layers on its share (an empty share
    too, see :func:`_take_part`)."""

    def __init__(self, dp: DataParallel, backend: Any, rows: int, weight: float) -> None:
        self.dp, self.backend, self.rows, self.weight = dp, backend, rows, weight

    def sum(self, xp: Any, arrays: Sequence[Any]) -> list[Any]:
        flat = _flat(xp, arrays)
        if self.dp.cuda_aware and self.backend.name == "cupy":
            reduced, _ = self.dp._allreduce_on_device(self.backend, flat, False)
        else:
            reduced, _ = self.dp._allreduce_through_host(self.backend, flat)
        return _unflat(xp, reduced, [a.shape for a in arrays])


def _take_part(net: Any, params: list[Any], Xb: Any, buffers: Any, ctx: Any) -> list[Any]:
    """A process with no rows in this minibatch still runs its layers'
    forward and backward on zero rows, so that it joins their collectives
    (:class:`BatchSync`); returns the buffers (the same global statistics as
    everyone's). Its loss and gradients are not used: it contributes zeros."""
    xp, root = net.backend.xp, net._root
    Y, cache, buffers = root.forward(xp, params, net._buffers() if buffers is None else buffers, Xb, ctx)
    root.backward(xp, params, cache, xp.zeros_like(Y), False)
    return buffers


# --------------------------------------------------------------------------
# One contiguous buffer for many arrays
# --------------------------------------------------------------------------


def _count(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _flat(xp: Any, arrays: Sequence[Any]) -> Any:
    """The arrays' entries, one after the other, in one new 1-D array."""
    return xp.concat([xp.reshape(a, (-1,)) for a in arrays])


def _unflat(xp: Any, flat: Any, shapes: Sequence[Sequence[int]]) -> list[Any]:
    """Views of ``flat`` with ``shapes``: the inverse of :func:`_flat`."""
    out, i = [], 0
    for shape in shapes:
        n = _count(shape)
        out.append(xp.reshape(flat[i : i + n], tuple(shape)))
        i += n
    return out


def _writable(host: np.ndarray) -> np.ndarray:
    """A C-contiguous NumPy buffer MPI may write into (a copy only if needed)."""
    if host.flags.c_contiguous and host.flags.writeable:
        return host
    return np.array(host, order="C")
