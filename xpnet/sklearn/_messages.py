"""The estimators' shared messages: the non-finite weights error and the
convergence warning (a leaf module, so that every solver can use them)."""

from __future__ import annotations

import warnings

from .._warnings import caller_stacklevel

__all__ = ["NON_FINITE", "warn_convergence"]

NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large values and need to be "
    "preprocessed."
)


def warn_convergence(message: str) -> None:
    """Warn at the caller's line (its ``fit``, or its scikit-learn function that
    called ``fit``), however deep the solver that gives up."""
    from sklearn.exceptions import ConvergenceWarning

    warnings.warn(message, ConvergenceWarning, stacklevel=caller_stacklevel(also=("sklearn",)))
