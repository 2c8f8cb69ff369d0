"""``tools/gpu_check``: its counting per backend, its summary lines, the
pytest plugin that records outcomes, and its refusal on a machine without a
GPU. (The GPU run itself needs a CUDA machine: README, "Testing on a GPU".)"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import child_env

from xpnet._backend import backend_status

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def _load():
    loader = importlib.machinery.SourceFileLoader("gpu_check", str(TOOLS / "gpu_check"))
    spec = importlib.util.spec_from_loader("gpu_check", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


gpu_check = _load()


def record(nodeid, outcome, backend=None, when="call", message=""):
    return {"nodeid": nodeid, "backend": backend, "when": when, "outcome": outcome, "message": message}


def test_tally_counts_each_test_once_by_its_worst_phase():
    records = [
        record("t.py::a[cupy]", "passed", "cupy"),
        record("t.py::a[cupy]", "error", "cupy", when="teardown", message="E boom"),  # passed, then teardown broke
        record("t.py::a[torch]", "passed", "torch"),
        record("t.py::b[torch]", "skipped", "torch", when="setup"),
        record("t.py::c[jax]", "failed", "jax", message="AssertionError: array on cuda:0, expected cuda"),
        record("t.py::d", "passed"),
        record("t.py::e", "xfailed"),
    ]
    table, failures = gpu_check.tally(records)
    assert dict(table["cupy"]) == {"error": 1}
    assert dict(table["torch"]) == {"passed": 1, "skipped": 1}
    assert dict(table["jax"]) == {"failed": 1}
    assert dict(table[gpu_check.NO_BACKEND]) == {"passed": 1, "xfailed": 1}
    assert [f["nodeid"] for f in failures] == ["t.py::a[cupy]", "t.py::c[jax]"]

    lines = gpu_check.test_lines(table, failures, ["numpy", "cupy", "torch", "jax"])
    header, rows = lines[0].split(), {line.split()[0]: line.split()[1:] for line in lines[1:6]}
    assert header[:4] == ["backend", "passed", "failed", "error"]
    assert list(rows) == ["cupy", "torch", "jax", gpu_check.NO_BACKEND, "total"]  # numpy ran nothing here
    assert rows["total"][:4] == ["2", "1", "1", "1"]
    assert "FAILED t.py::c[jax]: AssertionError: array on cuda:0, expected cuda" in lines[-1]


def test_bench_lines_give_times_and_paired_ratios():
    doc = {
        "workloads": [{
            "name": "Tiny", "title": "Tiny XOR",
            "impls": {"xpnet-cupy": {"per_step_us": 250.0, "median_s": 2.5, "times_s": [2.4, 2.5, 2.6], "device": "cuda"},
                      "cupy-hand": {"per_step_us": 200.0, "median_s": 2.0, "times_s": [2.0] * 3, "device": "cuda"}},
            "comparisons": [{"num": "xpnet-cupy", "den": "cupy-hand", "median": 1.25, "min": 1.2, "max": 1.3,
                             "target": None, "met": None},
                            {"num": "xpnet-cupy", "den": "cupy-hand", "median": 1.25, "min": 1.2, "max": 1.3,
                             "target": 1.05, "met": False}],
        }],
        "skipped": {"W3": "no GPU implementation is usable here"},
    }  # fmt: skip
    text = "\n".join(gpu_check.bench_lines(doc))
    assert "xpnet-cupy" in text and "0.250 ms/step" in text and "(median of 3, cuda)" in text
    assert "ratio xpnet-cupy / cupy-hand: 1.250 (rounds 1.200 - 1.300)\n" in text
    assert "target <= 1.05: MISSED" in text
    assert "W3 skipped: no GPU implementation is usable here" in text


def test_gpu_readiness_names_each_backend_without_a_gpu():
    facts = {
        "backends": {
            "numpy": {"usable": True, "reason": "usable", "version": "2", "devices": ["cpu"]},
            "cupy": {"usable": False, "reason": "installed, no CUDA device", "version": "14", "devices": []},
            "torch": {"usable": True, "reason": "usable", "version": "2.11+cpu", "devices": ["cpu"]},
            "jax": {"usable": True, "reason": "usable", "version": "0.11", "devices": ["cuda:0"]},
        },
        "gpus": {"torch": {"cuda": None}},
    }
    ready = gpu_check.gpu_readiness(facts, ["numpy", "cupy", "torch", "jax"])
    assert ready == {"cupy": "installed, no CUDA device",
                     "torch": "torch 2.11+cpu sees no CUDA device (CUDA build: None)", "jax": None}  # fmt: skip
    facts["backends"]["jax"]["devices"] = ["cpu:0"]
    assert "only CPU devices" in gpu_check.gpu_readiness(facts, ["jax"])["jax"]


def _xdist() -> bool:
    return importlib.util.find_spec("xdist") is not None


@pytest.mark.parametrize("workers", [None, pytest.param("2", marks=pytest.mark.skipif(not _xdist(), reason="no xdist"))])
def test_plugin_records_each_outcome_with_its_backend(tmp_path, workers):
    """A small suite with a parametrised ``backend`` fixture, as ours, run
    with the plugin: with xdist the workers' tags reach the controller."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import pytest

        def pytest_generate_tests(metafunc):
            if "backend" in metafunc.fixturenames:
                metafunc.parametrize("backend", ["numpy", "cupy"], indirect=True)

        @pytest.fixture
        def backend(request):
            if request.param == "cupy":
                pytest.skip("cupy: no GPU")
            return request.param
    """))
    (tmp_path / "test_small.py").write_text(textwrap.dedent("""
        import pytest

        def test_ok(backend):
            assert backend == "numpy"

        def test_bad(backend):
            assert backend == "torch", "wrong backend"

        def test_plain():
            pass

        @pytest.mark.xfail(reason="known")
        def test_known():
            assert False
    """))
    path = tmp_path / "records.jsonl"
    env = dict(child_env(TOOLS), XPNET_GPU_CHECK_RECORD=str(path))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "gpu_check_plugin", str(tmp_path)]
    proc = subprocess.run(cmd + (["-n", workers] if workers else []), capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # test_bad[numpy] fails
    records = [json.loads(line) for line in path.read_text().splitlines()]
    table, failures = gpu_check.tally(records)
    assert dict(table["numpy"]) == {"passed": 1, "failed": 1}
    assert dict(table["cupy"]) == {"skipped": 2}
    assert dict(table[gpu_check.NO_BACKEND]) == {"passed": 1, "xfailed": 1}
    assert [f["nodeid"].split("::")[1] for f in failures] == ["test_bad[numpy]"]
    assert "wrong backend" in failures[0]["message"]
    assert 'assert backend == "torch"' in failures[0]["details"]  # the traceback, for failures.txt
    collected = [r["ids"] for r in records if r.get("event") == "collected"]
    assert len(collected) == 1 and len(collected[0]) == 6
    assert {r["nodeid"] for r in records if r.get("event") == "start"} == set(collected[0])
    assert gpu_check.unfinished(records) == ([], [])


def test_a_stopped_run_names_the_tests_it_did_not_finish(tmp_path):
    records = [
        {"event": "collected", "ids": ["t.py::a", "t.py::b", "t.py::c", "t.py::d"]},
        {"event": "start", "nodeid": "t.py::a"},
        record("t.py::a", "failed", message="AssertionError", when="call") | {"details": "def test_a():\n>  assert 0"},
        {"event": "start", "nodeid": "t.py::b"},
        {"event": "start", "nodeid": "t.py::c"},
        record("t.py::c", "passed"),
    ]
    assert gpu_check.unfinished(records) == (["t.py::b"], ["t.py::d"])
    lines = gpu_check.unfinished_lines(records)
    assert lines[0].strip() == "2 tests did not finish: 1 running when stopped, 1 not started"
    assert lines[1:] == ["  RUNNING t.py::b", "  NOT STARTED t.py::d"]
    _, failures = gpu_check.tally(records)
    gpu_check.write_failures(failures, tmp_path / "failures.txt")
    text = (tmp_path / "failures.txt").read_text()
    assert "FAILED t.py::a (call)" in text and ">  assert 0" in text


@pytest.mark.skipif(backend_status("cupy").usable, reason="CuPy works here: the check would run")
def test_without_a_gpu_it_says_so_and_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(TOOLS / "gpu_check"), "--dry-run", "--wheels", str(tmp_path / "none"),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "gpu_check: cupy is not usable on a GPU here: " in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("gpu_check: no GPU check possible on this machine")
    assert "libraries: numpy " in proc.stdout and "Traceback" not in proc.stderr


def test_no_test_replaces_the_childs_pythonpath():
    """On the GPU machine array-api-compat reaches the tests through
    PYTHONPATH (carried wheels): a child Python started with PYTHONPATH set
    to the checkout alone cannot import xpnet there. Children get their
    environment from ``helpers.child_env``, which keeps it."""
    import re

    tests = Path(__file__).resolve().parent
    pattern = re.compile(r"""["']PYTHONPATH["']\s*[\]:]\s*=?\s*(?!os\.environ)""")
    offenders = [f"{path.name}:{n}" for path in sorted(tests.glob("*.py")) if path.name != "helpers.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line) and ".pop(" not in line and "child_env" not in line]  # fmt: skip
    assert offenders == [], f"set PYTHONPATH through helpers.child_env: {offenders}"


@pytest.mark.parametrize("argv, says", [
    (["--bench-only", "W3,Smal"], "'Smal'"),
    (["--bench-only", "W1"], "'W1'"),  # a workload without GPU rows: --gpu would run nothing of it
    (["--repeats", "0"], "--repeats"),
])  # fmt: skip
def test_bad_benchmark_options_exit_2_before_anything_runs(argv, says, monkeypatch, capsys):
    """A typo in ``--bench-only`` or ``--repeats`` is refused at once, not after
    the whole suite has spent its minutes of GPU time."""
    monkeypatch.setattr(gpu_check, "prepare", lambda args: pytest.fail("prepared the run despite a bad option"))
    assert gpu_check.main([*argv, "--no-tests"]) == 2
    out = capsys.readouterr().out
    assert says in out and out.startswith("gpu_check: "), out
