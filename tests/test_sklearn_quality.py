"""Same quality as scikit-learn's MLP: with the same settings, the test
accuracy (R² for diabetes) of xpnet.sklearn is within 0.01 of scikit-learn's,
averaged over 5 random_states, on scikit-learn's bundled data sets.

Run ``python tests/test_sklearn_quality.py`` for the table."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")

from sklearn import datasets  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from xpnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

RANDOM_STATES = range(5)

#: data set -> (loader, settings): solvers, schedules and stopping rules of several kinds.
CASES = {
    "digits": (datasets.load_digits, {}),  # scikit-learn's defaults: adam, batch 200, tol stopping
    "iris": (datasets.load_iris, dict(solver="sgd", learning_rate_init=0.05, max_iter=300)),
    "wine": (datasets.load_wine, dict(solver="adam", learning_rate_init=0.01, early_stopping=True, validation_fraction=0.2)),
    "breast_cancer": (datasets.load_breast_cancer, dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.01, batch_size=64)),
    "diabetes": (datasets.load_diabetes, dict(solver="sgd", learning_rate_init=0.01, alpha=1.0, max_iter=300)),
    "diabetes-lbfgs": (datasets.load_diabetes, dict(solver="lbfgs", hidden_layer_sizes=(20,), alpha=10.0, max_iter=300)),
}


def scores(case: str) -> tuple[float, float]:
    """Mean test score over RANDOM_STATES: (xpnet.sklearn, scikit-learn)."""
    load, params = CASES[case]
    X, y = load(return_X_y=True)
    regression = case.startswith("diabetes")
    if regression:
        y = (y - y.mean()) / y.std()
    split = train_test_split(X, y, test_size=0.25, random_state=0, stratify=None if regression else y)
    Xtr, Xte, ytr, yte = split
    ours, theirs = (MLPRegressor, SkRegressor) if regression else (MLPClassifier, SkClassifier)
    out = []
    for Estimator in (ours, theirs):
        values = []
        for seed in RANDOM_STATES:
            model = make_pipeline(StandardScaler(), Estimator(random_state=seed, **params))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(Xtr, ytr)
            values.append(model.score(Xte, yte))
        out.append(float(np.mean(values)))
    return out[0], out[1]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_quality_as_sklearn(case):
    ours, theirs = scores(case)
    assert abs(ours - theirs) <= 0.01, f"{case}: xpnet.sklearn {ours:.4f}, scikit-learn {theirs:.4f}"
    assert ours > (0.2 if case.startswith("diabetes") else 0.85)  # and both learned something


if __name__ == "__main__":  # the table of the README and the report
    print("| data set | settings | xpnet.sklearn | scikit-learn | difference |")
    print("|---|---|---:|---:|---:|")
    for name in CASES:
        a, b = scores(name)
        settings = ", ".join(f"{k}={v!r}" for k, v in CASES[name][1].items()) or "defaults"
        print(f"| {name} | {settings} | {a:.4f} | {b:.4f} | {a - b:+.4f} |", flush=True)
