"""Backends: names, the auto choice, usability probes, devices, conversions."""

from __future__ import annotations

import subprocess
import sys
import types

import array_api_compat
import numpy as np
import pytest
from helpers import assert_on, host, subprocess_env, traced_peak, try_import

import xpnet
from xpnet import _backend
from xpnet._backend import KNOWN_BACKENDS, BackendUnavailable, backend_status, get_backend


@pytest.fixture
def fresh_probes():
    """Forget cached probe results before and after a test that fakes a library."""
    _backend._probe.cache_clear()
    yield
    _backend._probe.cache_clear()


def test_numpy_and_strict_always_available():
    names = xpnet.available_backends()
    assert "numpy" in names and "array_api_strict" in names
    assert all(n in KNOWN_BACKENDS for n in names)
    assert names == [n for n in KNOWN_BACKENDS if n in names]  # documented order


def test_unknown_backend_is_value_error_listing_known():
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'") as e:
        get_backend("tensorflow")
    for name in KNOWN_BACKENDS:
        assert name in str(e.value)


def test_backend_name_is_case_insensitive():
    assert get_backend("NumPy").name == "numpy"


def test_auto_is_case_insensitive_too(monkeypatch):
    """'Auto' was refused as "unknown backend 'auto'; expected ... (or 'auto')"."""
    monkeypatch.setenv("XPNET_BACKEND", "array_api_strict")
    assert get_backend("Auto").name == "array_api_strict"
    monkeypatch.setenv("XPNET_BACKEND", "AUTO")  # auto, as unset
    assert get_backend("Auto").name == get_backend("numpy" if not _backend._probe("cupy").usable else "cupy").name


def test_auto_reads_environment_at_call_time(monkeypatch):
    monkeypatch.setenv("XPNET_BACKEND", "array_api_strict")
    assert get_backend().name == "array_api_strict"
    assert get_backend("auto").name == "array_api_strict"
    monkeypatch.setenv("XPNET_BACKEND", "numpy")
    assert get_backend(None).name == "numpy"
    monkeypatch.setenv("XPNET_BACKEND", "bogus")
    with pytest.raises(ValueError, match="bogus"):
        get_backend()


def test_auto_takes_a_device_after_the_name_in_the_environment(monkeypatch):
    """``name:device``: with ``array_api_strict:device1``, code that takes
    "auto" for NumPy fails on the CPU as on a GPU, where "auto" is CuPy
    (two of the suite's tests did, found on an H100)."""
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict is not installed")
    monkeypatch.setenv("XPNET_BACKEND", "array_api_strict:device1")
    assert (get_backend().name, get_backend().device) == ("array_api_strict", strict.Device("device1"))
    assert get_backend(None, "device2").device == strict.Device("device2")  # a device in the call wins
    assert get_backend("numpy").device == "cpu"  # a named backend: the variable does not apply
    out = xpnet.MLP([3, 2], seed=0).predict(np.ones((4, 3)))
    with pytest.raises(RuntimeError, match="device1"):
        np.asarray(out)  # as CuPy refuses; xpnet.to_numpy converts
    want = xpnet.MLP([3, 2], backend="numpy", seed=0).predict(np.ones((4, 3)))
    np.testing.assert_array_equal(xpnet.to_numpy(out), want)
    monkeypatch.setenv("XPNET_BACKEND", " torch : cpu ")
    if backend_status("torch").usable:
        assert (get_backend().name, str(get_backend().device)) == ("torch", "cpu")
    monkeypatch.setenv("XPNET_BACKEND", "numpy:cuda")
    with pytest.raises(ValueError, match=r"the numpy backend has only the device 'cpu', got 'cuda' \(auto as "
                                         r"XPNET_BACKEND='numpy:cuda' sets it; the variable takes a backend's name"):
        get_backend()
    monkeypatch.setenv("XPNET_BACKEND", "bogus")  # without a device, as with one
    with pytest.raises(ValueError, match=r"unknown backend 'bogus'.*\(auto as XPNET_BACKEND='bogus' sets it"):
        get_backend()
    monkeypatch.setenv("XPNET_BACKEND", "auto:cpu")  # auto's own choice, on that device
    assert get_backend().name == "numpy"


def test_auto_on_the_cpu_is_numpy_where_cupy_works(monkeypatch):
    """On a GPU machine auto is CuPy, which has no device 'cpu': auto:cpu
    (and get_backend(device="cpu")) failed with "invalid cupy device 'cpu'"
    on the H200. With CuPy's probe saying usable, they are NumPy."""
    import xpnet._backend as backend_module

    usable = backend_module.BackendStatus("cupy", True, "usable", "99.0-fake", ("cuda:0",))
    monkeypatch.setitem(backend_module._PROBES, "cupy", lambda: usable)
    monkeypatch.setenv("XPNET_BACKEND", "auto:cpu")
    assert get_backend().name == "numpy"
    monkeypatch.delenv("XPNET_BACKEND")
    assert get_backend(None, "cpu").name == get_backend("auto", "cpu").name == "numpy"


def test_auto_without_environment_prefers_usable_cupy(monkeypatch):
    monkeypatch.delenv("XPNET_BACKEND", raising=False)
    expected = "cupy" if backend_status("cupy").usable else "numpy"
    assert get_backend().name == expected


def _fake_cupy(device_count=None, error=None, kernel_error=None, current=0):
    """A stand-in cupy module whose CUDA runtime fails as asked."""
    mod = types.ModuleType("cupy")
    mod.__version__ = "99.0-fake"

    class Runtime:
        @staticmethod
        def getDeviceCount():
            if error is not None:
                raise error
            return device_count

        @staticmethod
        def getDevice():
            return current

    class Device:
        def __init__(self, i=0):
            self.id = i

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    mod.cuda = types.SimpleNamespace(runtime=Runtime, Device=Device)
    mod.float32 = np.float32

    def arange(*a, **k):
        if kernel_error is not None:
            raise kernel_error
        return np.arange(*a, **k)

    mod.arange = arange
    return mod


@pytest.mark.parametrize(
    ("fake", "reason"),
    [
        (dict(error=RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")), "no usable CUDA device"),
        (dict(device_count=0), "no CUDA device"),
        (dict(device_count=1, kernel_error=RuntimeError("nvrtc: compilation failed")), "test kernel failed"),
    ],
)
def test_cupy_without_working_gpu_is_unusable_with_reason(monkeypatch, fresh_probes, fake, reason):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(**fake))
    status = backend_status("cupy")
    assert not status.usable
    assert reason in status.reason
    assert "cupy" not in xpnet.available_backends()
    with pytest.raises(BackendUnavailable, match=reason) as e:
        get_backend("cupy")
    assert isinstance(e.value, RuntimeError)


def test_cupy_not_installed_is_unusable(monkeypatch, fresh_probes):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    status = backend_status("cupy")
    assert not status.usable and "not installed" in status.reason and "xpnet[gpu]" in status.reason
    with pytest.raises(BackendUnavailable, match="not installed"):
        get_backend("cupy")


def test_real_cupy_is_reported_consistently():
    """With cupy-cuda12x installed on a machine without a GPU (as in CI), the
    probe must say so, not crash; with a GPU it must be usable."""
    pytest.importorskip("cupy", reason="cupy is not installed")
    status = backend_status("cupy")
    if status.usable:
        assert get_backend("cupy").name == "cupy"
    else:
        assert status.reason.startswith("installed")
        with pytest.raises(BackendUnavailable):
            get_backend("cupy")


def test_not_installed_library_raises_backend_unavailable(monkeypatch, fresh_probes):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert not backend_status("torch").usable
    with pytest.raises(BackendUnavailable, match="torch"):
        get_backend("torch")


def test_an_array_api_strict_too_old_for_python_scalars_is_unusable_with_the_fix(monkeypatch, fresh_probes):
    """array-api-strict 2.3 refuses ``maximum(x, 0.0)``: the first ReLU
    failed deep in a fit ('float' object has no attribute 'device')."""
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict is not installed")
    monkeypatch.setattr(strict, "__version__", "2.3.1")
    status = backend_status("array_api_strict")
    assert not status.usable and "older than 2.4" in status.reason and "array-api-strict>=2.4" in status.reason
    with pytest.raises(BackendUnavailable, match="older than 2.4"):
        get_backend("array_api_strict")


def test_strict_devices_by_name():
    import array_api_strict as strict

    assert get_backend("array_api_strict").device == strict.Device("CPU_DEVICE")
    assert get_backend("array_api_strict", "device1").device == strict.Device("device1")
    assert get_backend("array_api_strict", strict.Device("device1")).device == strict.Device("device1")
    with pytest.raises(ValueError, match="device7"):
        get_backend("array_api_strict", "device7")


def test_numpy_has_only_cpu():
    assert get_backend("numpy", "cpu").device == "cpu"
    with pytest.raises(ValueError, match="only the device 'cpu'"):
        get_backend("numpy", "cuda")


def test_torch_devices():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    b = get_backend("torch", "cpu")
    assert b.device == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="CUDA"):
            get_backend("torch", "cuda")
    # 'meta' was taken (and predict then failed with "Cannot copy out of meta tensor"); a device this torch
    # cannot use ('mps' here, a CPU build) raised torch's own error at the first array
    with pytest.raises(ValueError, match="torch device 'meta' holds shapes without data"):
        xpnet.MLP([3, 2], backend="numpy").to("torch", "meta")
    if not torch.backends.mps.is_available():
        with pytest.raises(BackendUnavailable, match="torch device 'mps' asked for, but torch cannot use it here"):
            xpnet.MLP([3, 2], backend="numpy").to("torch", "mps")


def test_torch_cuda_device_is_canonical(monkeypatch):
    """torch arrays report ``cuda:0``, never ``cuda``, and torch compares the
    two as different devices: a backend holding ``cuda`` failed every device
    check on a real GPU. A pretend CUDA machine whose current GPU is 1 of 2."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    for asked in (None, "cuda", torch.device("cuda"), "auto-default"):
        b = get_backend("torch") if asked == "auto-default" else get_backend("torch", asked)
        assert b.device == torch.device("cuda", 1) and str(b.device) == "cuda:1", asked
    assert get_backend("torch", "cuda:0").device == torch.device("cuda", 0)
    assert get_backend("torch", "cpu").device == torch.device("cpu")
    with pytest.raises(ValueError, match="'cuda:2' does not exist; this machine has 2 CUDA device"):
        get_backend("torch", "cuda:2")


def test_cupy_device_defaults_to_the_current_one(monkeypatch, fresh_probes):
    """As torch's ``cuda``: no index means CuPy's current device, which is
    the device the arrays report (a pretend machine with 2 GPUs, current 1)."""
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(device_count=2, current=1))
    for asked in (None, "cuda", "gpu"):
        assert _backend._cupy_device_index(asked) == 1, asked
    assert _backend._cupy_device_index("cuda:0") == 0 and _backend._cupy_device_index(0) == 0
    with pytest.raises(ValueError, match="cupy device 2 does not exist"):
        _backend._cupy_device_index("cuda:2")


def test_jax_device_is_the_one_its_arrays_report():
    jax = pytest.importorskip("jax", reason="jax is not installed")
    cpu = jax.devices("cpu")[0]
    for asked, expected in ((None, jax.devices()[0]), ("cpu", cpu), ("cpu:0", cpu), (cpu, cpu)):
        b = get_backend("jax", asked)  # None: JAX's default device, a GPU where JAX has one
        assert b.device == expected and array_api_compat.device(b.asarray([1.0], "float32")) == b.device, asked
    with jax.default_device("cpu"):  # JAX's own choice of default is honoured
        assert get_backend("jax").device == cpu
    n = len(jax.devices("cpu"))  # the message names them: it said only "IndexError: list index out of range"
    with pytest.raises(ValueError, match=rf"invalid jax device 'cpu:5': JAX has {n} cpu device\(s\), cpu:0"):
        get_backend("jax", "cpu:5")


def test_device_of_every_backend_is_what_its_arrays_report(backend):
    a = backend.asarray([1.0, 2.0], "float32")
    assert array_api_compat.device(a) == backend.device
    assert array_api_compat.device(backend.xp.zeros(2, dtype=a.dtype, device=backend.device)) == backend.device


def test_backend_object_passes_through(backend):
    assert get_backend(backend) is backend


def test_asarray_from_lists_and_numpy(backend):
    a = backend.asarray([[1, 2], [3, 4]], "float32")
    assert_on(a, backend, "float32", (2, 2))
    b = backend.asarray(np.arange(3.0), "float64")
    assert_on(b, backend, "float64", (3,))
    np.testing.assert_array_equal(host(b), [0.0, 1.0, 2.0])


def test_asarray_copy_never_shares_memory(backend):
    """Whatever address NumPy gives the source: on the CPU, JAX's device_put
    shared the memory of some (one call in three here, with other arrays
    allocated in between) despite ``may_alias=False``."""
    keep = []
    for k in range(200):
        src = np.arange(4.0)
        a = backend.asarray(src, "float64", copy=True)
        src[0] = 99.0
        assert host(a)[0] == 0.0, f"shared memory with its source on try {k}"
        keep.append(np.ones(k % 47 + 1))  # vary where the next source lands


def test_asarray_with_a_cast_never_shares_memory_either(backend):
    src = np.arange(4.0)
    a = backend.asarray(src, "float32", copy=True)
    src[0] = 99.0
    assert host(a)[0] == 0.0


def test_jax_asarray_copies_a_cast_host_array_once():
    """The cast already made a host array nobody else holds: JAX takes it
    as it is, without a second host copy of the data (the peak host memory
    of the call holds one float32 copy of the rows, not two)."""
    from conftest import make_backend

    if try_import("jax") is None:
        pytest.skip("jax is not installed")
    backend = make_backend("jax")
    rows = np.random.default_rng(0).normal(size=(2**18,))  # 2 MiB in float64, 1 MiB in float32
    a, peak = traced_peak(backend.asarray, rows, "float32")
    assert peak < 1.5 * rows.size * 4, f"{peak} bytes at the peak: the rows were copied twice on the host"
    np.testing.assert_array_equal(host(a), rows.astype(np.float32))


def test_jax_asarray_copies_host_rows_of_its_dtype_once():
    """Rows already of the model's dtype, at an address XLA cannot share:
    device_put copies them, so a private host copy before it (always made
    before) only held the data twice."""
    from conftest import make_backend

    if try_import("jax") is None:
        pytest.skip("jax is not installed")
    backend = make_backend("jax")
    buf = np.zeros(2**18 + 16, dtype=np.float32)
    skip = (4 - buf.ctypes.data % 64) % 64 // 4  # an address 4 bytes past a 64-byte boundary
    rows = buf[skip : skip + 2**18]
    rows[:] = np.arange(2**18, dtype=np.float32)
    a, peak = traced_peak(backend.asarray, rows, "float32")
    assert peak < 0.5 * rows.nbytes, f"{peak} bytes at the peak: a host copy of {rows.nbytes} bytes was made"
    rows[0] = -1.0
    assert host(a)[0] == 0.0 and host(a)[-1] == 2**18 - 1


def test_jax_asarray_copy_is_not_reached_by_a_write_right_after_it():
    """device_put reads host rows asynchronously (JAX 0.10 on the CPU, even
    with may_alias=False), and reading the copy's address does not wait for
    it: a caller's write just after ``asarray(..., copy=True)`` reached the
    copy in a few calls in a hundred, rows of any alignment."""
    from conftest import make_backend

    if try_import("jax") is None:
        pytest.skip("jax is not installed")
    backend = make_backend("jax")
    reached = 0
    for trial in range(300):
        buf = np.ones(2**16 + 16, dtype=np.float32)
        skip = trial % 16  # every alignment: the aligned rows device_put shares, the others it copies later
        rows = buf[skip : skip + 2**16]
        a = backend.asarray(rows, "float32", copy=True)
        rows[-1] = -5.0
        reached += float(host(a)[-1]) == -5.0
    assert reached == 0, f"{reached} of 300 writes after the call reached the copy"


def test_asarray_converts_arrays_of_every_other_backend(backend):
    from conftest import make_backend, usable_backend_params

    data = np.arange(6.0).reshape(2, 3)
    for other in usable_backend_params():
        src = make_backend(other).asarray(data, "float64")
        a = backend.asarray(src, "float32")
        assert_on(a, backend, "float32", (2, 3))
        np.testing.assert_array_equal(host(a), data)


def test_to_numpy_per_library(backend):
    a = backend.asarray(np.arange(4.0), "float64")
    out = xpnet.to_numpy(a)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_array_equal(out, np.arange(4.0))
    assert backend.to_numpy(a).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_to_numpy_of_python_data():
    assert xpnet.to_numpy([1.0, 2.0]).tolist() == [1.0, 2.0]
    assert xpnet.to_numpy(3.5).item() == 3.5


def test_strict_device1_refuses_silent_numpy_conversion():
    """The second strict device is our GPU stand-in: np.asarray must fail on it,
    which is what makes the suite catch hidden host round trips."""
    b = get_backend("array_api_strict", "device1")
    a = b.asarray([1.0, 2.0], "float64")
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        np.asarray(a)
    assert xpnet.to_numpy(a).tolist() == [1.0, 2.0]


def test_namespace_recognition_uses_compat(backend):
    a = backend.asarray([1.0], "float32")
    xp = array_api_compat.array_namespace(a)
    assert xp.isdtype(a.dtype, "real floating")


def test_invalid_dtype_names_rejected(backend):
    with pytest.raises(ValueError, match="float16"):
        backend.asarray([1.0], "float16")


def test_a_jax_device_that_is_not_one_is_refused_and_a_one_device_sharding_is_its_device():
    """Any object but a string was taken as a JAX device, and failed at the
    first ``device_put`` deep in JAX (an index, a torch device, the sharding
    of an array spread over several devices: xpnet.sklearn's dispatch passes
    an input's sharding as its device)."""
    jax = pytest.importorskip("jax", reason="jax is not installed")
    pytest.importorskip("torch", reason="torch is not installed")
    import torch

    for bad in (0, torch.device("cpu"), object()):
        with pytest.raises(ValueError, match="invalid jax device .*expected a jax.Device or a name"):
            xpnet.get_backend("jax", bad)
    committed = jax.device_put(jax.numpy.ones(2), jax.devices()[0])
    assert get_backend("jax", committed.sharding).device == jax.devices()[0]
    script = """
import jax, numpy as np, xpnet
from jax.sharding import Mesh, NamedSharding, PartitionSpec
x = jax.device_put(jax.numpy.ones((4, 2)), NamedSharding(Mesh(np.array(jax.devices()), ("d",)), PartitionSpec("d")))
try:
    xpnet.get_backend("jax", x.sharding)
except ValueError as exc:
    print(exc)
"""
    env = subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert "spans 2 devices (an array sharded over them); xpnet computes on one device" in out.stdout, out.stderr


def test_an_array_api_strict_device_that_is_not_one_is_refused():
    pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
    for bad in (5, "device9", object()):
        with pytest.raises(ValueError, match="invalid array_api_strict device"):
            xpnet.get_backend("array_api_strict", bad)


def test_array_api_strict_devices_without_what_xpnet_needs_are_refused_at_the_door(tmp_path):
    """'no_x64' was accepted and full-batch fits worked, then minibatches
    failed deep in the shuffle; float64 on 'no_float64' failed at the first array."""
    strict = pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
    for bad in ("no_x64", strict.Device("no_x64")):
        with pytest.raises(ValueError, match="no_x64' lacks the 64-bit integers"):
            xpnet.get_backend("array_api_strict", bad)
    narrow = xpnet.get_backend("array_api_strict", strict.Device("no_float64"))
    with pytest.raises(ValueError, match="float64 on the array_api_strict device 'no_float64'"):
        xpnet.MLP([2, 2], backend=narrow, dtype="float64")
    net = xpnet.MLP([4, 8, 1], backend=narrow, seed=0)
    X = np.random.default_rng(0).normal(size=(20, 4))
    net.fit(X, X[:, :1], epochs=2, batch_size=5)
    assert net.predict(X).device == strict.Device("no_float64")
    # to(), load and a Neuron there raised array_api_strict's own words, from inside the library
    wide = xpnet.MLP([2, 2], backend="numpy", dtype="float64")
    wide.save(path := tmp_path / "f64.safetensors")
    for move in (lambda: wide.to(narrow), lambda: xpnet.Neuron(3, dtype="float64", backend=narrow)):
        with pytest.raises(ValueError, match="float64 on the array_api_strict device 'no_float64'"):
            move()
    with pytest.raises(ValueError, match=r"model's weights are float64, which array_api_strict .*'no_float64'"):
        xpnet.load(path, backend=narrow)  # load takes no dtype: its own words (test_serialization)


def test_a_float64_neuron_on_jax_without_its_64_bit_mode_is_refused_when_made():
    """It was made, said float64 and held float32 weights; only forward refused."""
    pytest.importorskip("jax", reason="jax is not installed")
    code = ("import xpnet\ntry:\n    xpnet.Neuron(3, 'identity', dtype='float64', backend='jax', seed=0)\n"
            "except ValueError as e:\n    print('refused:', e)\n")  # fmt: skip
    env = subprocess_env(JAX_ENABLE_X64="0", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "refused: float64 on the jax backend needs JAX's 64-bit mode" in out.stdout, out.stdout + out.stderr


def test_to_numpy_of_torch_floats_numpy_lacks_and_of_a_negative_view():
    """bfloat16 became float32, but the float8s failed in torch's ``numpy()``
    (``Got unsupported ScalarType Float8_e4m3fn``), and so did a tensor with
    its negative bit set; both reached every non-torch network this way."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    values = torch.tensor([[0.5, -1.0, 2.0]])
    for dtype in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
        if hasattr(torch, dtype):
            out = xpnet.to_numpy(values.to(getattr(torch, dtype)))
            assert out.dtype == np.float32 and out.tolist() == [[0.5, -1.0, 2.0]]
    assert xpnet.to_numpy(torch._neg_view(values)).tolist() == [[-0.5, 1.0, -2.0]]
    net = xpnet.MLP([3, 2], backend="numpy", seed=0)
    np.testing.assert_array_equal(net.predict(values.to(torch.float8_e4m3fn)), net.predict(values.numpy()))


def test_array_api_strict_set_to_an_older_standard_is_refused_in_words():
    """``ArrayAPIStrictFlags(api_version="2023.12")`` made the first layer fail
    deep inside array-api-strict: ``'float' object has no attribute 'device'``
    (Python scalars in elementwise functions came with 2024.12)."""
    strict = pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
    with strict.ArrayAPIStrictFlags(api_version="2023.12"):
        with pytest.raises(ValueError, match=r"set to version 2023.12 of the array API standard .* needs 2024.12 "
                           r"or later \(set_array_api_strict_flags\(api_version='2024.12'\)\)"):  # fmt: skip
            xpnet.MLP([2, 1], backend="array_api_strict")
    with strict.ArrayAPIStrictFlags(api_version="2024.12"):
        assert xpnet.MLP([2, 1], backend="array_api_strict", seed=0).fit([[1.0, 2.0]], [[0.5]], epochs=1).loss
