"""``python -m benchmarks [--quick] [--only W1,W2,...] [--repeats N] [--out DIR] [--gpu]``.

Runs the workloads, prints each one's table, and writes
``results.json`` and ``results.md`` (plus time-stamped copies) to ``--out``
(default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import sys
import time
from typing import Any

from .common import Settings

#: Workload name -> module. W2 runs once per dtype.
WORKLOADS = {
    "W1": "w1",
    "W2": "w2",
    "W3": "w3",
    "W4": "w4",
    "Tiny": "tiny",
    "SK": "sk",
    "Predict": "predict",
    "Wide": "wide",
    "Small": "small",
    "Large": "large",
    "Job": "job",
}

#: The workloads with GPU rows, which ``--gpu`` runs by default.
GPU_WORKLOADS = ("W3", "Tiny", "Predict", "Wide", "Small", "Large", "Job")

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few steps per workload: checks that everything runs (CI)")
    p.add_argument("--only", default="", help=f"comma-separated workloads from {', '.join(WORKLOADS)}")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per workload (default 5; 1 with --quick)")
    p.add_argument("--out", default=DEFAULT_OUT, help="directory for results.json / results.md")
    p.add_argument("--impls", default="",
                   help="comma-separated implementation keys to keep (default: all; one no workload run has: an error)")
    p.add_argument("--no-gpu", action="store_true", help="skip CuPy / CUDA implementations even when usable")
    p.add_argument(
        "--gpu",
        action="store_true",
        help=f"only the GPU rows (CuPy, CUDA torch and their hand-written GPU baselines) of {', '.join(GPU_WORKLOADS)} "
        "(or of --only); an error when no GPU is usable",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS/OpenMP threads for every library (sets OPENBLAS/OMP/MKL_NUM_THREADS before they load; "
        "default: leave the machine's setting)",
    )
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses (W3, Predict)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None and args.threads < 1:  # 0 reaches OpenMP as an invalid OMP_NUM_THREADS
        print(f"--threads must be at least 1, got {args.threads}", file=sys.stderr)
        return 2
    if args.threads is not None and os.environ.get("OMP_NUM_THREADS") != str(args.threads):
        print("--threads only takes effect through `python -m benchmarks` (before NumPy loads)", file=sys.stderr)
        return 2
    if args.gpu and args.no_gpu:
        print("--gpu and --no-gpu exclude each other", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(GPU_WORKLOADS if args.gpu else WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"unknown workload(s) {', '.join(unknown)}; expected some of {', '.join(WORKLOADS)}", file=sys.stderr)
        return 2
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    if repeats < 1:
        print("--repeats must be at least 1", file=sys.stderr)
        return 2
    settings = Settings(quick=args.quick, repeats=repeats, gpu=not args.no_gpu)

    from . import report
    from .harness import Skip, machine_info, measure

    started = time.time()
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    keep = {k.strip() for k in args.impls.split(",") if k.strip()}
    seen_keys: set[str] = set()  # the implementations the workloads run here offer, for --impls' check
    for name in names:
        mod = importlib.import_module(f".{WORKLOADS[name]}", __package__)
        try:
            workloads = mod.build_all(settings, rss=not args.no_rss) if hasattr(mod, "build_all") else [mod.build(settings)]
        except Skip as exc:
            skipped[name] = str(exc)
            print(f"== {name} skipped: {exc}", flush=True)
            continue
        for workload in workloads:
            if args.gpu:
                workload.impls = [i for i in workload.impls if i.device != "cpu" or i.gpu_baseline]
                if all(i.device == "cpu" for i in workload.impls):
                    skipped[workload.name] = "no GPU implementation is usable here (see `xpnet info`)"
                    print(f"== {workload.name} skipped: {skipped[workload.name]}", flush=True)
                    continue
            seen_keys.update(i.key for i in workload.impls)
            if keep:
                workload.impls = [i for i in workload.impls if i.key in keep]
                if not workload.impls:
                    continue
            print(f"== {workload.title}", flush=True)
            res = measure(workload, repeats, warmup=1, log=lambda m: print(m, flush=True))
            results.append(res)
            print(report.workload_table(res), flush=True)
    if args.gpu and not results:
        print("--gpu: no GPU row could run here (CuPy or torch with CUDA needed; `xpnet info` says why)",
              file=sys.stderr)
        return 1
    unmatched = sorted(keep - seen_keys)
    if unmatched and not results:  # nothing ran: keep --out's earlier results rather than write an empty table
        print(_unmatched_impls(unmatched, seen_keys), file=sys.stderr)
        return 2
    info = machine_info()  # after the workloads: threadpoolctl then sees every BLAS they loaded
    doc = {
        "when": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick,
        "repeats": repeats,
        "wall_s": round(time.time() - started, 1),
        "machine": info,
        "workloads": results,
        "skipped": skipped,
    }
    os.makedirs(args.out, exist_ok=True)
    md = report.markdown(doc)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for fname, text in (
        ("results.json", json.dumps(doc, indent=1)),
        ("results.md", md),
        (f"results-{stamp}.json", json.dumps(doc, indent=1)),
    ):
        with open(os.path.join(args.out, fname), "w") as f:
            f.write(text)
    print()
    print(report.targets_table(doc))
    print(f"\nwrote {os.path.join(args.out, 'results.json')} and results.md ({doc['wall_s']} s)")
    if unmatched:  # the rows that matched ran and are written; the typo still fails the command
        print(_unmatched_impls(unmatched, seen_keys), file=sys.stderr)
        return 2
    return 0


def _unmatched_impls(unmatched: list[str], seen: set[str]) -> str:
    """The error for ``--impls`` keys that named no implementation: a typo
    would otherwise drop its row without a word."""
    names = ", ".join(repr(k) for k in unmatched)
    return (f"--impls: no implementation {names} in the workloads run here; "
            f"expected some of {', '.join(sorted(seen)) or '(none)'}")
