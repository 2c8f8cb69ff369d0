"""xpnet's CuPy namespace, checked without a GPU: the kernel's text compiled
as C on the host, and the Python around it with a stand-in for CuPy's
arrays and ``ElementwiseKernel``."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("cupy", reason="CuPy is not installed (its namespace module imports it)")

import array_api_compat as compat  # noqa: E402

from xpnet import _cupy_namespace  # noqa: E402
from xpnet._backend import _namespace  # noqa: E402
from xpnet._xp import column_sum as generic_column_sum  # noqa: E402
from xpnet._xp import keep_positive as generic_keep_positive  # noqa: E402


def _special_values(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    v, dy = rng.normal(size=200).astype(dtype), rng.normal(size=200).astype(dtype)
    v[:6] = [0.0, -0.0, np.finfo(dtype).tiny / 4, -np.inf, np.inf, np.nan]
    return v, dy


def _compiled_as_c(dtype: str, tmp_path):
    """The kernel's body in a C loop, built with the host compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler here")
    ins, outs, body = _cupy_namespace.KEEP_POSITIVE
    assert (ins, outs) == ("T v, T dy", "T dv")
    src = "\n".join([
        f"typedef {'float' if dtype == 'float32' else 'double'} T;",
        "void run(long n, const T *V, const T *DY, T *DV) {",
        "  for (long i = 0; i < n; i++) { T v = V[i], dy = DY[i], dv;", f"    {body};", "    DV[i] = dv; }", "}",
    ])  # fmt: skip
    (tmp_path / "k.c").write_text(src)
    subprocess.run([cc, "-O1", "-shared", "-fPIC", str(tmp_path / "k.c"), "-o", str(tmp_path / "k.so")], check=True,
                   capture_output=True)  # fmt: skip
    run = ctypes.CDLL(str(tmp_path / "k.so")).run

    def call(v: np.ndarray, dy: np.ndarray) -> np.ndarray:
        out = np.empty_like(v)
        run(ctypes.c_long(v.size), *(a.ctypes.data_as(ctypes.c_void_p) for a in (v, dy, out)))
        return out

    return call


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_kernel_is_relus_backward_with_torchs_meaning(dtype, tmp_path):
    v, dy = _special_values(dtype)
    got = _compiled_as_c(dtype, tmp_path)(v, dy)
    finite = ~np.isnan(v)
    np.testing.assert_array_equal(got[finite], generic_keep_positive(np, v, dy)[finite])  # 0 at +-0, as ReLU's
    np.testing.assert_array_equal(got[~finite], dy[~finite])  # a NaN lets dy through, as threshold_backward does


class _Device:
    id = 0

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def __enter__(self):
        self.log.append("device")

    def __exit__(self, *exc):
        return False


class _StandIn(np.ndarray):
    """A host array posing as a CuPy array on one device."""

    log: list[str] = []

    @property
    def device(self):
        return _ONE_DEVICE


_ONE_DEVICE = _Device(_StandIn.log)


@pytest.fixture
def stand_in(monkeypatch):
    """CuPy's ``ndarray`` and ``ElementwiseKernel`` replaced: the kernel
    records its arguments and computes the select on the host."""
    calls: list[tuple] = []
    _StandIn.log.clear()

    def kernel(ins, outs, body, name):
        def launch(v, dy):
            calls.append((ins, outs, body, name, v.dtype))
            return np.where(v <= 0, 0, dy).astype(v.dtype).view(_StandIn)

        return launch

    def matmul(a, b):
        calls.append(("matmul", a.shape, b.shape))
        return np.matmul(a, b).view(_StandIn)

    fake = type("cupy", (), {"ndarray": _StandIn, "ElementwiseKernel": staticmethod(kernel),
                             "matmul": staticmethod(matmul), "ones": staticmethod(np.ones)})  # fmt: skip
    monkeypatch.setattr(_cupy_namespace, "cupy", fake)
    _cupy_namespace._keep_positive_kernel.cache_clear()
    _cupy_namespace._ones.cache_clear()
    yield calls
    _cupy_namespace._keep_positive_kernel.cache_clear()
    _cupy_namespace._ones.cache_clear()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_arrays_of_one_shape_take_one_kernel(stand_in, dtype):
    v, dy = (a.view(_StandIn) for a in _special_values(dtype))
    got = _cupy_namespace.xp.xpnet_extensions["keep_positive"](v, dy)
    assert stand_in == [(*_cupy_namespace.KEEP_POSITIVE, "xpnet_keep_positive", np.dtype(dtype))]
    assert _StandIn.log == ["device"]  # launched on the arrays' device
    finite = ~np.isnan(np.asarray(v))
    np.testing.assert_array_equal(np.asarray(got)[finite], generic_keep_positive(np, v, dy)[finite])


def test_other_cases_are_the_mask_product(stand_in):
    rng = np.random.default_rng(1)
    cases = [
        (rng.normal(size=(3, 4)).view(_StandIn), rng.normal(size=(2, 3, 4)).view(_StandIn)),  # broadcast
        (rng.normal(size=5).astype(np.float16).view(_StandIn), rng.normal(size=5).astype(np.float16).view(_StandIn)),
        (rng.normal(size=5), rng.normal(size=5)),  # not CuPy arrays
        (rng.normal(size=5).view(_StandIn), rng.normal(size=5).astype(np.float32).view(_StandIn)),  # two dtypes
    ]
    for v, dy in cases:
        assert _cupy_namespace.keep_positive(v, dy) is None  # not the kernel's case
        got = generic_keep_positive(_cupy_namespace.xp, v, dy)  # so the standard form computes it
        np.testing.assert_array_equal(np.asarray(got), np.asarray(dy * (np.asarray(v) > 0).astype(dy.dtype)))
    assert stand_in == []


def test_the_cupy_backend_computes_with_it_and_it_still_says_cupy(stand_in):
    xp = _namespace("cupy")
    assert xp is _cupy_namespace.xp and compat.is_cupy_namespace(xp)
    v, dy = (np.arange(-2.0, 4.0).reshape(2, 3).view(_StandIn) for _ in range(2))
    got = generic_keep_positive(xp, v, dy)  # what ReLU's backward calls with the network's namespace
    assert len(stand_in) == 1
    np.testing.assert_array_equal(np.asarray(got), [[0, 0, 0], [1, 2, 3]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_large_bias_gradient_is_one_product_with_a_ones_vector(stand_in, dtype):
    """CuPy's axis-0 sum of 8192 x 4096 float32 took 2.7x torch's on an H100."""
    rows, cols = 512, _cupy_namespace.COLUMN_SUM_FROM // 512
    a = np.random.default_rng(2).normal(size=(rows, cols)).astype(dtype)
    got = generic_column_sum(_namespace("cupy"), a.view(_StandIn))  # what Dense's backward calls
    assert stand_in == [("matmul", (rows,), (rows, cols))] and _StandIn.log == ["device"]
    assert got.dtype == np.dtype(dtype) and got.shape == (cols,)
    np.testing.assert_allclose(np.asarray(got), a.sum(axis=0), rtol=1e-4 if dtype == "float32" else 1e-12,
                               atol=1e-3 if dtype == "float32" else 1e-10)  # fmt: skip


def test_other_sums_are_the_standard_reduction(stand_in):
    big = _cupy_namespace.COLUMN_SUM_FROM
    cases = [
        np.ones((4, 3)).view(_StandIn),  # small: the reduction's one launch is cheaper
        np.ones((512, big // 256)).T.view(_StandIn),  # not C-ordered
        np.ones(big).view(_StandIn),  # not a matrix
        np.ones((512, big // 512), dtype=np.int64).view(_StandIn),  # not floating
        np.ones((512, big // 512)),  # not a CuPy array
    ]
    for a in cases:
        assert _cupy_namespace.column_sum(a) is None
        np.testing.assert_array_equal(np.asarray(generic_column_sum(_cupy_namespace.xp, a)), np.asarray(a).sum(axis=0))
    assert stand_in == []
