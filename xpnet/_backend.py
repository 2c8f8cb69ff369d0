"""Backends: which array library (and device) a model computes on.

A :class:`Backend` pairs an Array API namespace with a device. Models hold the
backend they were built with and convert inputs to it once, at their public
entry points; stateless math (activations, losses, layer kernels) never looks
here and takes its namespace from the arrays it is given.

Two checks are kept apart: a library can be *importable* (``import cupy``
works) and still not *usable* (no CUDA driver, no device, a kernel that fails
to compile). Only usable backends are offered; asking for an unusable one
raises :class:`BackendUnavailable` with the reason.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import array_api_compat as compat
import numpy as np

from ._dtypes import dtype_name
from ._sparse import features as sparse_features
from ._sparse import is_sparse

__all__ = [
    "KNOWN_BACKENDS",
    "Backend",
    "BackendStatus",
    "BackendUnavailable",
    "available_backends",
    "backend_status",
    "device_spec",
    "get_backend",
    "to_numpy",
]

#: Every backend name xpnet knows, in the order they are listed and probed.
KNOWN_BACKENDS = ("numpy", "cupy", "torch", "jax", "array_api_strict")




class BackendUnavailable(RuntimeError):
    """A known backend cannot be used here (not installed, no device, ...)."""


@dataclass(frozen=True)
class BackendStatus:
    """What a probe found out about one backend: usable or not, and why."""

    name: str
    usable: bool
    reason: str
    version: str | None = None
    devices: tuple[str, ...] = ()


# --------------------------------------------------------------------------
# Probes: import, then prove the library can compute on a device.
# --------------------------------------------------------------------------


def _probe_numpy() -> BackendStatus:
    return BackendStatus("numpy", True, "usable", np.__version__, ("cpu",))


def _probe_cupy() -> BackendStatus:
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken install raising anything
        return BackendStatus("cupy", False, f"not installed ({_one_line(exc)}); pip install 'xpnet[gpu]'")
    version = getattr(cupy, "__version__", None)
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return BackendStatus("cupy", False, f"installed, no usable CUDA device: {_one_line(exc)}", version)
    if count < 1:
        return BackendStatus("cupy", False, "installed, no CUDA device", version)
    try:
        with cupy.cuda.Device(0):
            probe = cupy.arange(4, dtype=cupy.float32) * 2
            ok = float(probe.sum().get()) == 12.0
    except Exception as exc:
        return BackendStatus("cupy", False, f"installed, a test kernel failed: {_one_line(exc)}", version)
    if not ok:
        return BackendStatus("cupy", False, "installed, a test kernel computed a wrong result", version)
    return BackendStatus("cupy", True, "usable", version, tuple(str(i) for i in range(count)))


def _probe_torch() -> BackendStatus:
    try:
        import torch
    except Exception as exc:
        return BackendStatus("torch", False, f"not installed ({_one_line(exc)}); pip install 'xpnet[torch]'")
    devices = ["cpu"]
    try:
        if torch.cuda.is_available():
            devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    except Exception:  # a broken CUDA setup still leaves the CPU usable
        pass
    return BackendStatus("torch", True, "usable", torch.__version__, tuple(devices))


def _probe_jax() -> BackendStatus:
    try:
        import jax
        import jax.numpy as jnp

        devices = tuple(str(d) for d in jax.devices())
        # one small program (compiled and run): the compiler and the device work. Run
        # concretely even when the first use is inside a user's jax.jit trace, where
        # float() of a traced value fails and the probe's answer is kept for the process. The
        # answer is read explicitly: an implicit read inside a user's jax.transfer_guard("disallow")
        # is refused on a GPU, and JAX was then "not working" for the rest of the process
        with jax.ensure_compile_time_eval():
            ok = float(jax.device_get(jax.jit(jnp.sum)(jax.device_put(np.arange(4, dtype=np.float32))))) == 6.0
    except Exception as exc:
        return BackendStatus("jax", False, f"not installed or not working ({_one_line(exc)}); pip install 'xpnet[jax]'")
    if not ok:
        return BackendStatus("jax", False, "installed, a test program computed a wrong result", jax.__version__)
    return BackendStatus("jax", True, "usable", jax.__version__, devices)


#: xpnet's math passes Python scalars to elementwise functions
#: (``maximum(x, 0.0)``): the standard allows them from its 2024.12 revision,
#: array-api-strict implements them from 2.4. An older package (checked once,
#: by the probe) or the package set to an older standard (its ``api_version``
#: flag, which may change at any time: checked per backend) failed in the
#: first layer, deep inside it (``'float' object has no attribute 'device'``).
STRICT_MIN = (2, 4)
STRICT_MIN_API_VERSION = "2024.12"


def _probe_array_api_strict() -> BackendStatus:
    try:
        import array_api_strict as strict
    except Exception as exc:
        return BackendStatus(
            "array_api_strict", False, f"not installed ({_one_line(exc)}); pip install array-api-strict"
        )
    version = strict.__version__
    if _release(version) < STRICT_MIN:  # its functions refuse the Python scalars xpnet's math passes them
        wanted = ".".join(map(str, STRICT_MIN))
        return BackendStatus("array_api_strict", False, f"installed {version}, older than {wanted}, the first whose "
                             f"functions take Python scalars (maximum(x, 0.0)); pip install -U 'array-api-strict>="
                             f"{wanted}'", version)  # fmt: skip
    return BackendStatus("array_api_strict", True, "usable", version, _STRICT_DEVICES)


def _release(version: str) -> tuple[int, ...]:
    """``"2.3.1"`` as ``(2, 3, 1)``: the leading numbers of a version."""
    numbers = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(n) for n in numbers.group().split(".")) if numbers else ()


def _require_strict_api_version(strict: Any) -> None:
    """The flag half of the check described at :data:`STRICT_MIN`."""
    flags = getattr(strict, "get_array_api_strict_flags", dict)()
    version = str(flags.get("api_version", STRICT_MIN_API_VERSION))
    if _release(version) < _release(STRICT_MIN_API_VERSION):
        wanted = STRICT_MIN_API_VERSION
        raise ValueError(f"array_api_strict is set to version {version} of the array API standard (its api_version "
                         f"flag); xpnet needs {wanted} or later (set_array_api_strict_flags(api_version={wanted!r}))")


_PROBES = {
    "numpy": _probe_numpy,
    "cupy": _probe_cupy,
    "torch": _probe_torch,
    "jax": _probe_jax,
    "array_api_strict": _probe_array_api_strict,
}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@functools.cache
def _probe(name: str) -> BackendStatus:
    """Probe once per process: importing CuPy and running a kernel is slow."""
    return _PROBES[name]()


def backend_status(name: str | None = None) -> BackendStatus | list[BackendStatus]:
    """The probe result of one backend, or of all of them (for ``xpnet info``)."""
    if name is None:
        return [_probe(n) for n in KNOWN_BACKENDS]
    _check_known(name)
    return _probe(name)


def available_backends() -> list[str]:
    """Names of the backends usable here, in :data:`KNOWN_BACKENDS` order."""
    return [n for n in KNOWN_BACKENDS if _probe(n).usable]


def _check_known(name: str) -> None:
    if name not in KNOWN_BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(KNOWN_BACKENDS)} (or 'auto')")


# --------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------


def _resolve_device(name: str, device: Any) -> Any:
    """Turn a user's device (None, string, int, native object) into the library's."""
    if name == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend has only the device 'cpu', got {device!r}")
        return "cpu"
    if name == "cupy":
        return _cupy_device(device)
    if name == "torch":
        return _torch_device(device)
    if name == "jax":
        return _jax_device(device)
    if name == "array_api_strict":
        return _strict_device(device)
    raise AssertionError(name)  # pragma: no cover - _check_known ran first


#: array_api_strict's devices xpnet runs on ("no_x64" has no 64-bit integers, which row indices need).
_STRICT_DEVICES = ("CPU_DEVICE", "device1", "device2", "no_float64")


def _strict_device(device: Any) -> Any:
    import array_api_strict as strict

    _require_strict_api_version(strict)
    if device is None or device == "cpu":
        return strict.Device("CPU_DEVICE")
    if isinstance(device, str | strict.Device):
        name = device if isinstance(device, str) else str(getattr(device, "_device", device))
        if name in _STRICT_DEVICES:
            return strict.Device(name)
    raise ValueError(f"invalid array_api_strict device {device!r}; expected one of {', '.join(_STRICT_DEVICES)} "
                     "(a name or an array_api_strict.Device; 'no_x64' lacks the 64-bit integers of xpnet's row "
                     "indices)")  # fmt: skip


def _usable_torch_device(dev: Any, asked: Any) -> Any:
    """``dev`` if torch can make a tensor there (``mps`` on a build without
    it, ``xpu`` without a driver fail here, with torch's reason, not at the
    first array of a fit)."""
    import torch

    if dev.type == "cpu":
        return dev
    try:
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError, NotImplementedError) as exc:
        reason = _one_line(exc).split(". ")[0][:200]  # torch's dispatcher lists every backend after its first sentence
        raise BackendUnavailable(f"torch device {asked!r} asked for, but torch cannot use it here: {reason}") from None
    return dev


def _torch_device(device: Any) -> Any:
    """A ``torch.device`` in the form its arrays report: ``cuda`` (or None on
    a CUDA machine) becomes ``cuda:<current index>``, since torch compares
    ``cuda`` and ``cuda:0`` as different devices."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid torch device {device!r}: {_one_line(exc)}") from None
    if dev.type == "meta":
        raise ValueError(f"torch device {device!r} holds shapes without data, so nothing can train or predict "
                         "there; expected 'cpu' or a CUDA device")  # fmt: skip
    if dev.type != "cuda":
        return _usable_torch_device(dev, device)
    if not torch.cuda.is_available():
        raise BackendUnavailable(f"torch device {device!r} asked for, but torch sees no CUDA device")
    index = torch.cuda.current_device() if dev.index is None else dev.index
    count = torch.cuda.device_count()
    if not 0 <= index < count:
        raise ValueError(f"torch device {device!r} does not exist; this machine has {count} CUDA device(s)")
    return torch.device("cuda", index)


def _jax_device(device: Any) -> Any:
    """A ``jax.Device``, the object JAX arrays report. ``None`` and a platform
    without index (``'cuda'``, ``'gpu'``) mean JAX's default device when it is
    of that platform (``jax_default_device``), else the platform's first."""
    import jax

    default = getattr(jax.config, "jax_default_device", None)
    if device is None:
        device = default if default is not None else jax.devices()[0]
    if not isinstance(device, str):
        return _one_jax_device(device)
    platform, _, index = device.partition(":")
    try:
        devs = jax.devices(platform)
        if index and not -len(devs) <= int(index) < len(devs):  # IndexError said only "list index out of range"
            raise ValueError(f"invalid jax device {device!r}: JAX has {len(devs)} {platform} device(s), "
                             f"{', '.join(map(str, devs))}")  # fmt: skip
        if index:
            return devs[int(index)]
        if isinstance(default, str):
            default = jax.devices(default)[0]
        return default if default in devs else devs[0]
    except (RuntimeError, ValueError) as exc:
        if str(exc).startswith("invalid jax device"):
            raise
        raise ValueError(f"invalid jax device {device!r}: {_one_line(exc)}") from None


def _one_jax_device(device: Any) -> Any:
    """A ``jax.Device`` given as itself or as a sharding of one device (what
    a committed array reports); anything else failed at the first
    ``device_put``, deep in JAX (a sharding over several devices too: xpnet
    computes on one)."""
    import jax

    devices = getattr(device, "device_set", None) if isinstance(device, jax.sharding.Sharding) else {device}
    if devices is not None and len(devices) == 1 and isinstance(next(iter(devices)), jax.Device):
        return next(iter(devices))
    if devices is not None and len(devices) > 1:
        raise ValueError(f"jax device {device!r} spans {len(devices)} devices (an array sharded over them); xpnet "
                         "computes on one device: gather the array onto one (jax.device_put(x, jax.devices()[0]))")
    raise ValueError(f"invalid jax device {device!r}: expected a jax.Device or a name such as 'cpu:0' or 'cuda:0'")


def _cupy_device(device: Any) -> Any:
    """A ``cupy.cuda.Device``: what ``array_api_compat.device`` returns for
    CuPy arrays, so devices compare equal, and a context to allocate in."""
    import cupy

    return cupy.cuda.Device(_cupy_device_index(device))


def _cupy_device_index(device: Any) -> int:
    import cupy

    if isinstance(device, cupy.cuda.Device):
        return int(device.id)
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    if isinstance(device, str):
        kind, _, index = device.partition(":")
        if kind not in ("cuda", "gpu") or (index and not index.isdigit()):
            raise ValueError(f"invalid cupy device {device!r}; expected an index such as 0 or 'cuda:0'")
        device = int(index) if index else None
    if device is None:  # as torch's 'cuda': the current device (0 unless the caller chose another)
        device = cupy.cuda.runtime.getDevice()
    if isinstance(device, int) and not isinstance(device, bool):
        count = cupy.cuda.runtime.getDeviceCount()
        if not 0 <= device < count:
            raise ValueError(f"cupy device {device} does not exist; this machine has {count} CUDA device(s)")
        return device
    raise ValueError(f"invalid cupy device {device!r}; expected an index such as 0 or 'cuda:0'")


# --------------------------------------------------------------------------
# Host copies, per library (np.asarray of a device array is a bug)
# --------------------------------------------------------------------------


def device_spec(backend: Backend) -> str:
    """The backend's device as a string :func:`get_backend` takes back (what
    a pickle keeps): ``"cpu"``, ``"cuda:1"``, ``"gpu:0"``, ``"device1"``.
    ``str()`` of a library's device object is not always one."""
    device = backend.device
    if backend.name == "cupy":
        return f"cuda:{device.id}"
    if backend.name == "jax":
        import jax

        return f"{device.platform}:{jax.devices(device.platform).index(device)}"
    if backend.name == "array_api_strict":
        return str(getattr(device, "_device", device))
    return str(device)


def backend_for_unpickling(name: str, device: str) -> Backend:
    """The pickled backend and device (a :func:`device_spec`), or the host
    when that device is not here (a GPU model unpickled in a CPU worker)."""
    try:
        return get_backend(name, device)
    except Exception:
        return get_backend(name)


def to_numpy(a: Any) -> np.ndarray:
    """Any supported array (or Python number / list) as a NumPy array on the
    host; a SciPy sparse matrix as its dense array. Host memory is shared,
    not copied, where it can be (NumPy, torch on the CPU): copy before
    writing into the result."""
    if isinstance(a, np.ndarray | np.generic):
        return np.asarray(a)
    if a is None:
        raise TypeError("to_numpy takes an array, a number or a list of numbers, got None")
    if is_sparse(a):  # numpy.asarray made a 0-d array holding the matrix as one Python object
        return a.toarray()
    if compat.is_cupy_array(a):
        return a.get()
    if compat.is_torch_array(a):
        a = a.detach().cpu().resolve_conj().resolve_neg()  # numpy() refuses a tensor with either view bit set
        return (a.float() if numpy_lacks_dtype(a) else a).numpy()
    if compat.is_jax_array(a):
        import jax

        return np.asarray(jax.device_get(a))
    if _is_strict_array(a):
        import array_api_strict as strict

        return np.from_dlpack(a.to_device(strict.Device("CPU_DEVICE")))
    if compat.is_array_api_obj(a):
        # Another Array API library: DLPack to the host is the standard way.
        return np.from_dlpack(a)
    return np.asarray(a)


def numpy_lacks_dtype(a: Any) -> bool:
    """A torch float dtype NumPy has no match for (bfloat16, the float8s): float32 holds their values exactly."""
    return a.is_floating_point() and str(a.dtype) not in ("torch.float16", "torch.float32", "torch.float64")


def _is_strict_array(a: Any) -> bool:
    return type(a).__module__.startswith("array_api_strict")


_OWNS = {
    "numpy": lambda o: isinstance(o, np.ndarray),
    "cupy": compat.is_cupy_array,
    "torch": compat.is_torch_array,
    "jax": compat.is_jax_array,
    "array_api_strict": _is_strict_array,
}


# --------------------------------------------------------------------------
# Backend
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """An array namespace on one device. Get one with :func:`get_backend`.

    ``asarray`` is the one door through which outside data enters: lists,
    NumPy arrays and arrays of *other* backends are converted (through the
    host when they come from another library), arrays already here are
    cast/moved only if needed.
    """

    name: str
    xp: Any = field(repr=False, compare=False)
    device: Any

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by name and device (:func:`device_spec`): the namespace is
        a module, which does not pickle (a layer of a network, pickled alone,
        holds its backend). A subclass (the tests' read-only NumPy) comes
        back as the plain backend of its name."""
        return backend_for_unpickling, (self.name, device_spec(self))

    def __copy__(self) -> Backend:
        return self  # immutable, as a tuple of immutables

    def __deepcopy__(self, memo: dict[int, Any]) -> Backend:
        return self

    def asarray(self, obj: Any, dtype: Any = None, *, copy: bool = False) -> Any:
        """``obj`` as an array of this backend and device (and ``dtype``).

        With ``copy=True`` the result never shares memory with ``obj``, so a
        caller's later writes to its own array cannot reach a model.
        """
        dtype = self.dtype(dtype) if dtype is not None else None
        xp = self.xp
        if is_sparse(obj):  # on NumPy a sparse X stays sparse (xpnet._sparse); refused elsewhere
            out = sparse_features(self, obj, None if dtype is None else _numpy_dtype(dtype), "this input")
            return out.copy() if copy and out is obj else out
        if self.owns(obj):
            out = obj
            if self.name == "torch" and out.requires_grad:  # a user's autograd graph stays theirs: xpnet keeps none
                out = out.detach()
            if compat.device(out) != self.device:
                if dtype is not None and out.dtype != dtype and not self._holds(out.dtype):
                    out = xp.astype(out, dtype)  # where it is: this device has no room for its dtype (float64)
                out = self._to_device(out)
            if dtype is not None and out.dtype != dtype:
                out = xp.astype(out, dtype)
            if self.name == "jax" and not out.committed:  # jnp.asarray's: jax.jit compiles anew for those
                out = self._to_device(out)  # the same buffer, committed: the programs host data compiled run
        else:
            given = to_numpy(obj)
            if not given.dtype.isnative:  # big-endian data: torch, JAX and array-api-strict take only the native order
                given = given.astype(given.dtype.newbyteorder("="))
            host = given if dtype is None else given.astype(_numpy_dtype(dtype), copy=False)
            out = self._from_host(host, private=host is not given)
            if self.name == "jax":  # jax.device_put copied it already
                return out
        if copy:
            out = xp.asarray(out, copy=True)
        return out

    def to_numpy(self, a: Any) -> np.ndarray:
        """:func:`xpnet.to_numpy` (a view of host memory where it can be)."""
        return to_numpy(a)

    def to_floats(self, scalars: list[Any]) -> list[float]:
        """0-d arrays to Python floats in one device-to-host transfer."""
        return [float(v) for v in self.to_host(scalars)]

    def to_host(self, scalars: list[Any]) -> list[Any]:
        """0-d arrays to host NumPy values with one sync: on NumPy there is
        nothing to transfer; JAX copies them all at once (``jax.device_get``:
        stacking them would compile a program per count, on first use); the
        others stack them (cast to the first one's dtype) into one transfer."""
        if self.name == "numpy":
            return [np.asarray(a) for a in scalars]
        if self.name == "jax":
            import jax

            return list(jax.device_get(list(scalars)))
        xp = self.xp
        dtype = scalars[0].dtype
        stacked = xp.stack([a if a.dtype == dtype else xp.astype(a, dtype) for a in scalars])
        return list(self.to_numpy(stacked))

    def owns(self, obj: Any) -> bool:
        """Is ``obj`` an array of this backend's library (on any device)?"""
        return _OWNS[self.name](obj)

    def dtype(self, dtype: Any) -> Any:
        """The namespace's dtype for any spelling of float32/float64."""
        name = dtype_name(dtype)
        if name == "float64" and self.name == "jax":
            _require_jax_x64()
        if name == "float64" and self.name == "array_api_strict" and device_spec(self) == "no_float64":
            raise ValueError("float64 on the array_api_strict device 'no_float64' is not supported by that device; "
                             "use dtype='float32' or another device (CPU_DEVICE, device1, device2)")  # fmt: skip
        return getattr(self.xp, name)

    def _holds(self, dtype: Any) -> bool:
        """Can this backend's device hold ``dtype`` (a dtype of its library)?
        A float64 array of array-api-strict's CPU device cannot move to its
        ``no_float64`` device as it is, only after a cast. Dtypes other than
        float32 and float64 move as they are (the caller casts them)."""
        try:
            name = dtype_name(dtype)
        except ValueError:
            return True
        try:
            self.dtype(name)
        except ValueError:
            return False
        return True

    def _to_device(self, a: Any) -> Any:
        if self.name == "cupy":
            import cupy

            with self.device:  # some CuPy versions ignore device= (array-api-compat#337)
                return cupy.asarray(a)
        return compat.to_device(a, self.device)

    def _from_host(self, host: np.ndarray, private: bool = False) -> Any:
        """``host`` on this backend's device; ``private``: nobody else holds
        ``host`` (a cast just made it), so JAX needs no copy of its own."""
        if self.name == "numpy":
            return host
        if self.name == "cupy":
            import cupy

            with self.device:  # some CuPy versions ignore device=
                return cupy.asarray(host)
        if self.name == "torch":
            import torch

            if not (host.flags.c_contiguous and host.flags.writeable):
                host = host.copy(order="C")  # torch wraps only writeable C-ordered memory
            return torch.from_numpy(host).to(self.device)
        if self.name == "jax":  # a copy, as jnp.asarray's, without compiling a conversion per shape
            import jax

            # device_put reads host rows asynchronously, and on the CPU it may
            # share their memory (JAX 0.10, despite may_alias=False): a private
            # host copy only then, so that a caller's later write cannot reach
            # the model (always copying first held the data twice for large X)
            out = jax.device_put(host, self.device)
            if not private and _reads_host_memory(out, host):
                out = jax.device_put(np.array(host, copy=True), self.device)
            return out
        return self.xp.asarray(host, device=self.device)

    def __str__(self) -> str:
        return f"{self.name} ({self.device})"

    def __hash__(self) -> int:  # CuPy's Device objects compare but do not hash
        return hash((self.name, str(self.device)))


def _reads_host_memory(out: Any, host: np.ndarray) -> bool:
    """Whether JAX array ``out``, just put on its device, lies in ``host``'s
    memory (only a CPU device's can), once device_put has finished reading
    ``host``: it copies asynchronously (JAX 0.10 on the CPU, even with
    ``may_alias=False``), and a caller's write right after the call reached
    the copy. A tracer (a network made under the caller's ``jax.jit``) holds
    no memory."""
    import jax

    if host.nbytes == 0 or isinstance(out, jax.core.Tracer):
        return False
    out.block_until_ready()
    if getattr(out.device, "platform", None) != "cpu":
        return False
    start = host.__array_interface__["data"][0]
    return start <= out.unsafe_buffer_pointer() < start + host.nbytes


def quiet_float_errors():
    """Silence NumPy's overflow/invalid warnings while training: divergence is
    reported once, as ``FloatingPointError`` by the NaN guard, not as a stream
    of warnings. (NumPy also computes for array-api-strict; others don't warn.)"""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


def own_broadcasting(fn: Any) -> Any:
    """``fn`` (a public entry point) with JAX's NumPy rank promotion allowed:
    xpnet broadcasts on purpose (``X @ W + b``, a row's statistics), and a
    user's ``jax_numpy_rank_promotion='raise'`` (or ``'warn'``), set to catch
    their own broadcasting, failed (or warned) deep inside its layers."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        jax = sys.modules.get("jax")
        if jax is None or getattr(jax.config, "jax_numpy_rank_promotion", "allow") == "allow":
            return fn(*args, **kwargs)
        with jax.numpy_rank_promotion("allow"):
            return fn(*args, **kwargs)

    return wrapper


def float64_scope(backend: Backend) -> Any:
    """A context in which ``backend`` computes float64: JAX's 64-bit mode
    switched on for its duration where it is off (``gradcheck``'s float64
    copy of a float32 JAX network), nothing elsewhere."""
    if backend.name != "jax":
        return contextlib.nullcontext()
    import jax

    if jax.config.read("jax_enable_x64"):
        return contextlib.nullcontext()
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # the older spelling

    return enable_x64(True)


def _require_jax_x64() -> None:
    """JAX silently computes float64 requests in float32 unless 64-bit mode is
    on; refuse instead of training in another precision than asked."""
    import jax

    if not jax.config.read("jax_enable_x64"):
        raise ValueError(
            "float64 on the jax backend needs JAX's 64-bit mode: set JAX_ENABLE_X64=1 "
            "or call jax.config.update('jax_enable_x64', True) before creating arrays"
        )


def _numpy_dtype(dtype: Any) -> np.dtype:
    return np.dtype(dtype_name(dtype))


def _namespace(name: str) -> Any:
    if name == "numpy":
        from ._numpy_namespace import xp
    elif name == "cupy":
        from ._cupy_namespace import xp
    elif name == "torch":
        from ._torch_namespace import xp
    elif name == "jax":
        from ._jax_namespace import xp
    else:
        import array_api_strict as xp
    return xp


def environment_choice() -> tuple[str | None, str | None]:
    """``XPNET_BACKEND`` as ``(name, device)``: a backend's name, or with a
    device after the first colon, ``torch:cuda:1``; ``(None, None)`` when it
    is unset (``auto`` names no backend). ``array_api_strict:device1`` is a
    CPU device that, like a GPU, refuses implicit conversion to NumPy: code
    (or a test suite) run that way finds where it assumed "auto" means
    NumPy, which a GPU machine, where "auto" is CuPy, otherwise finds first."""
    name, _, device = os.environ.get("XPNET_BACKEND", "").strip().partition(":")
    name = name.strip().lower()
    return (None if name in ("", "auto") else name), (device.strip() or None)


def _from_environment(name: str | None, device: Any) -> Backend:
    """The backend "auto" means where ``XPNET_BACKEND`` is set; an unknown
    name or device is named with the variable it came from."""
    try:
        return get_backend(name or _default_name(device), device)
    except ValueError as exc:  # an unknown name or device (an unusable backend is a RuntimeError: its reason)
        env = os.environ.get("XPNET_BACKEND", "").strip()
        raise ValueError(f"{exc} (auto as XPNET_BACKEND={env!r} sets it; the variable takes a backend's name or "
                         "name:device)") from None


def _default_name(device: Any = None) -> str:
    """What auto means without a backend's name: CuPy where it works, else
    NumPy; on the device ``"cpu"`` NumPy, which CuPy has not (a GPU
    machine's ``XPNET_BACKEND=auto:cpu`` or ``get_backend(device="cpu")``)."""
    return "cupy" if not (isinstance(device, str) and device == "cpu") and _probe("cupy").usable else "numpy"


def get_backend(name: str | Backend | None = None, device: Any = None) -> Backend:
    """The backend called ``name`` on ``device``.

    ``None``/``"auto"``: the ``XPNET_BACKEND`` environment variable if set
    (read now, never cached; a device may follow the name and a colon, which
    ``device`` overrides), else ``"cupy"`` if usable, else ``"numpy"``; on
    the device ``"cpu"``, ``"numpy"``.
    """
    if isinstance(name, Backend):
        return name if device is None else get_backend(name.name, device)
    if isinstance(name, str):
        name = name.lower()  # names are case-insensitive, "auto" too
    if name is None or name == "auto":
        name, env_device = environment_choice()
        if name is not None or env_device is not None:
            return _from_environment(name, env_device if device is None else device)
        name = _default_name(device)
    if not isinstance(name, str):
        raise TypeError(f"backend must be a name or a Backend, got {type(name).__name__}")
    _check_known(name)
    status = _probe(name)
    if not status.usable:
        raise BackendUnavailable(f"backend {name!r} is not usable here: {status.reason}")
    return Backend(name, _namespace(name), _resolve_device(name, device))
