"""The backend fixture: one test suite, run on every backend present.

Backends: ``numpy``, ``numpy_readonly`` (NumPy whose arrays refuse writes,
standing in for JAX's immutability), ``array_api_strict`` on its CPU device
and on ``device1`` (a second device that behaves like a GPU: no silent
conversion to NumPy, no mixing devices), ``torch`` (CPU or CUDA), ``jax`` and
``cupy`` when usable.

Select with ``--backends numpy,torch`` or ``XPNET_TEST_BACKENDS``. A backend
that was asked for but cannot be used is an error; one that was not asked for
and cannot be used is skipped, with the probe's reason.
"""

from __future__ import annotations

import functools
import os
import types
from dataclasses import dataclass

import numpy as np
import pytest

import xpnet
from xpnet._backend import Backend, backend_status

ALL_BACKENDS = (
    "numpy",
    "numpy_readonly",
    "array_api_strict",
    "array_api_strict:device1",
    "torch",
    "jax",
    "cupy",
)


def pytest_configure(config):
    # The CLI on JAX keeps its compiled programs in the user's cache folder;
    # the suite never writes there (tests/test_cli.py turns it on in a temporary one).
    os.environ.setdefault("XPNET_JAX_CACHE", "0")
    # The suite compares float64 results on every backend; JAX needs its
    # 64-bit mode for that (xpnet refuses float64 on JAX without it). In the
    # environment too: scikit-learn's n_jobs workers and the tests' child
    # processes start with their own JAX (tests that need 32-bit mode say so).
    os.environ.setdefault("JAX_ENABLE_X64", "1")
    try:
        import jax
    except Exception:
        return
    jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="session")
def _reads_refused_as_on_a_gpu():
    """Under ``jax.transfer_guard("disallow")``, every implicit device-to-host
    read refused, as on a GPU (``bool()``/``float()`` of an array,
    ``np.asarray``, ``.item()``, an array baked into a program as a constant);
    explicit ones (``jax.device_get``) pass. On JAX's CPU device such a read is
    zero-copy (``_value``, or NumPy's buffer protocol) and the guard never sees
    it, so the CPU suite passed what a GPU refuses. Outside the guard reads
    behave as before. NumPy's conversions are caught where called by name
    (``np.asarray(a)``), not inside NumPy's C (``np.concatenate([a])``).
    Through JAX's private names: where they moved, tests run with the CPU's
    guard (tests/test_jax_transfers.py says so)."""
    try:
        from jax._src import config as jax_config
        from jax._src.array import ArrayImpl
        from jax._src.lib import guard_lib

        read, level = ArrayImpl._value.fget, jax_config.transfer_guard_device_to_host
    except (ImportError, AttributeError):
        yield
        return

    def refused(array):
        explicit = guard_lib.thread_local_state().explicit_device_get
        if level.value == "disallow_explicit" or (level.value == "disallow" and not explicit):
            raise RuntimeError(f"Disallowed device-to-host transfer (as on a GPU): shape={array.shape}")

    def guarded(self):
        refused(self)
        return read(self)

    def converts_guarded(convert):
        def convert_guarded(obj, *args, **kwargs):
            if type(obj) is ArrayImpl:
                refused(obj)
            return convert(obj, *args, **kwargs)

        return functools.wraps(convert)(convert_guarded)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ArrayImpl, "_value", property(guarded))
        for name in ("asarray", "array", "asanyarray", "ascontiguousarray"):
            patch.setattr(np, name, converts_guarded(getattr(np, name)))
        yield


def pytest_addoption(parser):
    parser.addoption(
        "--backends",
        default=None,
        help=f"comma-separated backends to test (default: all usable); from {', '.join(ALL_BACKENDS)}",
    )


def _requested(config) -> list[str] | None:
    raw = config.getoption("--backends") or os.environ.get("XPNET_TEST_BACKENDS", "")
    if not raw.strip():
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL_BACKENDS]
    if unknown:
        raise pytest.UsageError(f"unknown backend(s) {unknown}; choose from {', '.join(ALL_BACKENDS)}")
    return names


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        names = _requested(metafunc.config) or list(ALL_BACKENDS)
        metafunc.parametrize("backend", names, indirect=True)


class FrozenArray(np.ndarray):
    """An ndarray whose operator and ufunc results are read-only too, so that
    ``v *= mu`` on any array the library made (``mu * v + g``) fails."""

    def __array_wrap__(self, obj, context=None, return_scalar=False):
        out = super().__array_wrap__(obj, context, return_scalar)
        return freeze(out)

    # NumPy's own mean/var/std divide their fresh sums in place: compute them
    # on a plain view, then freeze the result.
    def mean(self, *args, **kwargs):
        return freeze(np.asarray(self).mean(*args, **kwargs))

    def var(self, *args, **kwargs):
        return freeze(np.asarray(self).var(*args, **kwargs))

    def std(self, *args, **kwargs):
        return freeze(np.asarray(self).std(*args, **kwargs))


def freeze(value):
    """Read-only views of every ndarray in ``value`` (tuples and lists too)."""
    if isinstance(value, np.ndarray):
        out = value.view(FrozenArray)
        out.flags.writeable = False
        return out
    if isinstance(value, tuple | list):
        return type(value)(freeze(v) for v in value)
    return value


class FrozenNamespace(types.ModuleType):
    """The NumPy namespace with every function's result frozen: the arrays
    the library creates (``zeros_like`` for optimizer state included) refuse
    writes, as JAX's do."""

    def __init__(self, base):
        super().__init__(base.__name__ + ".frozen")
        for name, value in vars(base).items():
            if callable(value) and not isinstance(value, type) and not name.startswith("__"):
                value = _frozen_call(value)
            setattr(self, name, value)


def _frozen_call(fn):
    def call(*args, **kwargs):
        return freeze(fn(*args, **kwargs))

    call.__name__ = getattr(fn, "__name__", "call")
    return call


@dataclass(frozen=True)
class ReadOnlyNumpyBackend(Backend):
    """NumPy whose every array, handed to a model or made by the library
    (through ``xp`` or an operator), is read-only, so any in-place write
    fails, as it would on JAX."""

    def asarray(self, obj, dtype=None, *, copy=False):
        return freeze(super().asarray(obj, dtype, copy=copy))


def make_backend(param: str) -> Backend:
    """The Backend for a fixture parameter, or raise BackendUnavailable."""
    if param == "numpy_readonly":
        base = xpnet.get_backend("numpy")
        return ReadOnlyNumpyBackend(base.name, FrozenNamespace(base.xp), base.device)
    name, _, device = param.partition(":")
    return xpnet.get_backend(name, device or None)


@pytest.fixture
def backend(request) -> Backend:
    param = request.param
    name = param.partition(":")[0].replace("_readonly", "")
    status = backend_status(name)
    if not status.usable:
        requested = _requested(request.config)
        if requested is not None and param in requested:
            pytest.fail(f"backend {param!r} was asked for but is not usable: {status.reason}", pytrace=False)
        pytest.skip(f"{param}: {status.reason}")
    return make_backend(param)


@pytest.fixture
def xp(backend):
    return backend.xp


def usable_backend_params() -> list[str]:
    """Fixture parameters whose backend is usable here (for pairwise tests)."""
    out = []
    for p in ALL_BACKENDS:
        name = p.partition(":")[0].replace("_readonly", "")
        if backend_status(name).usable:
            out.append(p)
    return out
