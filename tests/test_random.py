"""Host randomness: the same seed gives bit-identical weights everywhere."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import host

import xpnet
from xpnet._random import INITIALIZERS, default_init


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_bit_identical_initial_weights(backend, dtype):
    ref = xpnet.MLP([6, 5, 4, 3], "relu", "softmax", backend="numpy", dtype=dtype, seed=123)
    net = xpnet.MLP([6, 5, 4, 3], "relu", "softmax", backend=backend, dtype=dtype, seed=123)
    for a, b in zip(ref._params(), net._params()):
        assert np.array_equal(host(a), host(b))


def test_draw_order_is_layer_by_layer_from_one_generator():
    net = xpnet.Network([xpnet.Dense(3, 4, "tanh"), xpnet.Dense(4, 2, "relu")], backend="numpy", dtype="float64", seed=9)
    rng = np.random.default_rng(9)
    w1 = INITIALIZERS["glorot_uniform"]()(rng, 3, 4)
    w2 = INITIALIZERS["he_normal"]()(rng, 4, 2)
    np.testing.assert_array_equal(net.layers[0].weights, w1)
    np.testing.assert_array_equal(net.layers[1].weights, w2)
    assert np.all(net.layers[0].bias == 0) and np.all(net.layers[1].bias == 0)


def test_bias_does_not_shift_the_next_layer():
    a = xpnet.Network([xpnet.Dense(3, 4, bias=True), xpnet.Dense(4, 2)], backend="numpy", seed=1)
    b = xpnet.Network([xpnet.Dense(3, 4, bias=False), xpnet.Dense(4, 2)], backend="numpy", seed=1)
    np.testing.assert_array_equal(a.layers[1].weights, b.layers[1].weights)


def test_different_seeds_differ_and_none_is_random():
    a = xpnet.MLP([5, 5], backend="numpy", seed=1)
    b = xpnet.MLP([5, 5], backend="numpy", seed=2)
    c, d = xpnet.MLP([5, 5], backend="numpy"), xpnet.MLP([5, 5], backend="numpy")
    assert not np.array_equal(a.layers[0].weights, b.layers[0].weights)
    assert not np.array_equal(c.layers[0].weights, d.layers[0].weights)


def test_default_init_by_activation():
    assert default_init("relu") == default_init("leaky_relu") == "he_normal"
    assert default_init("tanh") == default_init("sigmoid") == "glorot_uniform"


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_initializer_scales(name):
    w = INITIALIZERS[name]()(np.random.default_rng(0), 400, 300)
    expected_std = {"he_normal": np.sqrt(2 / 400), "he_uniform": np.sqrt(2 / 400), "glorot_uniform": np.sqrt(2 / 700),
                    "glorot_normal": np.sqrt(2 / 700), "lecun_normal": np.sqrt(1 / 400), "normal": 1.0,
                    "uniform": np.sqrt(1 / 12)}[name]
    assert w.shape == (400, 300)
    assert w.std() == pytest.approx(expected_std, rel=0.02)


def test_callable_init_and_bad_returns():
    net = xpnet.Network([xpnet.Dense(2, 3, init=lambda rng, i, o: np.full((i, o), 0.25))], backend="numpy", seed=0)
    assert np.all(net.layers[0].weights == 0.25)
    with pytest.raises(ValueError, match="init returned shape"):
        xpnet.Network([xpnet.Dense(2, 3, init=lambda rng, i, o: np.zeros(3))], backend="numpy")
    # complex weights were cut to their real part (only NumPy's ComplexWarning said so); words failed in NumPy's
    complex_weights, words = (lambda rng, i, o: np.full((i, o), 1 + 2j)), (lambda rng, i, o: [["a"] * o] * i)
    for bad, kind in [(complex_weights, "complex128"), (words, "<U1")]:
        with pytest.raises(TypeError, match=f"init returned {kind} values, expected real numbers"):
            xpnet.Network([xpnet.Dense(2, 3, init=bad)], backend="numpy")


@pytest.mark.parametrize(("seed", "err"), [(-1, ValueError), (1.5, TypeError), ("3", TypeError)])
def test_bad_seeds(seed, err):
    with pytest.raises(err, match="seed"):
        xpnet.MLP([2, 1], backend="numpy", seed=seed)
