"""Saving and loading models as safetensors files.

A model file holds one tensor per parameter and buffer, named by its place
in the layer tree (``layers.<i>.weight``, ``layers.<i>.bias``,
``layers.<i>.<j>.running_mean`` inside a container) and string metadata: ``format`` (``"xpnet"``),
``format_version``, ``architecture`` (JSON), ``dtype`` and ``info`` (the
network's JSON-able notes). Parameters are copied to the host per library
(never by moving the live model), so a model saved on any backend loads on
any other.

Writes are atomic: the bytes go to a temporary file in the same folder, which
is flushed, fsynced and renamed over the target, so a crash leaves either the
old file or the new one. Reads never execute anything from the file: the
header is parsed as JSON and checked (format, version, architecture, names,
shapes, dtypes) before a single array is built; anything else is a
``ValueError`` that says what is wrong.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ._backend import get_backend, to_numpy
from .network import DTYPES, Network

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "read_model_file", "save", "write_atomic"]

FORMAT = "xpnet"
FORMAT_VERSION = 1
_MAX_HEADER = 100 * 1024 * 1024
_SAFETENSORS_DTYPES = {"F32": "float32", "F64": "float64"}


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def model_tensors(net: Network, params: list[Any] | None = None, buffers: list[Any] | None = None) -> dict[str, np.ndarray]:
    """The network's parameters and buffers (or ``params``/``buffers``, lists
    in ``Network._params``/``_buffers`` order) as host arrays, by file name."""
    params = net._params() if params is None else params
    buffers = net._buffers() if buffers is None else buffers
    names = net._parameter_names() + net._buffer_names()
    return {name: np.ascontiguousarray(to_numpy(a)) for name, a in zip(names, [*params, *buffers])}


def model_metadata(net: Network) -> dict[str, str]:
    from . import __version__

    try:
        info = json.dumps(net.info)
    except TypeError as exc:
        raise TypeError(f"Network.info must hold JSON-able values only: {exc}") from None
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "architecture": json.dumps(net.config()),
        "dtype": net.dtype,
        "info": info,
        "xpnet_version": __version__,
    }


def save(net: Network, path: str | os.PathLike) -> None:
    """Write ``net`` to ``path`` (safetensors), atomically."""
    write_atomic(path, model_tensors(net), model_metadata(net))


def write_atomic(path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Serialize, write to a temporary file beside ``path``, fsync, rename.

    A write killed half-way leaves at most that temporary file (named after
    ``path``), which the next write to ``path`` removes."""
    from safetensors.numpy import save as st_save

    path = Path(path)
    data = st_save(tensors, metadata=metadata)
    folder = path.parent if str(path.parent) else Path(".")
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a saved model is an ordinary file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_temporaries(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    for stale in folder.glob(f".{path.name}.*.tmp"):
        try:
            stale.unlink()
        except OSError:
            pass


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on every platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Validated ``(metadata, tensors)`` of an xpnet file, as host data.

    ``metadata`` has ``architecture`` and ``info`` parsed from JSON. Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` for anything
    that is not a complete, supported xpnet file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such model file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a model file")
    data = path.read_bytes()
    header = _parse_header(data, path)
    meta = _parse_metadata(header.get("__metadata__"), path)
    dtype = meta["dtype"]
    names, shapes, _ = _tensor_layout(meta["architecture"], path)
    expected = dict(zip(names, shapes))
    stored = {k: v for k, v in header.items() if k != "__metadata__"}
    model_names = {k for k in stored if k.startswith("layers.")}
    missing, extra = set(expected) - model_names, model_names - set(expected)
    if missing or extra:
        raise ValueError(
            f"{path}: tensors do not match the architecture "
            f"(missing: {sorted(missing) or 'none'}, unexpected: {sorted(extra) or 'none'})"
        )
    for name, info in stored.items():
        if not isinstance(info, dict) or "dtype" not in info or "shape" not in info:
            raise ValueError(f"{path}: corrupt header entry for tensor {name!r}")
        if name in expected:
            if _SAFETENSORS_DTYPES.get(info["dtype"]) != dtype:
                raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}, the model says {dtype}")
            if tuple(info["shape"]) != expected[name]:
                raise ValueError(
                    f"{path}: tensor {name} has shape {tuple(info['shape'])}, the architecture needs {expected[name]}"
                )
    try:
        from safetensors.numpy import load as st_load

        tensors = st_load(data)
    except Exception as exc:  # SafetensorError and friends: truncated or corrupt payload
        raise ValueError(f"{path}: corrupt or truncated safetensors data ({exc})") from None
    return meta, tensors


def _parse_header(data: bytes, path: Path) -> dict[str, Any]:
    if len(data) < 8:
        raise ValueError(f"{path} is not a safetensors file: {len(data)} bytes is too short (truncated?)")
    (n,) = struct.unpack("<Q", data[:8])
    if n == 0 or n > _MAX_HEADER or n > len(data) - 8:
        raise ValueError(
            f"{path} {_what_else(data)}: header size {n} does not fit its {len(data)} bytes (truncated or not safetensors)"
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path} {_what_else(data)}: its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file: its header is not a JSON object")
    return header


def _what_else(data: bytes) -> str:
    """Name a common wrong file (for the message only: nothing is decoded)."""
    if data[:2] == b"PK":
        return "is a ZIP/NPZ archive, not an xpnet model (safetensors) file"
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "looks like a Python pickle; xpnet never unpickles files, it reads safetensors only"
    return "is not a complete safetensors file"


def _parse_metadata(meta: Any, path: Path) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is a safetensors file but not an xpnet model (no 'format: xpnet' metadata)")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise ValueError(f"{path}: invalid format_version {meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} uses xpnet format version {version}, newer than this xpnet reads ({FORMAT_VERSION}); upgrade xpnet"
        )
    if version < 1:
        raise ValueError(f"{path}: invalid format_version {version}")
    dtype = meta.get("dtype")
    if dtype not in DTYPES:
        raise ValueError(f"{path}: unsupported dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    try:
        arch = json.loads(meta.get("architecture", ""))
        info = json.loads(meta.get("info", "{}"))
    except json.JSONDecodeError:
        raise ValueError(f"{path}: architecture or info metadata is not valid JSON") from None
    _architecture_root(arch, path)
    out = dict(meta)
    out.update(format_version=version, architecture=arch, info=info if isinstance(info, dict) else {})
    return out


def _architecture_root(arch: Any, path: Any) -> Any:
    """The file's layers, built unbuilt from their configs (names looked up
    in the registries; nothing is executed from the file)."""
    from .layers import Sequential, layer_from_config

    if not isinstance(arch, list) or not arch:
        raise ValueError(f"{path}: architecture must be a non-empty list of layers")
    try:
        root = Sequential([layer_from_config(spec) for spec in arch])
        n_in = root.input_width()
        if n_in is None:
            raise ValueError("its first layer does not fix the number of input features")
        root.output_width(n_in)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: invalid architecture: {exc}") from None
    return root


def _tensor_layout(arch: Any, path: Any) -> tuple[list[str], list[tuple[int, ...]], int]:
    """``(names, shapes, n_params)`` of the tensors an architecture needs:
    parameters first, then buffers, as ``Network._params``/``_buffers``."""
    root = _architecture_root(arch, path)
    params, buffers = root.parameter_shapes(), root.buffer_shapes()
    names = [f"layers.{k}" for k in [*params, *buffers]]
    shapes = [tuple(v) for v in [*params.values(), *buffers.values()]]
    return names, shapes, len(params)


def params_from(meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The flat parameter and buffer lists from a file's tensors."""
    names, _, n_params = _tensor_layout(meta["architecture"], "the model file")
    arrays = [tensors[name] for name in names]
    return arrays[:n_params], arrays[n_params:]


def load(path: str | os.PathLike, backend: Any = None, device: Any = None) -> Network:
    """A network read from ``path``, on ``backend``/``device`` (default: auto)."""
    meta, tensors = read_model_file(path)
    target = get_backend(backend, device)
    params, buffers = params_from(meta, tensors)
    params, buffers = [target.asarray(p) for p in params], [target.asarray(b) for b in buffers]
    net = Network._assemble(meta["architecture"], target, meta["dtype"], params, buffers)
    net.info = meta["info"]
    return net
