"""Host-side preparation for the command line: task, classes, split, scaling.

All of it is NumPy on the host and seeded, so ``xpnet train --seed S`` splits
and scales the same way on every backend; the statistics it computes travel
with the model (``Network.info``) so ``xpnet predict`` can repeat them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MAX_CLASSES",
    "TASKS",
    "choose_task",
    "encode_classes",
    "scaling",
    "split_indices",
    "standardize",
]

#: Integer targets with at most this many distinct values are class labels.
MAX_CLASSES = 50
TASKS = ("auto", "classification", "regression")


def choose_task(y: np.ndarray, y_kind: str, task: str = "auto") -> str:
    """``"classification"`` or ``"regression"`` for targets ``y``.

    ``auto``: text labels and integer targets with few distinct values
    (at most :data:`MAX_CLASSES`) are classes; anything else is regressed."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if task == "auto":
        if y_kind == "text":
            task = "classification"
        elif y_kind == "integer" and len(np.unique(y)) <= MAX_CLASSES:
            task = "classification"
        else:
            task = "regression"
    if task == "regression" and y_kind == "text":
        raise ValueError("the target holds text labels, which cannot be regressed; use --task classification")
    if task == "classification":
        if y.ndim != 1:
            raise ValueError(f"class labels must be one value per row, got targets of shape {y.shape}")
        if y_kind == "float" and not np.array_equal(y, np.round(y)):
            raise ValueError("the target holds fractional values, which cannot be class labels; use --task regression")
        n_classes = len(np.unique(y))
        if n_classes < 2:
            raise ValueError(f"the target has a single value ({y[0]!r}); a classifier needs at least 2 classes")
        if y_kind == "text" and n_classes > MAX_CLASSES:
            raise ValueError(
                f"the target is not numeric and has {n_classes} distinct values, too many to be class labels "
                f"(at most {MAX_CLASSES}); check the --target column"
            )
    return task


def encode_classes(y: np.ndarray) -> tuple[list, np.ndarray]:
    """Sorted class values (as JSON-able Python values) and labels ``0..K-1``."""
    classes, labels = np.unique(y, return_inverse=True)
    return classes.tolist(), labels.astype(np.int64)


def split_indices(
    n: int, test_size: float, seed: int | None, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(train, test)`` row indices, about ``test_size`` of them for testing.

    With ``labels`` the split is stratified: each class gives the same share
    of its rows to the test set (never all of them), so a small class is not
    missing from training."""
    if not 0.0 <= test_size < 1.0:
        raise ValueError(f"the test share must be in [0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    train, test = [], []
    for rows in groups:
        rows = rng.permutation(rows)
        k = min(int(round(test_size * len(rows))), len(rows) - 1)
        test.append(rows[:k])
        train.append(rows[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def scaling(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation; a constant column gets std 1
    (it is only centred) so scaling never divides by zero."""
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def standardize(X: np.ndarray, mean, std) -> np.ndarray:
    """``(X - mean) / std`` with the statistics stored in a model."""
    return (X - np.asarray(mean, dtype=np.float64)) / np.asarray(std, dtype=np.float64)
