"""The shipped data sets: shapes, ranges, labels, and no scikit-learn needed."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import numpy as np

from xpnet.datasets import load_digits, xor


def test_load_digits_shapes_dtypes_and_range():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    # pixels are counts 0..16 divided by 16
    np.testing.assert_array_equal(X * 16, np.round(X * 16))
    counts = np.bincount(y)
    assert counts.size == 10 and counts.min() >= 170  # every digit, roughly balanced


def test_load_digits_returns_fresh_arrays():
    X1, y1 = load_digits()
    X1[0, 0] = 99.0
    y1[0] = 42
    X2, y2 = load_digits()
    assert X2[0, 0] != 99.0 and y2[0] != 42


def test_digits_file_and_licence_are_package_data():
    folder = resources.files("xpnet.datasets")
    assert folder.joinpath("digits.npz").is_file()
    text = folder.joinpath("DIGITS_LICENSE.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in text and "Alpaydin" in text


def test_loading_digits_never_imports_sklearn():
    code = (
        "import sys, xpnet.datasets as d; d.load_digits(); "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'sklearn']; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_digits_match_scikit_learn_when_installed():
    import pytest

    datasets = pytest.importorskip("sklearn.datasets")
    X_ref, y_ref = datasets.load_digits(return_X_y=True)
    X, y = load_digits()
    np.testing.assert_array_equal(X, X_ref / 16.0)
    np.testing.assert_array_equal(y, y_ref)


def test_xor_truth_table():
    X, y = xor()
    assert X.shape == (4, 2) and y.shape == (4,)
    assert X.dtype == np.float64 and y.dtype == np.float64
    np.testing.assert_array_equal(y, np.logical_xor(X[:, 0], X[:, 1]).astype(float))
