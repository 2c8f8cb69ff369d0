"""`xpnet train` at its defaults against scikit-learn's MLP (max_iter=500,
standardised features) on the same split of scikit-learn's bundled data sets.

The README's accuracy table comes from ``python tests/test_cli_accuracy.py``.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_cli import ok, xpnet_cli  # noqa: E402

DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")
TOLERANCE = 0.02


def export(name: str, folder: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """The data set as a CSV file, as a user would export it (integer labels, float diabetes target)."""
    from sklearn import datasets

    data = getattr(datasets, f"load_{name}")()
    X, y = data.data, data.target
    path = folder / f"{name}.csv"
    with path.open("w") as f:
        f.write(",".join([f"f{i}" for i in range(X.shape[1])] + ["target"]) + "\n")
        for row, t in zip(X.tolist(), y.tolist()):
            f.write(",".join(map(repr, row)) + f",{t!r}\n")
    return path, X, y


def xpnet_score(path: Path) -> float:
    out = ok(xpnet_cli("train", "--data", path, "--quiet", timeout=600)).stdout
    return float(re.search(r"(?:accuracy|R\^2): (-?[0-9.]+)", out).group(1))


def sklearn_score(name: str, X: np.ndarray, y: np.ndarray) -> float:
    """scikit-learn on xpnet's split (seed 0, stratified for classes) and standardisation."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from xpnet.preprocessing import scaling, split_indices, standardize

    classify = name != "diabetes"
    train, test = split_indices(len(y), 0.2, 0, y if classify else None)
    mean, std = scaling(X, train)
    Z = standardize(X, mean, std)
    model = (MLPClassifier if classify else MLPRegressor)(max_iter=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at 500 iterations
        model.fit(Z[train], y[train])
    return float(model.score(Z[test], y[test]))


@pytest.mark.slow
@pytest.mark.parametrize("name", DATASETS)
def test_defaults_are_within_002_of_scikit_learn(name, tmp_path):
    pytest.importorskip("sklearn", reason="the data sets and the reference MLP are scikit-learn's")
    path, X, y = export(name, tmp_path)
    ours, theirs = xpnet_score(path), sklearn_score(name, X, y)
    assert ours >= theirs - TOLERANCE, f"{name}: xpnet {ours:.4f}, scikit-learn {theirs:.4f}"


if __name__ == "__main__":  # the README's table
    import tempfile

    folder = Path(tempfile.mkdtemp())
    print("| data set | rows x features | score | xpnet train (defaults) | scikit-learn MLP | difference |")
    print("|---|---|---|---:|---:|---:|")
    for name in DATASETS:
        path, X, y = export(name, folder)
        ours, theirs = xpnet_score(path), sklearn_score(name, X, y)
        metric = "R²" if name == "diabetes" else "accuracy"
        print(f"| {name} | {X.shape[0]} x {X.shape[1]} | test {metric} | {ours:.4f} | {theirs:.4f} | {ours - theirs:+.4f} |")
