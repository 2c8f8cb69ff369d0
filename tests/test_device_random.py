"""The device random source: the same bits on every backend (and on both
integer paths), MurmurHash3's finaliser as written, kept rates, independent
streams, steps and rows, and keys from generator states."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import assert_on, host, subprocess_env

import xpnet
from xpnet._device_random import KINDS, DeviceRandom, default_kind, key_from_state, mix

NUMPY = xpnet.get_backend("numpy")


def words_on(backend, source, shape=(37, 23), stream=3, kind=None):
    return source.words(backend.xp, shape, stream, backend.device, kind)


def fmix32(x: int) -> int:
    """MurmurHash3's fmix32, in Python ints (the published algorithm)."""
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


def reference_word(key: int, step: int, stream: int, row: int, col: int) -> int:
    h1, h2 = mix(key, step, stream), mix(key, step, stream, 1)
    r = fmix32(fmix32(row ^ (h1 & 0xFFFFFFFF)) ^ (h1 >> 32))
    c = fmix32(fmix32(col ^ (h2 & 0xFFFFFFFF)) ^ (h2 >> 32))
    return fmix32(r ^ c)


@pytest.mark.parametrize("kind", [None, *KINDS])
def test_words_are_the_same_on_every_backend(backend, kind):
    """Every integer form on every backend: the same words and masks as
    NumPy's uint32 (int32 products must wrap modulo 2**32 for this to hold)."""
    if kind == "uint32" and backend.name == "torch":
        pytest.skip("torch's uint32 has no shifts or comparisons (the reason for its int32 default)")
    source = DeviceRandom(key=2**63 + 12345, step=41)
    got = words_on(backend, source, kind=kind)
    assert_on(got, backend, shape=(37, 23))
    want = host(words_on(NUMPY, source, kind="uint32"))
    assert want.dtype == np.uint32
    np.testing.assert_array_equal(host(got).astype(np.int64) & 0xFFFFFFFF, want.astype(np.int64))
    for keep_prob in (0.6, 0.3):
        keep = source.keep(backend.xp, (37, 23), keep_prob, 3, backend.device, kind)
        assert_on(keep, backend, shape=(37, 23))
        np.testing.assert_array_equal(host(keep), want >= round((1 - keep_prob) * 2**32))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["numpy", "jax", "jax.jit"])
def test_a_table_of_key_words_gives_the_sources_words(name, kind):
    """JAX's compiled step takes a step's random source as its streams' key
    words (an input, so one program serves every step): the words and masks
    must be the source's own, in every integer form, traced or not."""
    from xpnet._device_random import TracedRandom, UnknownStream

    jax = None if name == "numpy" else pytest.importorskip("jax", reason="jax is not installed")
    backend = xpnet.get_backend("numpy" if jax is None else "jax")
    source, streams = DeviceRandom(key=2**63 + 99, step=17, row=5), (2, 6)
    table = backend.asarray(np.array([source.stream_words(s) for s in streams], dtype=np.uint32))

    def draw(table):
        traced = TracedRandom(table, streams, row=5)
        xp, device = backend.xp, backend.device
        return traced.words(xp, (9, 4), 6, device, kind), traced.keep(xp, (9, 4), 0.7, 2, device, kind)

    words, keep = jax.jit(draw)(table) if name == "jax.jit" else draw(table)
    want = host(words_on(NUMPY, source, (9, 4), stream=6, kind="uint32")).astype(np.int64)
    np.testing.assert_array_equal(host(words).astype(np.int64) & 0xFFFFFFFF, want)
    np.testing.assert_array_equal(host(keep), host(source.keep(NUMPY.xp, (9, 4), 0.7, 2, NUMPY.device)))
    with pytest.raises(UnknownStream, match="stream 3 is not one of"):
        TracedRandom(table, streams).words(backend.xp, (2, 2), 3, backend.device)


def test_default_kinds():
    assert default_kind(NUMPY.xp) == "uint32"
    torch = pytest.importorskip("torch")
    assert default_kind(xpnet.get_backend("torch").xp) == "int32" and torch is not None
    with pytest.raises(ValueError, match="word kind must be one of"):
        DeviceRandom(0, 0).words(NUMPY.xp, (2, 2), 0, NUMPY.device, "int16")


def test_integer_forms_agree_on_a_large_array():
    source = DeviceRandom(key=987654321987, step=7, row=11)
    forms = {k: host(words_on(NUMPY, source, (300, 200), kind=k)) for k in KINDS}
    assert forms["int32"].min() < 0 and forms["int64"].max() > 2**31  # the full range, both signs
    assert forms["int64"].min() >= 0 and forms["int64"].max() < 2**32
    for k, v in forms.items():
        np.testing.assert_array_equal(v.astype(np.int64) & 0xFFFFFFFF, forms["uint32"].astype(np.int64), err_msg=k)


def test_words_are_murmur3_finalisers_of_the_counters():
    key, step, stream = 2**64 - 1, 123456, 9
    got = host(DeviceRandom(key, step, row=1000).words(NUMPY.xp, (4, 5), stream, NUMPY.device))
    for i in range(4):
        for j in range(5):
            assert int(got[i, j]) == reference_word(key, step, stream, 1000 + i, j)


def test_jax_without_64_bit_mode_gives_the_same_words():
    """uint32 needs no 64-bit mode: JAX's default configuration agrees too."""
    pytest.importorskip("jax")
    code = (
        "import numpy as np, xpnet; from xpnet._device_random import DeviceRandom\n"
        "b = xpnet.get_backend('jax'); w = DeviceRandom(5, 6).words(b.xp, (40, 30), 2, b.device)\n"
        "print(xpnet.to_numpy(w).astype(np.int64).ravel().tolist())\n"
    )
    env = subprocess_env(JAX_ENABLE_X64="0", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    got = np.array(json.loads(out.stdout.decode().strip().splitlines()[-1])).reshape(40, 30)
    np.testing.assert_array_equal(got, host(DeviceRandom(5, 6).words(NUMPY.xp, (40, 30), 2, NUMPY.device)))


@pytest.mark.parametrize("keep_prob", [0.1, 0.5, 0.8, 0.97])
def test_kept_share_is_within_one_percent_over_a_million_draws(keep_prob):
    for step in range(3):
        keep = host(DeviceRandom(17, step).keep(NUMPY.xp, (1000, 1000), keep_prob, 4, NUMPY.device))
        assert abs(keep.mean() - keep_prob) < 0.01 * keep_prob
        # no structure by row or column either
        assert np.abs(keep.mean(axis=0) - keep_prob).max() < 0.08
        assert np.abs(keep.mean(axis=1) - keep_prob).max() < 0.08


def test_bits_look_independent_and_uniform():
    w = host(DeviceRandom(3, 0).words(NUMPY.xp, (512, 512), 0, NUMPY.device)).astype(np.int64)
    bits = (w[..., None] >> np.arange(32)) & 1
    assert np.abs(bits.mean(axis=(0, 1)) - 0.5).max() < 0.005  # every bit fair
    u = w / 2**32
    for a, b in [(u[:, :-1], u[:, 1:]), (u[:-1, :], u[1:, :]), (u[:-1, :-1], u[1:, 1:])]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01  # neighbours uncorrelated


@pytest.mark.parametrize(
    "other",
    [DeviceRandom(1, 2), DeviceRandom(0, 3), DeviceRandom(0, 2, row=1)],
    ids=["key", "step", "row"],
)
def test_keys_steps_rows_and_streams_give_other_masks(other):
    base = DeviceRandom(0, 2)
    a = host(base.keep(NUMPY.xp, (200, 50), 0.5, 1, NUMPY.device))
    b = host(other.keep(NUMPY.xp, (200, 50), 0.5, 1, NUMPY.device))
    c = host(base.keep(NUMPY.xp, (200, 50), 0.5, 2, NUMPY.device))
    assert 0.45 < (a == b).mean() < 0.55 and 0.45 < (a == c).mean() < 0.55


def test_shares_of_the_rows_are_the_rows_of_the_whole():
    whole = host(DeviceRandom(8, 4).words(NUMPY.xp, (10, 6), 0, NUMPY.device))
    part = host(DeviceRandom(8, 4).at_row(7).words(NUMPY.xp, (3, 6), 0, NUMPY.device))
    np.testing.assert_array_equal(part, whole[7:])
    again = host(DeviceRandom(8, 4).words(NUMPY.xp, (10, 6), 0, NUMPY.device))
    np.testing.assert_array_equal(again, whole)  # pure: the same request, the same bits


def test_keys_from_generator_states():
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    assert key_from_state(a.bit_generator.state) == key_from_state(b.bit_generator.state)
    a.permutation(5)
    assert key_from_state(a.bit_generator.state) != key_from_state(b.bit_generator.state)
    assert 0 <= key_from_state(a.bit_generator.state) < 2**64
    assert mix(1, 2) != mix(2, 1) and mix(2**64) != mix(0) and mix(0) != mix(0, 0)
    with pytest.raises(ValueError, match="non-negative"):
        mix(-1)
