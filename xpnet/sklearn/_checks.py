"""The checks of ``sklearn.utils.estimator_checks`` these estimators are
expected to fail, each with the reason a reviewer can check."""

from __future__ import annotations

from typing import Any

from ._solvers import CORE_ROW_WEIGHTS

__all__ = ["EXPECTED_FAILED_CHECKS", "expected_failed_checks"]

_REPEATS = (
    "with 'sgd'/'adam' a row of weight 2 and a repeated row fall into different shuffled minibatches, so the "
    "fits differ (as in scikit-learn's MLP, which passes it only with 'lbfgs'; ours does too)"
)
_UNEQUAL = (
    "unequal sample_weight with 'sgd'/'adam' needs row weights in xpnet's Network.fit, not merged yet "
    "(equal weights and 'lbfgs' work)"
)

_COMMON = {
    "check_sample_weight_equivalence_on_dense_data": _REPEATS,
    "check_sample_weight_equivalence_on_sparse_data": _REPEATS,
    **({} if CORE_ROW_WEIGHTS else {"check_sample_weights_not_overwritten": _UNEQUAL}),
}

#: Estimator class name -> {check name: why it is expected to fail}.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "MLPClassifier": dict(_COMMON),
    "MLPRegressor": dict(_COMMON),
}

#: Checks that fail only with the stochastic solvers ('sgd', 'adam').
_STOCHASTIC_ONLY = set(_COMMON)


def expected_failed_checks(estimator: Any) -> dict[str, str]:
    """The entry of :data:`EXPECTED_FAILED_CHECKS` for ``estimator``, less
    what its solver passes: the callable that ``parametrize_with_checks(
    expected_failed_checks=...)`` takes."""
    checks = EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})
    if getattr(estimator, "solver", None) == "lbfgs":
        return {name: why for name, why in checks.items() if name not in _STOCHASTIC_ONLY}
    return dict(checks)
