"""``python -m benchmarks --quick`` runs end to end and writes its results.

It asserts nothing about time: a shared CI machine cannot promise any, and
the figures belong in benchmarks/README.md, measured on a described machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import child_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / "benchmarks" / "__main__.py").exists(), reason="no benchmarks/ in this checkout")
def test_quick_benchmarks_run_and_write_results(tmp_path):
    env = child_env(ROOT)
    env.pop("XPNET_BACKEND", None)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-gpu", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    md = (tmp_path / "results.md").read_text()
    assert doc["quick"] is True
    names = {w["name"] for w in doc["workloads"]}
    assert {"W1", "W3", "Tiny", "Predict", "Wide", "Small", "Job"} <= names
    assert "W4" in names or "W4" in doc["skipped"]  # W4 needs torch
    assert "GPU only" in doc["skipped"]["Large"]
    # W2 needs scikit-learn for the digits (the "bench" extra); without it, it says so
    assert {"W2-float32", "W2-float64"} <= names or "W2" in doc["skipped"]
    for w in doc["workloads"]:
        assert {"xpnet-numpy"} <= set(w["impls"]), w["name"]
        for imp in w["impls"].values():
            assert len(imp["times_s"]) == 1 and imp["median_s"] > 0
    w3 = next(w for w in doc["workloads"] if w["name"] == "W3")
    assert w3["impls"]["xpnet-numpy"]["extra"]["peak_rss_mib"] > 0
    assert w3["matmul_limit"]["step_s"] > 0
    machine = doc["machine"]
    assert "OPENBLAS_CORETYPE" in machine["env"] and machine["threadpools"]
    predict = next(w for w in doc["workloads"] if w["name"] == "Predict")
    assert predict["impls"]["xpnet-numpy"]["extra"]["rss_growth_mib"] >= 0
    assert next(w for w in doc["workloads"] if w["name"] == "Wide")["matmul_limit"]["step_s"] > 0
    for heading in ("## Results", "### Targets", "### W1", "### W3", "### Tiny", "### Predict", "### Wide"):
        assert heading in md


@pytest.mark.skipif(not (ROOT / "benchmarks" / "__main__.py").exists(), reason="no benchmarks/ in this checkout")
def test_gpu_rows_without_a_gpu_say_so(tmp_path, monkeypatch):
    """``--gpu`` keeps only the GPU rows; where none can run it says why and fails."""
    monkeypatch.syspath_prepend(str(ROOT))  # `pytest` (unlike `python -m pytest`) does not put the root on sys.path
    from benchmarks import harness, job, large, predict, run, small, tiny, w3, wide

    for module in (harness, tiny, w3, predict, wide, small, large, job):
        monkeypatch.setattr(module, "cupy_usable", lambda: False)
        # harness.torch_devices asks harness's probe for the workloads that use it
        monkeypatch.setattr(module, "torch_cuda_usable", lambda: False, raising=module in (harness, tiny, large, job))
        monkeypatch.setattr(module, "jax_gpu_usable", lambda: False, raising=False)
    assert run.main(["--gpu", "--quick", "--out", str(tmp_path)]) == 1
    assert run.main(["--gpu", "--no-gpu", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "results.json").exists()


@pytest.mark.skipif(not (ROOT / "benchmarks" / "__main__.py").exists(), reason="no benchmarks/ in this checkout")
def test_impls_that_match_nothing_are_refused(tmp_path, monkeypatch, capsys):
    """A key of ``--impls`` that names no implementation (a typo) is an error
    naming it and the keys there are, not a run that drops that row in silence."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import harness, run, tiny

    def one_row(key):
        return harness.Impl(key, key, lambda warm: (lambda: (lambda: {"loss": 0.0})))

    monkeypatch.setattr(tiny, "build", lambda s: harness.Workload("Tiny", "Tiny", [one_row("a"), one_row("b")]))
    assert run.main(["--only", "Tiny", "--impls", "bogus", "--quick", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "results.json").exists()  # an earlier run's results are not replaced by an empty table
    err = capsys.readouterr().err
    assert "'bogus'" in err and "--impls" in err and "a, b" in err, err
    assert run.main(["--only", "Tiny", "--impls", "a,bogus", "--quick", "--out", str(tmp_path)]) == 2
    assert "'bogus'" in capsys.readouterr().err
    assert run.main(["--only", "Tiny", "--impls", "a", "--quick", "--out", str(tmp_path)]) == 0
    assert set(json.loads((tmp_path / "results.json").read_text())["workloads"][0]["impls"]) == {"a"}


@pytest.mark.skipif(not (ROOT / "benchmarks" / "distributed.py").exists(), reason="no benchmarks/ in this checkout")
@pytest.mark.parametrize("argv, says", [
    (["--launch", "0"], "'0'"),
    (["--launch", "1,x"], "'x'"),
    (["--launch", "2x0"], "'2x0'"),
    (["--steps", "0"], "--steps"),
    (["--batch", "0", "--launch", "1"], "--batch"),
])  # fmt: skip
def test_distributed_benchmark_refuses_bad_options_before_mpiexec(argv, says, monkeypatch, capsys):
    """``--launch 0`` or ``x`` started ``mpiexec -n 0``/``-n ''``, which ran one
    process and tabled it in silence; ``--steps 0`` failed deep in a child."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import distributed

    monkeypatch.setattr(distributed.subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    monkeypatch.setattr(distributed, "measure", lambda args: pytest.fail("measured despite a bad option"))
    with pytest.raises(SystemExit) as stop:
        distributed.main(argv)
    assert stop.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.skipif(not (ROOT / "benchmarks" / "__main__.py").exists(), reason="no benchmarks/ in this checkout")
@pytest.mark.parametrize("threads", ["0", "-1"])
def test_threads_below_one_are_refused_as_such(threads, tmp_path, monkeypatch, capsys):
    """``--threads -1`` was told it only works through ``python -m benchmarks``
    (which it was run through), and ``--threads 0`` reached OpenMP as an invalid
    OMP_NUM_THREADS."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import run

    monkeypatch.setenv("OMP_NUM_THREADS", threads)  # as benchmarks/__main__.py would have set it
    assert run.main(["--threads", threads, "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--threads must be at least 1, got {threads}" in err and "only takes effect" not in err, err
    assert not (tmp_path / "results.json").exists()
