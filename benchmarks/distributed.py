"""Data-parallel training with 1 and 2 processes: a W3-style step under MPI.

The workload: an MLP 784 -> 1024 -> 1024 -> 10 (ReLU, softmax output,
cross-entropy), float32, SGD, global batch 1024, a few dozen steps on
synthetic data (one epoch of ``--steps`` minibatches, shuffled).

One measurement, under ``mpiexec`` (every rank runs it; rank 0 prints one
JSON line)::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 mpiexec -n 2 python -m benchmarks.distributed

With ``-n 1`` the run is a plain ``fit`` (the baseline); with more processes
``fit(distributed=...)``, and the JSON also holds the time spent in
``Allreduce`` and in packing/staging the gradient buffer.

Both, and a Markdown table (BLAS pinned to one thread per process; ``1x2``
adds one process with two BLAS threads)::

    python -m benchmarks.distributed --launch 1,2,1x2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = [784, 1024, 1024, 10]
PINNED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped data: 784 features in [0, 1), labels from a random linear teacher."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, SIZES[0]), dtype=np.float32)
    teacher = rng.standard_normal((SIZES[0], SIZES[-1])).astype(np.float32)
    return X, np.argmax(X @ teacher, axis=1)


def measure(args: argparse.Namespace) -> dict | None:
    """Time ``fit`` on this MPI job; rank 0 returns the result, others ``None``."""
    import xpnet
    from xpnet.distributed import DataParallel, _mpi

    MPI = _mpi()
    comm = MPI.COMM_WORLD
    size, rank = comm.Get_size(), comm.Get_rank()
    X, y = synthetic(args.steps * args.batch)
    backend = xpnet.get_backend(args.backend)

    def run(steps: int) -> tuple[float, object, object]:
        net = xpnet.MLP(SIZES, "relu", "softmax", backend=backend, dtype="float32", seed=0)
        dp = DataParallel(comm) if size > 1 else None
        n = steps * args.batch
        comm.Barrier()
        t0 = time.perf_counter()
        history = net.fit(
            X[:n], y[:n], loss="cross_entropy", optimizer="sgd", lr=args.lr, epochs=1, batch_size=args.batch,
            seed=0, distributed=dp or False,
        )  # fmt: skip
        comm.Barrier()
        return time.perf_counter() - t0, history, dp

    run(2)  # warm-up: BLAS, allocator, MPI shared-memory channels
    best = None
    for _ in range(args.repeats):
        seconds, history, dp = run(args.steps)
        if best is None or seconds < best[0]:
            best = (seconds, history, dp)
    seconds, history, dp = best
    bare = bare_allreduce_seconds(comm, MPI, SIZES)
    if rank != 0:
        return None
    stats = dp.stats if dp is not None else {"allreduce_s": 0.0, "staging_s": 0.0, "steps": 0}
    n_params = sum(a * b + b for a, b in zip(SIZES[:-1], SIZES[1:]))
    return {
        "processes": size,
        "backend": str(backend),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
        "steps": args.steps,
        "batch": args.batch,
        "rows_per_process": -(-args.batch // size),
        "seconds": seconds,
        "ms_per_step": 1e3 * seconds / args.steps,
        "samples_per_s": args.steps * args.batch / seconds,
        "allreduce_ms_per_step": 1e3 * stats["allreduce_s"] / args.steps,
        "staging_ms_per_step": 1e3 * stats["staging_s"] / args.steps,
        "comm_share": (stats["allreduce_s"] + stats["staging_s"]) / seconds,
        "bare_allreduce_ms": 1e3 * bare,
        "buffer_mb": (n_params + 1) * 4 / 1e6,
        "loss": history.loss[-1],
        "repeats": args.repeats,
    }


def bare_allreduce_seconds(comm, MPI, sizes: list[int], repeats: int = 20) -> float:
    """The median time of one Allreduce of the step's buffer when every process
    arrives at once (after a barrier): the transfer alone, without the wait
    for a slower process that the in-training figure includes."""
    n = 1 + sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    buf = np.ones(n, dtype=np.float32)
    times = []
    for _ in range(repeats):
        comm.Barrier()
        t0 = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buf)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def launch(args: argparse.Namespace) -> int:
    """Run ``mpiexec -n N`` for each N, then print the table."""
    mpiexec = str(Path(sys.executable).with_name("mpiexec"))
    if not Path(mpiexec).exists():
        mpiexec = shutil.which("mpiexec") or "mpiexec"
    results = []
    for item in args.launch.split(","):
        n, _, threads = item.partition("x")
        blas = {k: threads or "1" for k in PINNED}
        env = {**os.environ, **blas, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
        cmd = [mpiexec, "-n", n, sys.executable, "-m", "benchmarks.distributed"]
        cmd += ["--steps", str(args.steps), "--batch", str(args.batch), "--repeats", str(args.repeats)]
        cmd += ["--backend", args.backend]
        print("$", " ".join(cmd), file=sys.stderr, flush=True)
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True, timeout=args.timeout)
        line = [s for s in done.stdout.splitlines() if s.startswith("{")][-1]
        results.append(json.loads(line))
        print(line, file=sys.stderr, flush=True)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def table(results: list[dict]) -> str:
    base = results[0]["samples_per_s"]
    rows = [
        "| processes | BLAS threads each | rows/process/step | ms/step | samples/s | speedup | Allreduce ms/step | staging ms/step "
        "| communication share | bare Allreduce ms | final loss |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r['processes']} | {r['blas_threads']} | {r['rows_per_process']} | {r['ms_per_step']:.1f} | {r['samples_per_s']:.0f} "
            f"| {r['samples_per_s'] / base:.2f}x | {r['allreduce_ms_per_step']:.2f} | {r['staging_ms_per_step']:.2f} "
            f"| {100 * r['comm_share']:.1f}% | {r['bare_allreduce_ms']:.2f} | {r['loss']:.6f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=32, help="minibatches per timed run (default 32)")
    parser.add_argument("--batch", type=int, default=1024, help="global batch size (default 1024)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the fastest counts (default 3)")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--backend", default="numpy")
    parser.add_argument(
        "--launch", metavar="N,M,...", help="run mpiexec -n N, -n M, ... and print a table; NxT gives T BLAS threads "
        "per process (default 1), e.g. 1,2,1x2",
    )  # fmt: skip
    parser.add_argument("--json", metavar="PATH", help="with --launch: also write the results as JSON")
    parser.add_argument("--timeout", type=float, default=600, help="with --launch: seconds per mpiexec run")
    args = parser.parse_args(argv)
    for name in ("steps", "batch", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    # checked here: `mpiexec -n 0` (or -n '') runs one process, a row nobody asked for, in silence
    items = args.launch.split(",") if args.launch else []
    bad = [item for item in items if not re.fullmatch(r"[1-9]\d*(x[1-9]\d*)?", item)]
    if bad:
        parser.error(f"--launch takes process counts N or NxT (T BLAS threads each), such as 1,2,1x2; "
                     f"got {', '.join(map(repr, bad))}")
    if args.launch:
        return launch(args)
    result = measure(args)
    if result is not None:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
