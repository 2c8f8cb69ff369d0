"""The NumPy namespace's fast sum equals numpy.sum wherever it is used."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet._numpy_namespace import sum as fast_sum
from xpnet._numpy_namespace import xp


@pytest.mark.parametrize("shape", [(), (5,), (4, 3), (2, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_matches_numpy(shape, dtype, keepdims):
    a = np.random.default_rng(0).normal(size=shape).astype(dtype)
    axes = [None] + list(range(len(shape)))
    for axis in axes:
        got, want = fast_sum(a, axis=axis, keepdims=keepdims), np.sum(a, axis=axis, keepdims=keepdims)
        assert np.asarray(got).dtype == np.asarray(want).dtype
        np.testing.assert_array_equal(got, want)


def test_namespace_has_every_compat_name():
    import array_api_compat.numpy as compat

    missing = [k for k in vars(compat) if not k.startswith("__") and not hasattr(xp, k)]
    assert not missing
    assert xp.sum is fast_sum and xp.exp is compat.exp


def _outer_and_others(dtype):
    rng = np.random.default_rng(1)
    W = rng.normal(size=(100, 1)).astype(dtype)
    pairs = [
        (rng.normal(size=(128, 1)), rng.normal(size=(1, 100))),  # delta @ W.T of one output unit
        (rng.normal(size=(128, 1)), W.T),  # the same with the transposed view Dense passes
        (rng.normal(size=(4, 1)), rng.normal(size=(1, 2))),
        (rng.normal(size=(5, 3)), rng.normal(size=(3, 2))),  # not an outer product: numpy.matmul
        (rng.normal(size=(3,)), rng.normal(size=(3, 2))),
        (rng.normal(size=(2, 4, 1)), rng.normal(size=(1, 3))),
    ]
    return [(a.astype(dtype), b.astype(dtype)) for a, b in pairs]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_matmul_matches_numpy(dtype):
    for a, b in _outer_and_others(dtype):
        a.flags.writeable = False  # read-only arrays, as the read-only backend passes
        got, want = xp.matmul(a, b), np.matmul(a, b)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_matmul_takes_an_outer_product_to_dot(monkeypatch):
    """The one case it changes: 2-D floating point, inner dimension 1 (numpy.matmul's slow loop)."""
    import xpnet._numpy_namespace as ns

    calls = []
    monkeypatch.setattr(ns, "_dot", lambda a, b: calls.append(a.shape) or np.dot(a, b))
    for a, b in _outer_and_others(np.float64) + _outer_and_others(np.int64):
        xp.matmul(a, b)
    assert calls == [(128, 1), (128, 1), (4, 1)]
    assert xp.matmul is ns.matmul


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_clip_matches_array_api_compat(dtype):
    """xpnet's clip (ufuncs a recorded step can replay) gives compat's numbers, NaN included."""
    import array_api_compat.numpy as compat

    a = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, np.nan if dtype != np.int64 else 7]).astype(dtype)
    bounds = [(-1, 1), (-1.0, None), (None, 0.5), (2.0, -2.0), (None, None), (float("nan"), 1.0), (np.float32(0), 1)]
    for lo, hi in bounds:
        if dtype == np.int64 and (isinstance(lo, float) or isinstance(hi, float)):
            continue
        got, want = xp.clip(a, lo, hi), compat.clip(a, lo, hi)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
