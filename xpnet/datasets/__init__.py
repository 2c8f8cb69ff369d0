"""Small data sets shipped with xpnet, returned as NumPy arrays on the host.

They are host data, so they are NumPy arrays; a model converts them to its
own backend once, when it is given them.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["load_digits", "xor"]

N_DIGITS, N_PIXELS, PIXEL_MAX = 1797, 64, 16


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits: ``X`` (1797, 64) float64 in [0, 1], ``y``
    (1797,) int64 labels 0-9.

    The UCI data (CC BY 4.0, see ``DIGITS_LICENSE.md``) ships with the package
    as pixel counts 0..16, so no download and no scikit-learn are needed.
    """
    with resources.files(__name__).joinpath("digits.npz").open("rb") as f, np.load(f) as data:
        X, y = data["X"], data["y"]
    if X.shape != (N_DIGITS, N_PIXELS) or y.shape != (N_DIGITS,):
        raise ValueError(f"the shipped digits.npz is damaged: X {X.shape}, y {y.shape}; reinstall xpnet")
    return X.astype(np.float64) / PIXEL_MAX, y.astype(np.int64)


def xor() -> tuple[np.ndarray, np.ndarray]:
    """The XOR truth table of seed 004: ``X`` (4, 2) and ``y`` (4,), float64."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    return X, y
