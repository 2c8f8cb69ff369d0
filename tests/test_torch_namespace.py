"""xpnet's torch namespace: the functions it replaces give array-api-compat's results."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")

import array_api_compat.torch as compat  # noqa: E402

from xpnet._torch_namespace import xp  # noqa: E402


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
