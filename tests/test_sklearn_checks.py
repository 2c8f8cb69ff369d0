"""scikit-learn's own estimator checks on xpnet.sklearn's MLPClassifier and
MLPRegressor; the failures expected are exactly xpnet.sklearn.EXPECTED_FAILED_CHECKS.

The Array API checks (array-api-strict, torch on CPU, CuPy when a GPU works)
need SciPy's Array API mode, switched on here before SciPy is imported; when
another module imported SciPy first, scikit-learn skips them and says why."""

from __future__ import annotations

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest  # noqa: E402

pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from xpnet._backend import backend_status  # noqa: E402
from xpnet.sklearn import EXPECTED_FAILED_CHECKS, MLPClassifier, MLPRegressor, expected_failed_checks  # noqa: E402

#: max_iter=100 as scikit-learn's own suite runs its MLPs (saturated
#: probabilities after more L-BFGS iterations fail a strict (0, 1) check there too).
ESTIMATORS = [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)]
LBFGS = [MLPClassifier(solver="lbfgs", max_iter=100), MLPRegressor(solver="lbfgs", max_iter=100)]


def _skip_unusable_namespace(check) -> None:
    """Array API checks name a namespace; skip (with xpnet's reason) the ones
    of a library that is installed but cannot run here (CuPy without a GPU)."""
    keywords = getattr(check, "keywords", {})
    names = {str(v) for v in keywords.values()} | {str(getattr(v, "xp", "")) for v in keywords.values()}
    for library in ("cupy",):
        if any(library in name for name in names):
            status = backend_status(library)
            if not status.usable:
                pytest.skip(f"{library}: {status.reason}")


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    _skip_unusable_namespace(check)
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(LBFGS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks_lbfgs(estimator, check):
    _skip_unusable_namespace(check)
    check(estimator)


def test_expected_failures_are_declared_with_reasons():
    assert set(EXPECTED_FAILED_CHECKS) == {"MLPClassifier", "MLPRegressor"}
    for name, checks in EXPECTED_FAILED_CHECKS.items():
        for check, reason in checks.items():
            assert check.startswith("check_") and isinstance(reason, str) and len(reason) > 20 and "\n" not in reason
        assert expected_failed_checks(MLPClassifier() if name == "MLPClassifier" else MLPRegressor()) == checks
