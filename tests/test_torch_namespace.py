"""xpnet's torch namespace: the functions it replaces give array-api-compat's results."""

from __future__ import annotations

import pytest
from helpers import torch_dispatched

torch = pytest.importorskip("torch", reason="torch is not installed")

import array_api_compat.torch as compat  # noqa: E402

from xpnet._torch_namespace import affine, keep_positive, xp  # noqa: E402


def _tensors(dtype):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(shape, generator=g, dtype=dtype) for shape in [(4, 3), (3, 2), (128, 1), (1, 100), (3,)]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matmul_matches_compat(dtype):
    a, b, col, row, vec = _tensors(dtype)
    for x1, x2 in [(a, b), (col, row), (vec, b), (a, vec), (b.T, a.T)]:
        got, want = xp.matmul(x1, x2), compat.matmul(x1, x2)
        assert got.dtype == want.dtype
        assert torch.equal(got, want)


def test_matmul_of_two_dtypes_promotes_as_compat_does():
    a = torch.ones((2, 3), dtype=torch.float32)
    b = torch.ones((3, 2), dtype=torch.float64)
    assert xp.matmul(a, b).dtype == compat.matmul(a, b).dtype == torch.float64


@pytest.mark.parametrize("name", ["maximum", "minimum", "logaddexp"])
def test_number_operands_match_compat(name):
    v = torch.tensor([-2.0, -0.0, 0.5, float("nan"), float("inf")], dtype=torch.float64)
    ours, theirs = getattr(xp, name), getattr(compat, name)
    for got, want in [(ours(v, 0.25), theirs(v, 0.25)), (ours(0.25, v), theirs(0.25, v))]:
        assert got.dtype == want.dtype
        assert torch.equal(torch.nan_to_num(got, nan=7.0), torch.nan_to_num(want, nan=7.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_affine_is_one_addmm_with_the_value_of_matmul_plus_bias(dtype):
    a, b, *_ = _tensors(dtype)
    bias = torch.tensor([0.5, -1.0], dtype=dtype)
    with torch_dispatched() as ops:
        got = affine(a, b, bias)
    assert ops == {"addmm": 1}
    want = compat.matmul(a, b) + bias
    assert got.dtype == want.dtype and got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=4 * torch.finfo(dtype).eps, atol=4 * torch.finfo(dtype).eps)


def test_affine_outside_addmm_s_cases_is_matmul_plus_bias():
    from xpnet._xp import affine as generic_affine

    a32 = torch.ones((2, 3), dtype=torch.float32)
    w64 = torch.ones((3, 2), dtype=torch.float64)
    batch = torch.ones((4, 2, 3), dtype=torch.float64)
    for x, w, b in [(a32, w64, torch.zeros(2, dtype=torch.float64)), (batch, w64, torch.ones(2, dtype=torch.float64))]:
        assert affine(x, w, b) is None  # not the extension's case: the standard form computes it
        got, want = generic_affine(xp, x, w, b), compat.matmul(x, w) + b
        assert got.dtype == want.dtype and torch.equal(got, want)


def test_the_generic_affine_takes_the_namespace_s_own_or_two_standard_operations():
    import numpy as np

    from xpnet._numpy_namespace import xp as numpy_xp
    from xpnet._xp import affine as generic_affine

    X, W, b = np.arange(6.0).reshape(2, 3), np.ones((3, 2)), np.array([1.0, 2.0])
    np.testing.assert_array_equal(generic_affine(numpy_xp, X, W, b), X @ W + b)
    np.testing.assert_array_equal(generic_affine(numpy_xp, X, W), X @ W)
    t = torch.from_numpy
    assert torch.equal(generic_affine(xp, t(X), t(W)), t(X @ W))  # no bias: the plain product
    torch.testing.assert_close(generic_affine(xp, t(X), t(W), t(b)), t(X @ W + b))
    tX, tW, tb = t(X), t(W), t(b)
    with torch_dispatched() as ops:
        generic_affine(xp, tX, tW, tb)
    assert ops == {"addmm": 1}  # xpnet's torch namespace: its extension
    assert not hasattr(compat, "xpnet_extensions")  # another namespace: the standard operations


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keep_positive_is_relus_backward_in_one_kernel(dtype):
    g = torch.Generator().manual_seed(1)
    v, dy = torch.randn((64, 33), generator=g, dtype=dtype), torch.randn((64, 33), generator=g, dtype=dtype)
    v[0, :3] = torch.tensor([0.0, -0.0, 1e-300 if dtype == torch.float64 else 1e-40])
    with torch_dispatched() as ops:
        got = keep_positive(v, dy)
    assert ops == {"threshold_backward": 1}
    assert torch.equal(got, dy * compat.astype(v > 0, dtype))  # 0 at v = 0, as PyTorch's ReLU


def test_keep_positive_of_other_shapes_is_the_mask_product():
    from xpnet._xp import keep_positive as generic_keep_positive

    v, dy = torch.tensor([-1.0, 2.0]), torch.ones((3, 2))  # broadcast: not the one-kernel case
    assert keep_positive(v, dy) is None
    assert torch.equal(generic_keep_positive(xp, v, dy), dy * compat.astype(v > 0, dy.dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int32, torch.bool])
def test_sum_matches_compat_for_every_axis_and_keepdims(dtype):
    a = (torch.arange(24).reshape(2, 3, 4) % 5 - 2).to(dtype)
    for axis in [None, 0, 1, -1, (0, 2), ()]:
        for keepdims in (False, True):
            got, want = xp.sum(a, axis=axis, keepdims=keepdims), compat.sum(a, axis=axis, keepdims=keepdims)
            assert got.dtype == want.dtype and torch.equal(got, want), (axis, keepdims)
    got, want = xp.sum(a, axis=1, dtype=torch.float64), compat.sum(a, axis=1, dtype=torch.float64)
    assert got.dtype == want.dtype == torch.float64 and torch.equal(got, want)


def test_sum_is_the_one_call_compat_makes():
    a = torch.ones((5, 3))
    with torch_dispatched() as ops:
        xp.sum(a, axis=0)
        xp.sum(a, axis=-1, keepdims=True)
        xp.sum(a)
    assert ops == {"sum": 3}


def test_finfo_is_compats_for_dtypes_and_arrays():
    for dtype in (torch.float16, torch.float32, torch.float64):
        got, want = xp.finfo(dtype), compat.finfo(dtype)
        assert (got.eps, got.max, got.bits) == (want.eps, want.max, want.bits)
        assert xp.finfo(torch.zeros(2, dtype=dtype)).eps == want.eps
    for bad in (compat.finfo, xp.finfo):  # an integer dtype: refused alike
        with pytest.raises(AttributeError):
            bad(torch.int32)
