"""``python -m benchmarks.rss WORKLOAD KEY [--quick]``: peak RSS of one
implementation in this fresh process (``VmHWM``); prints one JSON line.

Only the implementation's own libraries get imported (a NumPy run never
loads torch), so the figures compare what each one really holds.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import resource

from .common import Settings
from .run import WORKLOADS


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_rss_mib() -> float:
    """This process's RSS high-water mark.

    ``VmHWM`` belongs to the process's own address space, which ``exec``
    makes new; ``getrusage().ru_maxrss`` is not reset by ``exec`` and would
    report the (much bigger) parent that spawned us."""
    try:
        return _status_mib("VmHWM")
    except (OSError, RuntimeError):  # not Linux
        import sys

        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _has_proc() -> bool:
    import os

    return os.path.exists("/proc/self/status")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("workload")
    p.add_argument("key")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    mod = importlib.import_module(f".{WORKLOADS[a.workload]}", __package__)
    workload = mod.build(Settings(quick=a.quick, repeats=1, gpu=False), rss=False)
    impl = next(i for i in workload.impls if i.key == a.key)
    run = impl.prepare(False)
    gc.collect()
    before = _status_mib("VmRSS") if _has_proc() else 0.0
    run()
    peak = peak_rss_mib()
    print(json.dumps({"peak_rss_mib": round(peak, 1), "rss_growth_mib": round(peak - before, 1)}))


if __name__ == "__main__":
    main()
