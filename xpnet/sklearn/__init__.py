"""scikit-learn estimators trained by xpnet: ``MLPClassifier`` and ``MLPRegressor``.

Drop-in replacements for ``sklearn.neural_network``'s estimators (same
parameters, defaults, attributes and methods) that train on any xpnet backend
and follow scikit-learn's Array API contract. Needs the ``sklearn`` extra
(``pip install 'xpnet[sklearn]'``); the rest of xpnet never imports
scikit-learn.

``EXPECTED_FAILED_CHECKS`` lists, per estimator class name, the checks of
``sklearn.utils.estimator_checks`` expected to fail and why; hand the function
``expected_failed_checks`` (an estimator -> its entry) to
``parametrize_with_checks(..., expected_failed_checks=...)``, which takes a
callable and silently ignores a dict.
"""

from __future__ import annotations

try:
    import sklearn as _sklearn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"xpnet.sklearn needs scikit-learn ({exc}); install it with: pip install 'xpnet[sklearn]'"
    ) from exc

from ._checks import EXPECTED_FAILED_CHECKS, expected_failed_checks
from ._estimators import MLPClassifier, MLPRegressor

__all__ = ["EXPECTED_FAILED_CHECKS", "MLPClassifier", "MLPRegressor", "expected_failed_checks"]
