"""scikit-learn's own tests of its MLP (``sklearn/neural_network/tests/
test_mlp.py`` as installed, with scikit-learn's conftest) run against
xpnet.sklearn's estimators: a plugin puts ``xpnet.sklearn.MLPClassifier``
and ``MLPRegressor`` in ``sklearn.neural_network`` before the test module
imports them (issue 12: "Hidden checks run ... its test_mlp.py cases")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import child_env

sklearn = pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = """\
import sklearn.neural_network as nn
import xpnet.sklearn as ours

nn.MLPClassifier, nn.MLPRegressor = ours.MLPClassifier, ours.MLPRegressor
"""


def test_scikit_learns_mlp_tests_pass_against_xpnet(tmp_path):
    package = Path(sklearn.__file__).parent
    tests = package / "neural_network" / "tests" / "test_mlp.py"
    if not tests.exists():
        pytest.skip(f"this scikit-learn ({sklearn.__version__}) was installed without its tests")
    (tmp_path / "xpnet_as_sklearn_mlp.py").write_text(PLUGIN)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "xpnet_as_sklearn_mlp", "-p", "no:cacheprovider",
           "-p", "no:randomly", "--rootdir", str(package), "--confcutdir", str(package.parent), str(tests)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=child_env(ROOT, tmp_path), capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    assert "xpnet" in subprocess.run(  # the plugin took: the module under test saw xpnet's class
        [sys.executable, "-c", "import xpnet_as_sklearn_mlp, sklearn.neural_network as nn; print(nn.MLPClassifier.__module__)"],
        cwd=tmp_path, env=child_env(ROOT, tmp_path), capture_output=True, text=True, timeout=120).stdout  # fmt: skip
