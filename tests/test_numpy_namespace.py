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
