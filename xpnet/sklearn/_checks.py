"""The checks of ``sklearn.utils.estimator_checks`` these estimators are
expected to fail, each with the reason a reviewer can check: none at
present (every check passes, the Array API ones included, with every
solver). New entries go here, and only here, as ``{check name: one-line
reason}``; ``parametrize_with_checks(..., expected_failed_checks=
xpnet.sklearn.expected_failed_checks)`` reads them."""

from __future__ import annotations

from typing import Any

__all__ = ["EXPECTED_FAILED_CHECKS", "expected_failed_checks"]

#: Estimator class name -> {check name: why it is expected to fail}.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "MLPClassifier": {},
    "MLPRegressor": {},
}


def expected_failed_checks(estimator: Any) -> dict[str, str]:
    """The entry of :data:`EXPECTED_FAILED_CHECKS` for ``estimator``: the
    callable that ``parametrize_with_checks(expected_failed_checks=...)`` takes."""
    return dict(EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))
