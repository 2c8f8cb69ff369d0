"""Timing harness: implementations, alternation, statistics, machine facts.

Every workload hands the harness a list of :class:`Impl`. Each repeat runs
every implementation once, in an order rotated by one per repeat (so none is
always first after the garbage collector or always last), after one warm-up
run each. Only ``run()`` is timed; building weights and converting data
(``prepare``) and computing the reported loss or accuracy (``finish``) are
not. GPU implementations synchronise their device right before the clock
starts and right before it stops, so the figure covers the queued work and
not just the Python that launched it.

Ratios are paired: for each repeat, ``time(a) / time(b)`` from the same
round, then the median over rounds. Pairing cancels much of the drift on a
shared two-core machine, where another process can halve the speed of a
whole round.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Run = Callable[[], Callable[[], dict[str, float]]]


def _minflt() -> int:
    """Minor page faults of this process so far: fresh memory from the kernel.
    On some VMs each costs microseconds, so allocation patterns show here."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    except Exception:  # not on this platform
        return 0


def _no_sync() -> None:
    return None


class Skip(Exception):
    """A workload that cannot run here (a package it needs is missing)."""


@dataclass
class Impl:
    """One implementation of a workload.

    ``prepare(warm)`` builds fresh state (same initial weights every time) and
    returns ``run``; ``run()`` is the timed part and returns ``finish``, which
    computes the reported figures (final loss, accuracy) after the clock
    stopped. ``warm=True`` asks for a shortened run for warm-up.
    """

    key: str
    label: str
    prepare: Callable[[bool], Run]
    sync: Callable[[], None] = _no_sync
    device: str = "cpu"
    note: str = ""
    #: A CPU row that a GPU row is compared against: ``--gpu`` keeps it.
    gpu_baseline: bool = False


@dataclass
class Comparison:
    """A paired ratio ``time(num) / time(den)`` and, optionally, its target."""

    num: str
    den: str
    target: float | None = None  # ratio must be <= target
    what: str = ""


@dataclass
class Workload:
    name: str
    title: str
    impls: list[Impl]
    comparisons: list[Comparison] = field(default_factory=list)
    steps: int = 0  # optimizer steps per run, for per-step figures
    meta: dict[str, Any] = field(default_factory=dict)
    extra: Callable[[dict[str, Any]], None] | None = None  # adds derived figures to the result
    #: measurements taken once per round, between the implementations (W3's matmul limit), so that
    #: figures derived from them pair with the same round's times
    probes: dict[str, Callable[[], float]] = field(default_factory=dict)


def measure(workload: Workload, repeats: int, warmup: int = 1, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Warm up, then time every implementation ``repeats`` times, alternating."""
    impls = workload.impls
    for impl in impls:
        for _ in range(warmup):
            run = impl.prepare(True)
            impl.sync()
            run()()
            impl.sync()
    times: dict[str, list[float]] = {impl.key: [] for impl in impls}
    faults: dict[str, list[int]] = {impl.key: [] for impl in impls}
    results: dict[str, dict[str, float]] = {}
    probes: dict[str, list[float]] = {name: [] for name in workload.probes}
    n = len(impls)
    for r in range(repeats):
        shift = r % n
        for name, probe in workload.probes.items():
            probes[name].append(probe())
        for impl in impls[shift:] + impls[:shift]:
            run = impl.prepare(False)
            gc.collect()
            impl.sync()
            f0 = _minflt()
            t0 = time.perf_counter()
            finish = run()
            impl.sync()
            dt = time.perf_counter() - t0
            faults[impl.key].append(_minflt() - f0)
            times[impl.key].append(dt)
            results[impl.key] = finish()
        log(f"  {workload.name} round {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items()))
    out_impls = {}
    for impl in impls:
        ts = times[impl.key]
        med = statistics.median(ts)
        out_impls[impl.key] = {
            "label": impl.label,
            "device": impl.device,
            "note": impl.note,
            "times_s": ts,
            "median_s": med,
            "min_s": min(ts),
            "max_s": max(ts),
            "per_step_us": med / workload.steps * 1e6 if workload.steps else None,
            "minor_faults_per_step": statistics.median(faults[impl.key]) / max(workload.steps, 1),
            "result": results[impl.key],
        }
    comps = []
    for c in workload.comparisons:
        if c.num not in times or c.den not in times:
            continue
        ratios = [a / b for a, b in zip(times[c.num], times[c.den])]
        med = statistics.median(ratios)
        comps.append(
            {
                "num": c.num,
                "den": c.den,
                "what": c.what,
                "ratios": ratios,
                "median": med,
                "min": min(ratios),
                "max": max(ratios),
                "target": c.target,
                "met": None if c.target is None else med <= c.target,
            }
        )
    res = {
        "name": workload.name,
        "title": workload.title,
        "steps": workload.steps,
        "repeats": repeats,
        "meta": workload.meta,
        "impls": out_impls,
        "comparisons": comps,
        "probes": probes,
    }
    if workload.extra is not None:
        workload.extra(res)
    return res


# --------------------------------------------------------------------------
# Synchronisation for GPU implementations
# --------------------------------------------------------------------------


def cupy_sync() -> None:
    import cupy

    cupy.cuda.Device().synchronize()


def torch_sync_for(device: Any) -> Callable[[], None]:
    if device == "cpu":  # nothing to wait for, and no import (the RSS runs count it)
        return _no_sync
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return lambda: torch.cuda.synchronize(dev)
    return _no_sync


def torch_devices(gpu: bool) -> list[tuple[str, str, Callable[[], None]]]:
    """``(device, key suffix, sync)`` for a workload's torch rows: the CPU,
    and CUDA where ``gpu`` asks for it and it is usable; none without torch."""
    if not have("torch"):
        return []
    devs = ["cpu"] + (["cuda"] if gpu and torch_cuda_usable() else [])
    return [(dev, "" if dev == "cpu" else "-cuda", torch_sync_for(dev)) for dev in devs]


def cupy_usable() -> bool:
    try:
        from xpnet._backend import backend_status

        return backend_status("cupy").usable
    except Exception:
        return False


def torch_cuda_usable() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def jax_gpu_usable() -> bool:
    """JAX with a GPU as its default device."""
    if not have("jax"):
        return False
    try:
        import jax

        return jax.devices()[0].platform in ("gpu", "cuda", "rocm")
    except Exception:
        return False


def have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# --------------------------------------------------------------------------
# Machine description
# --------------------------------------------------------------------------

ENV_VARS = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:
        return None
    return getattr(mod, "__version__", "?")


def _git_commit() -> str | None:
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(
            ["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode != 0:
            return None
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except Exception:
        return None


def machine_info() -> dict[str, Any]:
    """CPU, memory, BLAS (via threadpoolctl) and its threads, env, versions."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "mem_total_gib": _mem_total_gib(),
        "python": sys.version.split()[0],
        "env": {k: os.environ.get(k, "(unset)") for k in ENV_VARS},
        "git_commit": _git_commit(),
    }
    versions = {}
    for mod in ("xpnet", "numpy", "array_api_compat", "torch", "sklearn", "jax", "cupy", "threadpoolctl"):
        v = _version(mod) if mod in ("xpnet", "numpy", "array_api_compat", "threadpoolctl") or have(mod) else None
        if v is not None:
            versions[mod] = v
    info["versions"] = versions
    pools = []
    try:
        import numpy  # noqa: F401  (load its BLAS so threadpoolctl sees it)
        from threadpoolctl import threadpool_info

        for p in threadpool_info():
            pools.append(
                {
                    "user_api": p.get("user_api"),
                    "internal_api": p.get("internal_api"),
                    "num_threads": p.get("num_threads"),
                    "version": p.get("version"),
                    "architecture": p.get("architecture"),
                    "threading_layer": p.get("threading_layer"),
                    "library": os.path.basename(p.get("filepath", "")),
                }
            )
    except Exception as exc:  # threadpoolctl missing: say so rather than fail
        pools.append({"error": f"threadpoolctl unavailable: {exc}"})
    info["threadpools"] = pools
    if "torch" in sys.modules:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "other"
        if torch.cuda.is_available():
            info["torch_cuda_device"] = torch.cuda.get_device_name(0)
    if cupy_usable():
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["cupy_device"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return info


def numpy_blas(info: dict[str, Any]) -> str:
    """A one-line description of NumPy's BLAS pool(s)."""
    parts = []
    for p in info.get("threadpools", []):
        if p.get("user_api") == "blas":
            parts.append(
                f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, "
                f"{p.get('num_threads')} threads, {p.get('library')})"
            )
    return "; ".join(parts) or "unknown"


def median(xs: list[float]) -> float:
    return statistics.median(xs)
