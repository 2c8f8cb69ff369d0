"""Neuron: the seeds' single neuron, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_on, host

import xpnet


@pytest.mark.parametrize("activation", ["identity", "sigmoid", "tanh", "relu", "leaky_relu"])
def test_forward_one_sample_and_batch(backend, activation):
    n = xpnet.Neuron(5, activation, backend=backend, dtype="float64", seed=4)
    assert_on(n.weights, backend, "float64", (5,))
    assert_on(n.bias, backend, "float64", ())
    x = np.random.default_rng(0).random((3, 5))
    w, b = host(n.weights), float(host(n.bias))
    f = xpnet.get_activation(activation)
    y = n.forward(x)
    assert_on(y, backend, "float64", (3,))
    np.testing.assert_allclose(host(n.activation_potential), x @ w + b, rtol=1e-14)
    np.testing.assert_allclose(host(y), f.forward(x @ w + b), rtol=1e-14)
    y1 = n.forward(x[0])
    assert_on(y1, backend, "float64", ())
    assert float(host(y1)) == pytest.approx(float(host(y)[0]), rel=1e-14)
    assert n.output is y1


def test_seed000_neuron_pieces():
    """The seed's neuron dictionary: weights, bias, activation potential, output."""
    n = xpnet.Neuron(5, "tanh", backend="numpy", dtype="float64", seed=0)
    x = np.random.default_rng(1).random(5)
    n.forward(x)
    v = float(n.activation_potential)
    assert float(n.output) == pytest.approx(np.tanh(v), rel=1e-15)
    assert n.activation.name == "tanh" and n.use_bias


def test_same_seed_same_weights_across_backends(backend):
    a = xpnet.Neuron(7, "relu", backend="numpy", seed=3)
    b = xpnet.Neuron(7, "relu", backend=backend, seed=3)
    np.testing.assert_array_equal(host(a.weights), host(b.weights))


def test_no_bias():
    n = xpnet.Neuron(2, "identity", bias=False, backend="numpy", dtype="float64")
    n.weights = [2.0, 3.0]
    assert n.bias is None
    assert float(n.forward([1.0, 1.0])) == 5.0
    with pytest.raises(ValueError, match="bias=False"):
        n.bias = 1.0


def test_input_errors():
    n = xpnet.Neuron(3, backend="numpy")
    with pytest.raises(ValueError, match=r"x must have shape \(3,\)"):
        n.forward([1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        n.forward([1.0, np.nan, 2.0])
    with pytest.raises(TypeError, match="strings"):
        n.forward(["a", "b", "c"])
    with pytest.raises(ValueError, match=r"Neuron.weights must have shape \(3,\), got \(2,\)"):
        n.weights = [1.0, 2.0]
    with pytest.raises(ValueError, match=r"Neuron.bias must have shape \(\), got \(2,\)"):
        n.bias = [1.0, 2.0]
    with pytest.raises(ValueError, match="softmax"):
        xpnet.Neuron(3, "softmax")


def test_bias_must_be_true_or_false():
    for bad in ("no", None, 0):
        with pytest.raises(TypeError, match="bias must be True or False"):
            xpnet.Neuron(3, bias=bad)
    assert not xpnet.Neuron(3, bias=False, backend="numpy").use_bias


def test_a_saturated_neuron_gives_its_limit_without_numpys_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = xpnet.Neuron(1, "sigmoid", backend="numpy", dtype="float64", seed=0).forward([[-1000.0]])
    value = float(np.asarray(out).ravel()[0])
    assert value < 1e-6 or value > 1 - 1e-6  # saturated, one way or the other


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_pickles_and_deep_copies_on_its_backend(backend, how):
    """Like Network, a Neuron travels through its state (no module objects):
    joblib and multiprocessing need that."""
    import copy
    import pickle

    n = xpnet.Neuron(4, "tanh", backend=backend, dtype="float64", seed=2)
    x = np.random.default_rng(0).random((3, 4))
    y = host(n.forward(x))
    m = pickle.loads(pickle.dumps(n)) if how == "pickle" else copy.deepcopy(n)
    assert m.backend.name == n.backend.name and repr(m) == repr(n)
    assert_on(m.weights, backend, "float64", (4,))
    np.testing.assert_array_equal(host(m.output), y)
    np.testing.assert_array_equal(host(m.forward(x)), y)
    m.weights = np.zeros(4)
    assert float(host(n.weights)[0]) != 0.0  # the copy is its own


def test_pickled_neuron_without_bias_keeps_none():
    import pickle

    n = pickle.loads(pickle.dumps(xpnet.Neuron(2, "relu", bias=False, backend="numpy", seed=1)))
    assert n.bias is None and n.output is None and not n.use_bias


def test_an_overflow_is_an_error_not_a_silent_inf(backend):
    """As Network.forward: finite inputs and weights whose output overflows
    float32 raise, without NumPy's warning (the suite turns warnings into errors)."""
    n = xpnet.Neuron(2, "identity", backend=backend, seed=0)
    n.weights = np.array([3e38, 3e38])
    with pytest.raises(FloatingPointError, match="float32 computation overflowed"):
        n.forward(np.array([3e38, 3e38]))
    assert n.output is None  # nothing of the failed pass is kept
    with pytest.raises(ValueError, match="x contains NaN"):
        n.forward(np.array([np.nan, 1.0]))


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e40])  # 1e40: finite in float64, inf in float32
def test_an_initialiser_that_gives_no_finite_weights_is_refused_at_construction(value):
    """Neuron took its initialiser's NaN (or 1e40, inf in float32) in
    silence, and its first forward blamed "an array changed in place, past
    the checks of the weights' setters"; a 1e40 also warned from NumPy's
    cast (an error under this suite's filter) where Dense names the
    initialiser."""
    init = lambda rng, n_in, n_out: np.full((n_in, n_out), value)  # noqa: E731
    with pytest.raises(ValueError, match=r"Neuron: init returned NaN or infinite weights in float32"):
        xpnet.Neuron(3, init=init, dtype="float32")
    with pytest.raises(ValueError, match=r"0\.weight holds NaN or infinite values; check its initialiser"):
        xpnet.Network([xpnet.Dense(3, 1, init=init)], dtype="float32")
