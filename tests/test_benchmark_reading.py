"""``python -m benchmarks.reading --quick`` runs end to end (no claim about time:
the figures belong in benchmarks/README.md, measured on a described machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import child_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "benchmarks" / "reading.py").exists(), reason="no benchmarks/ in this checkout")
def test_reading_benchmark_runs_and_reports_every_target(tmp_path):
    pytest.importorskip("pandas", reason="the baseline is pandas")
    env = child_env(ROOT)
    proc = subprocess.run([sys.executable, "-m", "benchmarks.reading", "--quick", "--dir", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for target in ("read time / pandas", "read peak memory / pandas", "xpnet train / by hand",
                   "xpnet predict / by hand"):
        assert target in proc.stdout
    assert (tmp_path / "read_2000.csv").exists()


@pytest.mark.skipif(not (ROOT / "benchmarks" / "reading.py").exists(), reason="no benchmarks/ in this checkout")
@pytest.mark.parametrize("argv, says", [
    (["--rows", "abc"], "'abc'"),
    (["--rows", "300,"], "'300,'"),
    (["--rows", "0"], "'0'"),
    (["--repeats", "0"], "--repeats"),
])  # fmt: skip
def test_reading_benchmark_refuses_bad_options_in_one_line(argv, says, monkeypatch, capsys):
    """Each was a traceback (int(), range(), an empty median) after files were written."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import reading

    monkeypatch.setattr(reading, "measure", lambda *a: pytest.fail("measured despite a bad option"))
    with pytest.raises(SystemExit) as stop:
        reading.main(argv)
    assert stop.value.code == 2
    assert says in capsys.readouterr().err
