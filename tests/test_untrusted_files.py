"""Model files from anywhere: non-regular files, hostile headers and values.

Every case must end in a ``ValueError`` (or ``FileNotFoundError`` for a
missing file) that names the file, at once: no hang, no unbounded read, no
``RecursionError``/``OverflowError``/``TypeError`` from deep inside.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import subprocess_env

import xpnet


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.safetensors"
    xpnet.MLP([3, 4, 2], backend="numpy", seed=0).save(path)
    return path


def split(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def write_header(path, header, payload):
    text = header if isinstance(header, str) else json.dumps(header)
    raw = text.encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + payload)


def edit(path, fn):
    """Rewrite ``path`` with ``fn(header)`` (a dict to change, or a new header text)."""
    header, payload = split(path)
    new = fn(header)
    write_header(path, header if new is None else new, payload)


def refused(path, *patterns):
    with pytest.raises(ValueError) as e:
        xpnet.load(path, backend="numpy")
    message = str(e.value)
    assert str(path) in message
    for p in patterns:
        assert p in message, message
    return message


# -- not a regular file ----------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    outcome = []
    t = threading.Thread(target=lambda: outcome.append(_try_load(fifo)), daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # release the reader blocked in open() before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(5)
        pytest.fail("load() blocked on a FIFO")
    assert outcome[0][0] is ValueError and "FIFO" in outcome[0][1] and str(fifo) in outcome[0][1]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_saving_onto_a_fifo_or_a_folder_is_refused_and_leaves_it(tmp_path):
    """A save replaces the file at its path: over a FIFO or a device (as root,
    /dev/null itself) that would destroy it."""
    fifo, folder = tmp_path / "fifo", tmp_path / "folder"
    os.mkfifo(fifo)
    folder.mkdir()
    net = xpnet.MLP([2, 1], backend="numpy", seed=0)
    for path in (fifo, folder):
        with pytest.raises(ValueError, match="is not a regular file"):
            net.save(path)
    assert fifo.is_fifo() and folder.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "folder"]
    with pytest.raises(ValueError, match="must be a non-empty file path"):
        net.save("")
    bad = subprocess.run([sys.executable, "-m", "xpnet", "train", "--epochs", "1", "--quiet", "--save", str(fifo)],
                         capture_output=True, text=True, env=subprocess_env(), timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "is not a regular file" in bad.stderr and fifo.is_fifo()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write any file")
def test_saving_over_a_read_only_file_is_refused(tmp_path):
    target = tmp_path / "kept.safetensors"
    target.write_bytes(b"mine")
    target.chmod(0o444)
    with pytest.raises(PermissionError, match="not writable"):
        xpnet.MLP([2, 1], backend="numpy", seed=0).save(target)
    assert target.read_bytes() == b"mine"


def _try_load(path):
    try:
        xpnet.load(path, backend="numpy")
    except Exception as exc:
        return type(exc), str(exc)
    return None, ""


def test_folder_and_symlink_loop_are_named(tmp_path):
    refused(tmp_path, "folder")
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    os.symlink(b, a)
    os.symlink(a, b)
    refused(a, "symlink loop")


def test_broken_symlink_is_a_missing_file(tmp_path):
    link = tmp_path / "m.safetensors"
    os.symlink(tmp_path / "gone.safetensors", link)
    with pytest.raises(FileNotFoundError, match="symlink to a missing file"):
        xpnet.load(link, backend="numpy")


def test_symlink_to_a_model_loads(saved, tmp_path):
    link = tmp_path / "link.safetensors"
    os.symlink(saved, link)
    assert xpnet.load(link, backend="numpy").config() == xpnet.load(saved, backend="numpy").config()


_DEVICES = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
import xpnet
for path in sys.argv[1:]:
    try:
        xpnet.load(path, backend="numpy")
        print(path, "LOADED")
    except BaseException as exc:
        print(path, type(exc).__name__, str(exc).replace(chr(10), " "))
"""


@pytest.mark.skipif(not os.path.exists("/dev/zero") or sys.platform == "win32", reason="needs /dev/zero")
def test_character_devices_are_refused_without_reading():
    """In a child with 2 GiB of address space: reading /dev/zero to the end
    would be a MemoryError there, not a full machine here."""
    devices = [d for d in ("/dev/zero", "/dev/urandom", "/dev/null") if os.path.exists(d)]
    p = subprocess.run([sys.executable, "-c", _DEVICES, *devices], capture_output=True, text=True,
                       timeout=120, env=subprocess_env())
    lines = p.stdout.splitlines()
    assert len(lines) == len(devices), p.stderr
    for device, line in zip(devices, lines):
        assert line == f"{device} ValueError {device} is a character device, not a model file"


def test_only_the_declared_bytes_are_read(saved):
    with open(saved, "ab") as f:
        f.write(b"\0" * 4096)
    refused(saved, "trailing data", "declares")
    edit(saved, lambda h: h["layers.0.bias"].update(data_offsets=[h["layers.0.bias"]["data_offsets"][0], 10**12]))
    refused(saved)


# -- hostile headers -------------------------------------------------------------


def test_deeply_nested_header_json(saved):
    _, payload = split(saved)
    write_header(saved, '{"a":' * 100_000 + "1" + "}" * 100_000, payload)
    refused(saved, "nested too deeply")
    write_header(saved, '{"a":' * 40 + "1" + "}" * 40, payload)  # parses, but deeper than the limit
    refused(saved, "nested too deeply")


@pytest.mark.parametrize("field", ["architecture", "info"])
def test_deeply_nested_metadata_json(saved, field):
    edit(saved, lambda h: h["__metadata__"].update({field: "[" * 50_000 + "]" * 50_000}))
    refused(saved, field, "nested too deeply")


@pytest.mark.parametrize(
    "value, words",
    [
        ("1e999", "format_version"),
        ("9" * 5000, "format_version"),
        ("-1", "format_version"),
        (" 1", "format_version"),
        (1, "format_version"),
        (1e999, "format_version"),
        (None, "format_version"),
        ([1], "format_version"),
    ],
)
def test_format_version_of_any_kind(saved, value, words):
    edit(saved, lambda h: h["__metadata__"].update(format_version=value))
    refused(saved, words)


def test_over_long_integers_name_the_file(saved):
    edit(saved, lambda h: json.dumps(h).replace('"shape": [3, 4]', '"shape": [' + "7" * 5000 + ", 4]"))
    refused(saved, "header", "5000 digits")


_WRONG_TYPES = {
    "metadata not an object": lambda h: h.update(__metadata__=[1]),
    "metadata value a list": lambda h: h["__metadata__"].update(extra=[1, 2]),
    "dtype a number": lambda h: h["__metadata__"].update(dtype=32),
    "dtype a list": lambda h: h["__metadata__"].update(dtype=["float32"]),
    "architecture a number": lambda h: h["__metadata__"].update(architecture="5"),
    "architecture not a string": lambda h: h["__metadata__"].update(architecture=[]),
    "activation a list": lambda h: h["__metadata__"].update(
        architecture=h["__metadata__"]["architecture"].replace('"relu"', '["relu"]')),
    "n_in a float": lambda h: h["__metadata__"].update(
        architecture=h["__metadata__"]["architecture"].replace('"n_in": 3', '"n_in": 3.0')),
    "n_in huge": lambda h: h["__metadata__"].update(
        architecture=h["__metadata__"]["architecture"].replace('"n_in": 3', '"n_in": 1e999')),
    "bias a string": lambda h: h["__metadata__"].update(
        architecture=h["__metadata__"]["architecture"].replace('"bias": true', '"bias": "yes"')),
    "info nested list": lambda h: h["__metadata__"].update(info="[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"),
    "entry a list": lambda h: h.update({"layers.0.weight": [1, 2]}),
    "entry a string": lambda h: h.update({"layers.0.weight": "F32"}),
    "shape a string": lambda h: h["layers.0.weight"].update(shape="34"),
    "shape a number": lambda h: h["layers.0.weight"].update(shape=12),
    "shape with a float": lambda h: h["layers.0.weight"].update(shape=[3.0, 4]),
    "shape negative": lambda h: h["layers.0.weight"].update(shape=[-3, -4]),
    "shape with a bool": lambda h: h["layers.0.weight"].update(shape=[True, 4]),
    "dtype of an entry a list": lambda h: h["layers.0.weight"].update(dtype=["F32"]),
    "dtype of an entry unknown": lambda h: h["layers.0.weight"].update(dtype="F128"),
    "offsets a dict": lambda h: h["layers.0.weight"].update(data_offsets={"a": 1}),
    "offsets of three": lambda h: h["layers.0.weight"].update(data_offsets=[0, 1, 2]),
    "offsets huge": lambda h: h["layers.0.weight"].update(data_offsets=[0, 1e999]),
    "offsets reversed": lambda h: h["layers.0.weight"].update(data_offsets=h["layers.0.weight"]["data_offsets"][::-1]),
    "extra key in an entry": lambda h: h["layers.0.weight"].update(extra=1),
    "header a list": lambda h: "[1, 2, 3]",
    "header NaN": lambda h: "NaN",
}


@pytest.mark.parametrize("case", list(_WRONG_TYPES))
def test_wrong_types_in_the_header(saved, case):
    edit(saved, _WRONG_TYPES[case])
    refused(saved)


def test_a_non_utf8_header(saved):
    _, payload = split(saved)
    raw = b'{"a": "\xff\xfe"}'
    saved.write_bytes(struct.pack("<Q", len(raw)) + raw + payload)
    refused(saved)


# -- values ----------------------------------------------------------------------


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")])
def test_non_finite_weights_in_a_file_are_refused(saved, bad, word):
    header, payload = split(saved)
    start, stop = header["layers.1.weight"]["data_offsets"]
    w = np.frombuffer(payload[start:stop], np.float32).copy()
    w[1] = bad
    saved.write_bytes(saved.read_bytes()[: -len(payload)] + payload[:start] + w.tobytes() + payload[stop:])
    refused(saved, "layers.1.weight", word)


def test_every_refusal_reaches_the_cli_as_one_line(saved):
    edit(saved, lambda h: h["__metadata__"].update(architecture="[" * 50_000 + "]" * 50_000))
    csv = saved.parent / "d.csv"
    csv.write_text("a,b,c\n1,2,3\n")
    p = subprocess.run([sys.executable, "-m", "xpnet", "predict", str(saved), str(csv)],
                       capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "nested too deeply" in p.stderr and "bug" not in p.stderr


def test_path_of_wrong_type(tmp_path):
    with pytest.raises(TypeError):
        xpnet.load(123, backend="numpy")
    with pytest.raises(ValueError, match="folder"):
        xpnet.load(Path(""), backend="numpy")


def test_a_key_given_twice_is_refused(saved):
    """Two parsers could pick different ones; no file of ours repeats a key."""
    edit(saved, lambda h: json.dumps(h).replace('{"__metadata__"', '{"layers.0.bias": {}, "__metadata__"', 1))
    refused(saved, "appears twice")


def test_unknown_tensors_are_refused_before_the_data_is_read(saved):
    from safetensors.numpy import load_file, save_file

    meta = split(saved)[0]["__metadata__"]
    tensors = load_file(str(saved))
    save_file({**tensors, "stowaway": np.zeros(10**6, np.float32)}, str(saved), metadata=meta)
    refused(saved, "unexpected tensor 'stowaway'")


def test_a_symlink_loop_as_a_command_line_path_is_a_bad_option(tmp_path):
    """A loop given as --save or --checkpoint was found only after the data
    was read, as 'this looks like a bug' (Path.resolve's RuntimeError); as
    predict's MODEL it was 'no such model file'; as --output, exit 1."""
    from test_cli import xpnet_cli

    loop = tmp_path / "loop.safetensors"
    os.symlink(loop.name, loop)
    for args in (["train", "--epochs", "1", "--save", loop], ["train", "--epochs", "1", "--checkpoint", loop],
                 ["predict", loop, tmp_path / "absent.csv"]):  # fmt: skip
        result = xpnet_cli(*args)
        assert result.returncode == 2 and "is a symlink loop" in result.stderr and "bug" not in result.stderr, args
        assert "data:" not in result.stdout  # refused before any data is read


def test_a_file_claiming_a_huge_number_of_layers_is_refused_early(saved):
    """A header claiming 200,000 layers (a million took 47 s and 1 GB) is
    refused by its count, before any layer is built."""
    arch = [{"type": "Dense", "n_in": 3, "n_out": 4, "activation": "relu", "bias": True}]
    arch += [{"type": "Dropout", "rate": 0.1}] * 200_000
    edit(saved, lambda h: h["__metadata__"].update(architecture=json.dumps(arch)))
    refused(saved, "more than 10000 layers")


def test_a_nested_layer_count_is_capped_too(saved):
    inner = {"type": "Sequential", "layers": [{"type": "Dropout", "rate": 0.1}] * 20_000}
    arch = [{"type": "Dense", "n_in": 3, "n_out": 4, "activation": "relu", "bias": True}, inner]
    edit(saved, lambda h: h["__metadata__"].update(architecture=json.dumps(arch)))
    refused(saved, "more than 10000 layers")


def test_saving_more_layers_than_a_file_holds_is_refused_as_a_save(tmp_path):
    from xpnet.layers import Dense, Dropout
    from xpnet.modelfile import MAX_LAYERS

    net = xpnet.Network([Dense(3, 4), *(Dropout(0.1) for _ in range(MAX_LAYERS))], backend="numpy")
    with pytest.raises(ValueError, match=f"cannot save .*more than {MAX_LAYERS} layers"):
        net.save(tmp_path / "deep.safetensors")
    assert not (tmp_path / "deep.safetensors").exists()
