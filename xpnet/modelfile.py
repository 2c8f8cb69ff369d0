"""The model file format: safetensors tensors plus checked metadata.

A model file holds one tensor per parameter and buffer, named by its place
in the layer tree (``layers.<i>.weight``, ``layers.<i>.bias``,
``layers.<i>.<j>.running_mean`` inside a container) and string metadata: ``format`` (``"xpnet"``),
``format_version``, ``architecture`` (JSON), ``dtype``, ``info`` (the
network's JSON-able notes) and ``tensors_sha256``, the checksum of every
tensor, so that a file corrupted on disk is refused rather than loaded as
another model (files written before it was added load without the check). Parameters are copied to the host per library
(never by moving the live model), so a model saved on any backend loads on
any other. Checkpoints (:mod:`xpnet.checkpoints`) are model files with more
entries; :mod:`xpnet.serialization` saves and loads networks with this module.
It knows networks only through what it reads of them (``config``, ``dtype``,
``info`` and the parameter lists), so it imports none of the training code.

Writes are atomic: the bytes go to a temporary file in the same folder, which
is flushed, fsynced and renamed over the target, so a crash leaves either the
old file or the new one; concurrent writers of one path each finish (the
last rename wins) and never remove each other's temporary files.

Reads never execute anything from the file. It must be a regular file, read
no further than its header declares; the
header is parsed as JSON with limits and checked (format, version,
architecture, names, shapes, dtypes, offsets) before a single array is
built, and the arrays must be finite; anything else is a ``ValueError`` that
names the file and what is wrong.
"""

from __future__ import annotations

import errno
import functools
import glob
import hashlib
import json
import math
import os
import re
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ._backend import to_numpy
from ._dtypes import DTYPES
from ._files import loads_limited, open_regular, path_text, read_exact, through_links
from ._files import shorten as _short

__all__ = [
    "CHECKSUM", "FORMAT", "FORMAT_VERSION", "STALE_AFTER", "as_saved", "check_checksum", "model_metadata",
    "model_tensors", "params_from", "read_model_file", "tensors_digest", "write_atomic",
]

FORMAT = "xpnet"
FORMAT_VERSION = 1
#: The metadata entry holding :func:`tensors_digest` of the file's tensors.
CHECKSUM = "tensors_sha256"
_MAX_HEADER = 100 * 1024 * 1024
#: The most layers (containers and the layers inside them counted) a model file may hold: a header claiming
#: a million took 47 s and 1 GB of memory to build before it was refused.
MAX_LAYERS = 10_000
_SAFETENSORS_MAX_HEADER = 100_000_000  # the most safetensors writes
_SAFETENSORS_DTYPES = {"F32": "float32", "F64": "float64"}
#: Bytes per element of every safetensors dtype (an entry's offsets must agree).
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
             "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def model_tensors(net: Any, params: list[Any] | None = None, buffers: list[Any] | None = None) -> dict[str, np.ndarray]:
    """The network's parameters and buffers (or ``params``/``buffers``, lists
    in ``Network._params``/``_buffers`` order) as host arrays, by file name."""
    if params is None or buffers is None:  # one commit's arrays: another thread's fit replaces them layer by layer
        committed = net._arrays()
        params = committed[0] if params is None else params
        buffers = committed[1] if buffers is None else buffers
    names = net._parameter_names() + net._buffer_names()
    return {name: np.asarray(to_numpy(a), order="C") for name, a in zip(names, [*params, *buffers])}  # 0-d stays 0-d


def _key_json_would_change(value: Any) -> Any:
    """The first dict key (at any depth) that is not a string, or None.
    (Tuples come back as lists: a value, not a key, and equal in use.)"""
    if isinstance(value, dict):
        for k, v in value.items():
            found = k if not isinstance(k, str) else _key_json_would_change(v)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for v in value:
            found = _key_json_would_change(v)
            if found is not None:
                return found
    return None


def model_metadata(net: Any) -> dict[str, str]:
    from . import __version__

    if not isinstance(net.info, dict):  # load would read it back as {}
        raise TypeError(f"Network.info must be a dict of JSON values, got {type(net.info).__name__}")
    key = _key_json_would_change(net.info)
    if key is not None:  # JSON writes it as a string: 1 and True would load as '1' and 'true'
        raise TypeError(f"Network.info must have string keys, as JSON does: {key!r} would load as another key")
    try:
        info = json.dumps(net.info)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Network.info must hold JSON-able values only: {exc}") from None
    architecture = _architecture_json(net._rebuild_config())
    size = len(json.dumps({"info": info, "architecture": architecture}).encode())
    if size > _SAFETENSORS_MAX_HEADER:  # else safetensors' bare 'header too large', naming neither file nor cause
        raise ValueError(f"cannot save: Network.info and the architecture take {size} bytes in the file's header, "
                         f"which holds at most {_SAFETENSORS_MAX_HEADER}: keep large data out of Network.info")
    for text, what in ((info, "Network.info"), (architecture, "the architecture")):
        try:  # what load accepts: a file save writes must load
            loads_limited(text, what)
        except ValueError as exc:
            raise ValueError(f"cannot save: {exc}") from None
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "architecture": architecture,
        "dtype": net.dtype,
        "info": info,
        "xpnet_version": __version__,
    }


def _architecture_json(configs: list[dict[str, Any]]) -> str:
    """The layers' configs as JSON, NumPy scalars as the numbers they are (a
    config that kept ``np.int64(4)`` is fine everywhere else); anything else
    that JSON cannot hold is named with its layer, before the file is touched."""
    for i, config in enumerate(configs):
        try:
            json.dumps(config, default=_plain_number)
        except (TypeError, ValueError) as exc:
            what = config.get("type", "?") if isinstance(config, dict) else type(config).__name__
            raise TypeError(f"cannot save layer {i} ({what}): its config() must hold JSON values only (numbers, "
                            f"strings, lists, dicts): {exc}") from None  # fmt: skip
    return json.dumps(configs, default=_plain_number)


def as_saved(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The layers' configs as a file holds them and reads them back (a tuple
    as a list, a NumPy scalar as a float): what a file's architecture is
    compared with, else a layer that keeps a tuple never matched its own file."""
    return json.loads(_architecture_json(configs))


def _plain_number(value: Any) -> Any:
    if isinstance(value, np.generic) and value.ndim == 0 and value.dtype.kind in "biuf":
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def write_atomic(path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Serialize, write to a temporary file beside ``path``, fsync, rename.

    The temporary file's name carries this host, process and thread, so
    writers of the same path never touch each other's files: a write only
    removes temporaries left by a dead process on this host, by this thread,
    or older than :data:`STALE_AFTER` seconds (a write killed half-way)."""
    from safetensors.numpy import save_file

    text = path_text(path, "a model or checkpoint path")
    if not text:
        raise ValueError("a model or checkpoint path must be a non-empty file path, got ''")
    if text.endswith(("/", os.sep)) and not Path(text).is_dir():  # Path() drops the slash: a file of that name
        raise ValueError(f"{text} ends with '/', naming a folder, and no such folder exists; a model or checkpoint "
                         "is a file: give its path")  # fmt: skip
    path = through_links(Path(path))
    if path.exists() and not os.access(path, os.W_OK):  # the rename would replace a file its owner protected
        raise PermissionError(errno.EACCES, "the file exists and is not writable", str(path))
    if path.exists() and not path.is_file():  # the rename would replace a device, a FIFO or a folder
        raise ValueError(f"{path} exists and is not a regular file (a folder, a device or a FIFO); a model or "
                         "checkpoint is written by replacing the file at its path, so give the path of a file")  # fmt: skip
    _refuse_unloadable(tensors, metadata, path)
    metadata = {**metadata, CHECKSUM: tensors_digest(tensors)}
    folder = _folder_of(path)
    _remove_stale_temporaries(path)
    owner = f"{_host_tag()}-{os.getpid()}-{threading.get_ident()}-"
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path) + owner, suffix=".tmp", dir=folder)
    except PermissionError:  # it would name the temporary file, not the path asked for
        raise PermissionError(errno.EACCES, f"cannot write {path}: no permission to create a file in the folder",
                              str(folder)) from None  # fmt: skip
    try:
        os.close(fd)
        _save_file(save_file, tensors, tmp, metadata)
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600
        with open(tmp, "r+b") as f:
            _sort_header(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:  # a full disk: name the file
            raise type(exc)(exc.errno, f"cannot write {path}: {exc.strerror}", str(path)) from exc
        raise
    _fsync_folder(folder)


def _folder_of(path: Path) -> Path:
    """The folder ``path`` is written in, which must exist: else mkstemp names
    its temporary file, not the path asked for (and a file in its place is
    named as a file, not as a missing folder)."""
    folder = path.parent if str(path.parent) else Path(".")
    if folder.is_dir():
        return folder
    if folder.exists():
        raise NotADirectoryError(errno.ENOTDIR, f"cannot write {path}: {folder} is a file, not a folder", str(folder))
    raise FileNotFoundError(errno.ENOENT, f"cannot write {path}: no such folder", str(folder))


def tensors_digest(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 of the tensors' names, dtypes, shapes and little-endian bytes,
    in name order: what the file's data means, whatever order safetensors
    lays it out in. Hashed in place (no copy of a little-endian array)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name], dtype=tensors[name].dtype.newbyteorder("<"))
        h.update(json.dumps([name, t.dtype.str, list(t.shape)]).encode())
        h.update(t.reshape(-1).view(np.uint8))
    return h.hexdigest()


def check_checksum(meta: dict[str, Any], tensors: dict[str, np.ndarray], path: Any) -> None:
    """Refuse tensors that are not those the file was written with: a bit
    flipped on disk leaves a finite number that every other check accepts.
    A file without a checksum (an earlier xpnet's) is taken as it is."""
    saved = meta.get(CHECKSUM)
    if saved is None:
        return
    if not isinstance(saved, str) or not re.fullmatch(r"[0-9a-f]{64}", saved):
        raise ValueError(f"{path}: invalid {CHECKSUM} metadata {_short(saved)} (expected 64 hex digits)")
    if tensors_digest(tensors) != saved:
        raise ValueError(f"{path}: its tensor data does not match the checksum saved with it ({CHECKSUM}): the file "
                         "was corrupted, or its tensors edited, after it was written; use another copy")  # fmt: skip


def _refuse_unloadable(tensors: dict[str, np.ndarray], metadata: dict[str, str], path: Path) -> None:
    """Refuse, before the file is touched, model values ``read_model_file``
    refuses: a NaN or infinity, a negative variance (a weight edited in place
    bypasses the setters' checks); else save wrote a file no load reads. In
    every tensor, as load checks them: a checkpoint's optimizer state too
    (Adam's v overflowed), which load and resume refused after the run."""
    modelled = metadata.get("format") == FORMAT and "architecture" in metadata
    arch = json.loads(metadata["architecture"]) if modelled else None
    if modelled and isinstance(arch, list) and _layer_count(arch) > MAX_LAYERS:
        raise ValueError(f"cannot save {path}: the network has more than {MAX_LAYERS} layers, the most a model file "
                         "holds (load refuses more)")  # fmt: skip
    root = _architecture_root(arch, path) if modelled else None
    problem = _refused_values(tensors, list(tensors), root)
    if problem:
        why = "was a weight edited in place?" if problem[0].startswith("tensor layers.") else "did the run diverge?"
        raise ValueError(f"cannot save {path}: {problem[0]}, and load refuses it ({why})")


def _refused_values(tensors: dict[str, np.ndarray], names: list[str], root: Any) -> tuple[str, str] | None:
    """What a model file may not hold, as ``(what, why)``: a NaN or infinity
    in the tensors ``names``, a negative value in a buffer ``root``'s layers
    declare never negative. Checked in pieces: a pass over a large tensor
    holds a mask of a megabyte, not one as large as the tensor."""
    for name in names:
        t = tensors[name]
        if t.dtype.kind == "f" and not _all_finite(t):
            what = "NaN" if np.any(np.isnan(t)) else "infinite values"
            return f"tensor {name} holds {what}", "a model file must hold finite numbers"
    for name in root.nonnegative_buffers() if root is not None else ():
        if np.any(tensors[f"layers.{name}"] < 0):
            return (f"tensor layers.{name} holds negative values",
                    "its layer declares it never negative (nonnegative_buffers: a variance)")  # fmt: skip
    return None


def _all_finite(t: np.ndarray, piece: int = 1 << 20) -> bool:
    flat = t.reshape(-1)
    return all(bool(np.isfinite(flat[i : i + piece]).all()) for i in range(0, flat.size, piece))


def _save_file(save_file: Any, tensors: dict[str, np.ndarray], tmp: str, metadata: dict[str, str]) -> None:
    """safetensors' ``save_file``, which streams the arrays (from safetensors
    0.8 on; before, it holds one bytes copy of each); its I/O errors (a full
    disk) come back as the ``OSError`` they are, which ``write_atomic`` names
    with the path asked for, not as a ``SafetensorError`` naming nothing."""
    try:
        save_file(tensors, tmp, metadata=metadata)
    except Exception as exc:
        code = re.search(r"\(os error (\d+)\)", str(exc))
        if isinstance(exc, OSError) or code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1)))) from exc


def _sort_header(f: BinaryIO) -> None:
    """The safetensors file's header rewritten in place with its keys in
    sorted order: the library writes its metadata in a hash map's order,
    different in every process, so the same model gave files of other bytes
    (and checksums). The tensors' offsets count from the data's start and do
    not change; the header keeps its length, padded with spaces as the format
    allows. (Serialising to bytes first held the tensors three times.)"""
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.dumps(json.loads(f.read(n)), sort_keys=True, separators=(",", ":")).encode()
    if len(header) > n:  # pragma: no cover - compact JSON is never longer than the library's
        return
    f.seek(8)
    f.write(header.ljust(n, b" "))


#: A temporary file older than this (seconds) is a leftover, whoever wrote it.
STALE_AFTER = 15 * 60


def _mode_for(path: Path) -> int:
    """The permissions of the file replaced (a model its owner made private
    stays private), else an ordinary new file's."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temporary_prefix(path: Path) -> str:
    return f".{path.name[:100]}."


@functools.lru_cache(maxsize=1)
def _host_tag() -> str:
    """8 hex digits naming this machine (a process id means nothing on another)."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _remove_stale_temporaries(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    prefix = _temporary_prefix(path)
    now = time.time()
    for tmp in folder.glob(glob.escape(prefix) + "*.tmp"):
        try:
            if _is_stale(tmp.name[len(prefix) :], now - tmp.stat().st_mtime):
                tmp.unlink()
        except OSError:  # gone already (its writer renamed it), or not ours to remove
            pass


def _is_stale(name: str, age: float) -> bool:
    """Whether a temporary named ``<host>-<pid>-<thread>-<random>.tmp`` (or
    anything else) can no longer be in use by its writer."""
    m = re.fullmatch(r"([0-9a-f]{8})-([0-9]{1,9})-([0-9]{1,20})-.*\.tmp", name)
    if m and m[1] == _host_tag():
        pid, thread = int(m[2]), int(m[3])
        if pid == os.getpid():
            return thread == threading.get_ident() or thread not in {t.ident for t in threading.enumerate()}
        if not _process_alive(pid):
            return True
    return age > STALE_AFTER


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would terminate it; rely on the age there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, another user's
        return True
    return True


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


def read_model_file(path: str | os.PathLike, verify: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Validated ``(metadata, tensors)`` of an xpnet file, as host data.

    ``metadata`` has ``architecture`` and ``info`` parsed from JSON. Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` for anything
    that is not a complete, supported xpnet file with finite numbers: a FIFO
    or device, a header that lies about sizes, hostile JSON. Nothing beyond
    the sizes the header declares is read. ``verify=False`` leaves the
    checksum to the caller (:func:`check_checksum`), which checks the
    tensors' meaning first (a checkpoint's training state)."""
    path = Path(path_text(path, "a model or checkpoint path"))
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        n = _header_size(head, size, path)
        raw = read_exact(f, n, path, "the header")
        header = _parse_header(raw, head, path)
        meta = _parse_metadata(header.pop("__metadata__", None), path)
        data_len = _check_entries(header, path)
        if 8 + n + data_len != size:
            raise ValueError(
                f"{path} is truncated or has trailing data: its header declares {8 + n + data_len} bytes, "
                f"the file has {size}"
            )
        _check_against_architecture(header, meta, path)
        blob = head + raw  # the checked header, then the data: the read data is not kept beside the joined copy
        blob += read_exact(f, data_len, path, "the tensor data")
    try:
        from safetensors.numpy import load as st_load

        tensors = st_load(blob)
        del blob
    except Exception as exc:  # SafetensorError and friends: corrupt payload
        raise ValueError(f"{path}: corrupt safetensors data ({exc})") from None
    if not _as_checked(tensors, header):  # the library must have read what was checked
        raise ValueError(f"{path}: the safetensors data does not match its checked header")
    problem = _refused_values(tensors, list(tensors), _architecture_root(meta["architecture"], path))
    if problem:
        raise ValueError(f"{path}: {problem[0]}; {problem[1]}")
    if verify:
        check_checksum(meta, tensors, path)
    return meta, tensors


def _as_checked(tensors: dict[str, np.ndarray], entries: dict[str, Any]) -> bool:
    if set(tensors) != set(entries):
        return False
    for name, t in tensors.items():
        dtype, shape = entries[name]["dtype"], tuple(entries[name]["shape"])
        if t.shape != shape or t.dtype.itemsize != _ITEMSIZE[dtype] or _SAFETENSORS_DTYPES.get(dtype, str(t.dtype)) != str(t.dtype):
            return False
    return True


def _header_size(head: bytes, size: int, path: Path) -> int:
    if len(head) < 8:
        raise ValueError(f"{path} is not a safetensors file: {size} bytes is too short (truncated?)")
    (n,) = struct.unpack("<Q", head)
    if n == 0 or n > _MAX_HEADER or n > size - 8:
        if _is_text(head):  # its "header size" is the code of 8 letters: no more to say about it
            raise ValueError(f"{path} {_what_else(head)}")
        raise ValueError(
            f"{path} {_what_else(head)}: header size {n} does not fit its {size} bytes (truncated or not safetensors)"
        )
    return n


def _parse_header(raw: bytes, head: bytes, path: Path) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} {_what_else(head)}: its header is not valid JSON") from None
    header = loads_limited(text, f"{path}: the safetensors header")
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file: its header is not a JSON object")
    return header


def _check_entries(entries: dict[str, Any], path: Path) -> int:
    """Check every tensor entry's dtype, shape and offsets (contiguous, sized
    as dtype and shape say); return the length of the data they cover."""
    spans = []
    for name, info in entries.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"{path}: corrupt header entry for tensor {_short(name)}: {_short(info)}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _ITEMSIZE:
            raise ValueError(f"{path}: tensor {_short(name)} has an unknown dtype {_short(dtype)}")
        if not isinstance(shape, list) or len(shape) > 16 or not all(_is_count(d) for d in shape):
            raise ValueError(f"{path}: tensor {_short(name)} has an invalid shape {_short(shape)}")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
            raise ValueError(f"{path}: tensor {_short(name)} has invalid data_offsets {_short(offsets)}")
        if offsets[1] - offsets[0] != math.prod(shape) * _ITEMSIZE[dtype]:
            raise ValueError(f"{path}: tensor {_short(name)}: data_offsets {offsets} do not fit shape {shape} of {dtype}")
        spans.append((offsets[0], offsets[1], name))
    end = 0
    for start, stop, name in sorted(spans):
        if start != end:
            raise ValueError(f"{path}: tensor {_short(name)} starts at byte {start}, expected {end} (gap or overlap)")
        end = stop
    return end


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**53


def _check_against_architecture(entries: dict[str, Any], meta: dict[str, Any], path: Path) -> None:
    """The model tensors are exactly those the architecture needs, with its
    shapes and the file's dtype."""
    dtype = meta["dtype"]
    names, shapes, n_params = _tensor_layout(meta["architecture"], path)
    expected = dict(zip(names, shapes))
    others = [k for k in entries if not k.startswith("layers.") and not _is_state_name(k, n_params)]
    if others:
        raise ValueError(f"{path}: unexpected tensor {_short(others[0])} (not a parameter or training state)")
    model_names = {k for k in entries if k.startswith("layers.")}
    missing, extra = set(expected) - model_names, model_names - set(expected)
    if missing or extra:
        raise ValueError(
            f"{path}: tensors do not match the architecture "
            f"(missing: {sorted(missing) or 'none'}, unexpected: {_short(sorted(extra)) if extra else 'none'})"
        )
    for name, shape in expected.items():
        info = entries[name]
        if _SAFETENSORS_DTYPES.get(info["dtype"]) != dtype:
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}, the model says {dtype}")
        if tuple(info["shape"]) != shape:
            raise ValueError(f"{path}: tensor {name} has shape {tuple(info['shape'])}, the architecture needs {shape}")


def _is_state_name(name: str, n_params: int) -> bool:
    """A checkpoint's training state: ``optimizer.<key>.<i>`` (one array per
    parameter), ``train.partial_loss``, or a callback's ``callbacks.<i>.<j>``
    (the checkpoint reader checks these against the run's callbacks)."""
    m = re.fullmatch(r"optimizer\.([A-Za-z_][A-Za-z0-9_]{0,40})\.([0-9]{1,6})", name)
    if name == "train.partial_loss" or (m is not None and int(m[2]) < n_params):
        return True
    return re.fullmatch(r"callbacks\.[0-9]{1,4}\.[0-9]{1,6}", name) is not None


def _what_else(data: bytes) -> str:
    """Name a common wrong file (for the message only: nothing is decoded)."""
    if data[:2] == b"PK":
        return "is a ZIP/NPZ archive, not an xpnet model (safetensors) file"
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "looks like a Python pickle; xpnet never unpickles files, it reads safetensors only"
    if _is_text(data):  # a real header size has NUL bytes; a table given as the model (arguments swapped) has none
        return "is a text file (a CSV table?), not an xpnet model (a safetensors file)"
    return "is not a complete safetensors file"


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return bool(text) and all(ch.isprintable() or ch in "\r\n\t" for ch in text)


def _parse_metadata(meta: Any, path: Path) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is a safetensors file but not an xpnet model (no 'format: xpnet' metadata)")
    for key, value in meta.items():
        if not isinstance(value, str):
            raise ValueError(f"{path}: metadata field {_short(key)} must be a string, got {type(value).__name__}")
    version = meta.get("format_version", "")
    if not re.fullmatch(r"[0-9]{1,9}", version):
        raise ValueError(f"{path}: invalid format_version {_short(version)} (expected a small integer)")
    version = int(version)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} uses xpnet format version {version}, newer than this xpnet reads ({FORMAT_VERSION}); upgrade xpnet"
        )
    if version < 1:
        raise ValueError(f"{path}: invalid format_version {version}")
    dtype = meta.get("dtype")
    if dtype not in DTYPES:
        raise ValueError(f"{path}: unsupported dtype {_short(dtype)}; expected one of {', '.join(DTYPES)}")
    if "architecture" not in meta:
        raise ValueError(f"{path}: no architecture metadata")
    arch = loads_limited(meta["architecture"], f"{path}: the architecture metadata")
    info = loads_limited(meta.get("info", "{}"), f"{path}: the info metadata")
    if not isinstance(info, dict):  # save writes a dict only: an edited file (its notes were dropped silently)
        raise ValueError(f"{path}: the info metadata must be a JSON object, got {type(info).__name__} {_short(info)}")
    try:
        _architecture_root(arch, path)
    except ValueError as exc:
        raise ValueError(f"{exc}{_newer_writer(meta.get('xpnet_version'))}") from None
    out = dict(meta)
    out.update(format_version=version, architecture=arch, info=info)
    return out


def _newer_writer(version: Any) -> str:
    """For an architecture this xpnet cannot build: a note when the file was
    written by a newer xpnet (a layer or setting added since), which an
    upgrade reads; else the refusal read as a missing plugin only."""
    from . import __version__

    def release(text: Any) -> tuple[int, ...]:
        m = re.match(r"[0-9]{1,9}(?:\.[0-9]{1,9})*", text) if isinstance(text, str) else None
        return tuple(int(part) for part in m[0].split(".")) if m else ()

    found = release(version)
    if found <= release(__version__):
        return ""
    shown = ".".join(map(str, found))  # the release only: the field is the file's text
    return f" (the file was written by xpnet {shown}, newer than this one, {__version__}: upgrading xpnet may read it)"


def _architecture_root(arch: Any, path: Any) -> Any:
    """The file's layers, built unbuilt from their configs (names looked up
    in the registries; nothing is executed from the file)."""
    from .layers import Sequential, layer_from_config

    if not isinstance(arch, list) or not arch:
        raise ValueError(f"{path}: architecture must be a non-empty list of layers")
    if _layer_count(arch) > MAX_LAYERS:
        raise ValueError(f"{path}: invalid architecture: it holds more than {MAX_LAYERS} layers, the most a model "
                         "file may hold (an edited or damaged file?)")  # fmt: skip
    try:
        root = Sequential([layer_from_config(spec) for spec in arch])
        n_in = root.input_width()
        if n_in is None:
            raise ValueError("its first layer does not fix the number of input features")
        root.output_width(n_in)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: invalid architecture: {exc}") from None
    return root


def _layer_count(arch: list[Any]) -> int:
    """The layer specs (dicts with a ``type``) in ``arch``, those inside
    containers included, counted on the parsed JSON before any is built;
    the count stops at ``MAX_LAYERS + 1``."""
    count, stack = 0, list(reversed(arch))
    while stack and count <= MAX_LAYERS:
        item = stack.pop()
        if isinstance(item, dict):
            count += isinstance(item.get("type"), str)
            stack.extend(v for v in item.values() if isinstance(v, list | dict))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, list | dict))
    return count


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
