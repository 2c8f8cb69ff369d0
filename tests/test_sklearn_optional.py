"""scikit-learn stays optional: the core never imports it, and without it
``import xpnet.sklearn`` says which extra to install."""

from __future__ import annotations

import subprocess
import sys

from helpers import subprocess_env


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=300)


def test_the_core_never_imports_sklearn():
    proc = run(
        "import sys, numpy as np, xpnet\n"
        "X, y = xpnet.datasets.load_digits()\n"
        "net = xpnet.MLP([64, 16, 10], output_activation='softmax', backend='numpy', seed=0)\n"
        "net.fit(X[:100], y[:100], loss='cross_entropy', optimizer='adam', lr=1e-3, epochs=2, warm_start=True)\n"
        "import pickle; pickle.loads(pickle.dumps(net))\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')]\n"
        "print(bad)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_without_sklearn_the_extra_is_named():
    proc = run("import sys; sys.modules['sklearn'] = None\nimport xpnet\nimport xpnet.sklearn\n")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError") and "pip install 'xpnet[sklearn]'" in last
