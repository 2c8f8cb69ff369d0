"""``python -m benchmarks.reading [--rows 10000,100000,1000000] [--quick]``:
the command line's reading, against pandas, on generated CSV files.

Files: 50 float columns (``%.6g``) and an integer label with 3 classes, as in
issue 13. Every measurement runs in a fresh interpreter (``--child``), so
peak memory (``VmHWM``) is that one job's; each figure is the median of
``--repeats`` runs. Measured:

- **read**: xpnet's reading, from the file to the feature matrix and the
  target (``read_header``, ``read_table``, target and column checks, the
  encoded float64 matrix), against ``pandas.read_csv`` (C engine) alone.
  Targets: time <= 2x, peak memory <= 1.5x, time linear in the rows.
- **train**: ``xpnet train --data F --epochs 1 --quiet`` against the same
  pipeline written by hand (pandas reads, NumPy splits and standardises,
  ``xpnet.MLP.fit`` trains one epoch with the same settings, then scores).
- **predict**: ``xpnet predict MODEL F --output P`` against pandas reading,
  NumPy standardising, ``net.predict`` and ``DataFrame.to_csv``.
  Targets for both: wall time of the whole process <= 1.5x.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N_FEATURES = 50
TARGETS = {"read_time": 2.0, "read_memory": 1.5, "train": 1.5, "predict": 1.5}


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def make_file(folder: Path, rows: int) -> Path:
    """A CSV of ``rows`` rows (made once per folder): a block of 100k random
    rows written as often as needed, so 1M rows take seconds to make."""
    import numpy as np

    path = folder / f"read_{rows}.csv"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    block = min(rows, 100_000)
    X = rng.normal(size=(block, N_FEATURES))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    lines = "".join(",".join(f"{v:.6g}" for v in row) + f",{label}\n" for row, label in zip(X.tolist(), y.tolist()))
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        f.write(",".join(f"f{i}" for i in range(N_FEATURES)) + ",label\n")
        for start in range(0, rows, block):
            n = min(block, rows - start)
            f.write(lines if n == block else "".join(lines.splitlines(keepends=True)[:n]))
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------
# Children: one measurement each, in a fresh interpreter
# --------------------------------------------------------------------------


def _peak_mib() -> float:
    from .rss import peak_rss_mib

    return peak_rss_mib()


def child(kind: str, path: str, extra: str) -> dict:
    import numpy as np
    import pandas as pd

    if kind == "read-xpnet":
        import xpnet.columns  # noqa: F401  (imports are not reading: pandas is imported before the clock too)
    started = time.perf_counter()
    if kind == "read-pandas":
        frame = pd.read_csv(path)
        rows = len(frame)
    elif kind == "read-xpnet":
        rows = _xpnet_read(path)
    elif kind == "train-hand":
        rows = _train_by_hand(path, extra)
    elif kind == "predict-hand":
        rows = _predict_by_hand(path, extra)
    else:
        raise SystemExit(f"unknown child {kind}")
    seconds = time.perf_counter() - started
    del np
    return {"seconds": seconds, "peak_mib": _peak_mib(), "rows": rows}


def _xpnet_read(path: str) -> int:
    """What ``xpnet train`` does from the file to the matrix and the target."""
    from xpnet.columns import column_kinds, fit_features
    from xpnet.data_io import read_header, read_table
    from xpnet.preprocessing import read_target

    table = read_header(path)
    target = table.names[-1]
    features = table.names[:-1]
    read_table(table)
    y = read_target(table, [target])
    kinds = column_kinds(table, features, set())
    import numpy as np

    _, X = fit_features(table, kinds, np.arange(len(table.frame)))
    return int(X.shape[0] + 0 * y.values.shape[0])


def _train_by_hand(path: str, model: str) -> int:
    """pandas + NumPy + xpnet.MLP: the pipeline `xpnet train` runs, by hand."""
    import numpy as np
    import pandas as pd

    import xpnet

    frame = pd.read_csv(path)
    X = frame.iloc[:, :-1].to_numpy(np.float64)
    classes, y = np.unique(frame.iloc[:, -1].to_numpy(), return_inverse=True)
    del frame
    rows = np.random.default_rng(0).permutation(len(y))
    test, train = rows[: len(y) // 5], rows[len(y) // 5 :]
    mean, std = X[train].mean(axis=0), X[train].std(axis=0)
    X = (X - mean) / std
    net = xpnet.MLP([X.shape[1], 128, len(classes)], "relu", "softmax", backend="numpy", seed=0)
    net.info = {"features": list(map(str, range(X.shape[1]))), "x_mean": mean.tolist(), "x_std": std.tolist(),
                "classes": classes.tolist()}
    net.fit(X[train], y[train], loss="cross_entropy", optimizer="adam", lr=1e-3, epochs=1, batch_size=32, seed=0,
            validation_data=(X[test], y[test]), metrics=("accuracy",))
    accuracy = float(np.mean(xpnet.to_numpy(net.predict(X[test])).argmax(axis=1) == y[test]))
    print(f"accuracy {accuracy:.4f}", file=sys.stderr)
    return len(y)


def _predict_by_hand(path: str, model: str) -> int:
    import numpy as np
    import pandas as pd

    import xpnet

    net = xpnet.load(model, backend="numpy")
    frame = pd.read_csv(path, usecols=net.info["features"])
    X = (frame.to_numpy(np.float64) - np.asarray(net.info["x_mean"])) / np.asarray(net.info["x_std"])
    labels = np.asarray(net.info["classes"])[xpnet.to_numpy(net.predict(X)).argmax(axis=1)]
    out = Path(tempfile.gettempdir()) / f"xpnet-bench-{os.getpid()}.csv"
    pd.DataFrame({"label": labels}).to_csv(out, index=False)
    out.unlink()
    return len(labels)


# --------------------------------------------------------------------------
# The parent: runs children, pairs the figures, prints the table
# --------------------------------------------------------------------------


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("XPNET_BACKEND", None)
    return env


def _run_child(kind: str, path: Path, extra: str = "") -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.reading", "--child", kind, str(path), extra],
                         capture_output=True, text=True, cwd=ROOT, env=_env(), check=False)
    if out.returncode:
        raise RuntimeError(f"{kind} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_cli(args: list[str]) -> dict:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "xpnet", *args], capture_output=True, text=True, cwd=ROOT,
                         env=_env(), check=False)
    if out.returncode:
        raise RuntimeError(f"xpnet {' '.join(args)} failed: {out.stderr[-2000:]}")
    return {"seconds": time.perf_counter() - started}


def _wall(kind: str, path: Path, extra: str) -> dict:
    started = time.perf_counter()
    result = _run_child(kind, path, extra)
    result["seconds"] = time.perf_counter() - started  # the whole process, as for the CLI
    return result


def measure(rows: int, folder: Path, repeats: int) -> dict:
    path = make_file(folder, rows)
    model = folder / f"model_{rows}.safetensors"
    pred = folder / f"pred_{rows}.csv"
    runs: dict[str, list[dict]] = {k: [] for k in ("read-pandas", "read-xpnet", "train-hand", "train-xpnet",
                                                   "predict-hand", "predict-xpnet")}
    for r in range(repeats):
        order = [("read-pandas", lambda: _run_child("read-pandas", path)),
                 ("read-xpnet", lambda: _run_child("read-xpnet", path)),
                 ("train-xpnet", lambda: _run_cli(["train", "--data", str(path), "--epochs", "1", "--quiet",
                                                   "--save", str(model)])),
                 ("train-hand", lambda: _wall("train-hand", path, "")),
                 ("predict-xpnet", lambda: _run_cli(["predict", str(model), str(path), "--output", str(pred)])),
                 ("predict-hand", lambda: _wall("predict-hand", path, str(model)))]
        for key, run in order[r % 2 :: 1] + order[: r % 2]:  # alternate which goes first
            runs[key].append(run())
            print(f"  {rows} rows, {key}: {runs[key][-1]['seconds']:.2f} s", flush=True)
    pred.unlink(missing_ok=True)
    med = {k: statistics.median(x["seconds"] for x in v) for k, v in runs.items()}
    mem = {k: statistics.median(x["peak_mib"] for x in v) for k, v in runs.items() if "peak_mib" in v[0]}
    return {"rows": rows, "bytes": path.stat().st_size, "seconds": med, "peak_mib": mem}


def table(results: list[dict]) -> str:
    lines = ["| rows | file | pandas read | xpnet read | time ratio | pandas peak | xpnet peak | memory ratio "
             "| train hand / xpnet | ratio | predict hand / xpnet | ratio |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        s, m = r["seconds"], r["peak_mib"]
        lines.append(
            f"| {r['rows']:,} | {r['bytes'] / 2**20:.0f} MiB | {s['read-pandas']:.2f} s | {s['read-xpnet']:.2f} s "
            f"| {s['read-xpnet'] / s['read-pandas']:.2f} | {m['read-pandas']:.0f} MiB | {m['read-xpnet']:.0f} MiB "
            f"| {m['read-xpnet'] / m['read-pandas']:.2f} | {s['train-hand']:.2f} / {s['train-xpnet']:.2f} s "
            f"| {s['train-xpnet'] / s['train-hand']:.2f} | {s['predict-hand']:.2f} / {s['predict-xpnet']:.2f} s "
            f"| {s['predict-xpnet'] / s['predict-hand']:.2f} |")
    return "\n".join(lines)


def verdicts(results: list[dict]) -> list[str]:
    """One line per target, for the largest file (and the growth between the two largest)."""
    big = results[-1]
    s, m = big["seconds"], big["peak_mib"]
    checks = [("read time / pandas", s["read-xpnet"] / s["read-pandas"], TARGETS["read_time"]),
              ("read peak memory / pandas", m["read-xpnet"] / m["read-pandas"], TARGETS["read_memory"]),
              ("xpnet train / by hand", s["train-xpnet"] / s["train-hand"], TARGETS["train"]),
              ("xpnet predict / by hand", s["predict-xpnet"] / s["predict-hand"], TARGETS["predict"])]
    out = [f"- {name} at {big['rows']:,} rows: {value:.2f} (target <= {limit}): {'met' if value <= limit else 'MISSED'}"
           for name, value, limit in checks]
    if len(results) > 1:
        a, b = results[-2], results[-1]
        grow = {k: math.log(b["seconds"][k] / a["seconds"][k]) / math.log(b["rows"] / a["rows"])
                for k in ("read-xpnet", "read-pandas")}
        ok = grow["read-xpnet"] <= max(1.05, grow["read-pandas"] + 0.05)
        out.append(f"- read time grows as rows^{grow['read-xpnet']:.2f} from {a['rows']:,} to {b['rows']:,} rows, "
                   f"pandas' as rows^{grow['read-pandas']:.2f} (target: linear, or no steeper than pandas): "
                   f"{'met' if ok else 'MISSED'}")
    return out


#: The smallest file whose labels ``xpnet train`` takes as classes (the by-hand pipeline reads them so).
MIN_ROWS = 20


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.reading", description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="10000,100000,1000000",
                   help="file sizes, each at least 20 (default: 10000,100000,1000000)")
    p.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is reported (default 3)")
    p.add_argument("--quick", action="store_true", help="one run on 2000 rows: does it all work? (CI)")
    p.add_argument("--dir", help="where the generated files are kept (default: a temporary folder)")
    p.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "EXTRA"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.repeats < 1:
        p.error(f"--repeats must be at least 1, got {a.repeats}")
    sizes = [r.strip() for r in a.rows.split(",")]
    if not all(r.isdigit() and int(r) >= MIN_ROWS for r in sizes):  # else int(), range() or xpnet's task guess fails
        p.error(f"--rows takes sizes of at least {MIN_ROWS} separated by commas, such as 10000,100000; got {a.rows!r}")
    if a.child:
        print(json.dumps(child(*a.child)))
        return 0
    sizes = [2000] if a.quick else [int(r) for r in sizes]
    repeats = 1 if a.quick else a.repeats
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(a.dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = [measure(rows, folder, repeats) for rows in sizes]
    print()
    print(table(results))
    print()
    print("\n".join(verdicts(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
