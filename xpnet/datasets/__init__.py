"""Small data sets shipped with xpnet, returned as NumPy arrays on the host."""

from __future__ import annotations

import numpy as np

__all__ = ["xor"]


def xor() -> tuple[np.ndarray, np.ndarray]:
    """The XOR truth table of seed 004: ``X`` (4, 2) and ``y`` (4,), float64."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    return X, y
