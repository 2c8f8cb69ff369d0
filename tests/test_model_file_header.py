"""Model files whose header size starts with a byte that other formats use.

The safetensors header size is the file's first 8 bytes (little-endian), so
a valid model starts with 0x80 whenever that size is 128 modulo 256; the
pickle and ZIP guards must only speak when the size does not fit.
"""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest

import xpnet


def _model_starting_with(prefix: bytes, tmp_path):
    """A saved network whose file starts with ``prefix``, found by growing its
    info notes (safetensors pads the header to a multiple of 8 bytes)."""
    net = xpnet.MLP([2, 3, 1], backend="numpy", seed=0)
    target = int.from_bytes(prefix, "little")
    path = tmp_path / "m.safetensors"
    net.info = {"note": ""}
    net.save(path)
    base = int.from_bytes(path.read_bytes()[:8], "little")
    start = max(0, target - base - 16) if target > base else 0
    for pad in range(start, start + 600):
        net.info = {"note": "x" * pad}
        net.save(path)
        if path.read_bytes().startswith(prefix):
            return net, path
    raise AssertionError(f"no padding gave a file starting with {prefix!r}")  # pragma: no cover


@pytest.mark.parametrize("prefix", [b"\x80", b"PK"], ids=["pickle-like", "zip-like"])
def test_valid_model_whose_size_looks_like_another_format_loads(prefix, tmp_path):
    net, path = _model_starting_with(prefix, tmp_path)
    back = xpnet.load(path, backend="numpy")
    np.testing.assert_array_equal(xpnet.to_numpy(back.layers[0].weights), xpnet.to_numpy(net.layers[0].weights))
    assert back.info == net.info


def test_pickle_and_zip_are_still_named(tmp_path):
    pkl = tmp_path / "m.pkl"
    pkl.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="pickle"):
        xpnet.load(pkl, backend="numpy")
    archive = tmp_path / "m.npz"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("X.npy", b"0" * 100)
    with pytest.raises(ValueError, match="ZIP"):
        xpnet.load(archive, backend="numpy")
    short = tmp_path / "short"
    short.write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="too short"):
        xpnet.load(short, backend="numpy")
