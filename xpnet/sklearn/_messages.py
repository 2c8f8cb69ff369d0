"""The estimators' shared messages: the non-finite weights error and the
convergence warning (a leaf module, so that every solver can use them)."""

from __future__ import annotations

import warnings

__all__ = ["NON_FINITE", "warn_convergence"]

NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large values and need to be "
    "preprocessed."
)


def warn_convergence(message: str) -> None:
    from sklearn.exceptions import ConvergenceWarning

    warnings.warn(message, ConvergenceWarning, stacklevel=3)
