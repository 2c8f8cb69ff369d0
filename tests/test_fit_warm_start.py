"""fit(warm_start=True): the optimizer state continues across fit calls, as
one longer run, on every backend; pickling keeps it; a state that does not
fit the new optimizer is refused."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from helpers import host

import xpnet


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * rng.normal(size=(n, 1))
    return X, y


def network(backend):
    return xpnet.MLP([3, 5, 1], activation="tanh", backend=backend, dtype="float64", seed=1)


def weights(net):
    return [host(p) for p in net._params()]


OPTIMIZERS = {
    "adam": lambda: xpnet.Adam(0.01),
    "nesterov": lambda: xpnet.SGD(0.05, momentum=0.9, nesterov=True),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_two_warm_fits_are_one_longer_fit(backend, name):
    X, y = data()
    one = network(backend)
    h = one.fit(X, y, optimizer=OPTIMIZERS[name](), epochs=4, batch_size=8, shuffle=False)
    two = network(backend)
    h1 = two.fit(X, y, optimizer=OPTIMIZERS[name](), epochs=2, batch_size=8, shuffle=False)
    h2 = two.fit(X, y, optimizer=OPTIMIZERS[name](), epochs=2, batch_size=8, shuffle=False, warm_start=True)
    np.testing.assert_allclose(h1.loss + h2.loss, h.loss, rtol=1e-12)
    for a, b in zip(weights(one), weights(two)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # A cold second fit restarts the moments, which changes the run.
    cold = network(backend)
    cold.fit(X, y, optimizer=OPTIMIZERS[name](), epochs=2, batch_size=8, shuffle=False)
    cold.fit(X, y, optimizer=OPTIMIZERS[name](), epochs=2, batch_size=8, shuffle=False)
    assert not np.allclose(weights(cold)[0], weights(one)[0], rtol=1e-9)


def test_a_lower_rate_continues_the_state():
    X, y = data()
    net = network("numpy")
    net.fit(X, y, optimizer=xpnet.Adam(0.01), epochs=2, batch_size=8)
    t = net._fit_state[1]["t"]
    net.fit(X, y, optimizer=xpnet.Adam(0.001), epochs=1, batch_size=8, warm_start=True)
    assert net._fit_state[1]["t"] == t + 3  # 3 more steps on the same count
    assert net._fit_state[0].lr == 0.001


def test_without_a_previous_fit_warm_start_starts_fresh():
    X, y = data()
    a, b = network("numpy"), network("numpy")
    a.fit(X, y, optimizer="adam", lr=0.01, epochs=2, seed=0, batch_size=8)
    b.fit(X, y, optimizer="adam", lr=0.01, epochs=2, seed=0, batch_size=8, warm_start=True)
    for u, v in zip(weights(a), weights(b)):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize(
    "first, second",
    [(xpnet.Adam(0.01), xpnet.SGD(0.01)), (xpnet.SGD(0.01, momentum=0.9), xpnet.SGD(0.01))],
    ids=["adam-then-sgd", "momentum-then-plain"],
)
def test_a_state_that_does_not_fit_is_refused(first, second):
    X, y = data()
    net = network("numpy")
    net.fit(X, y, optimizer=first, epochs=1)
    before = weights(net)
    with pytest.raises(ValueError, match="warm_start=True continues the optimizer state .* warm_start=False"):
        net.fit(X, y, optimizer=second, epochs=1, warm_start=True)
    for a, b in zip(before, weights(net)):
        np.testing.assert_array_equal(a, b)


def test_pickle_keeps_the_state(backend):
    X, y = data()
    net = network(backend)
    net.fit(X, y, optimizer="adam", lr=0.01, epochs=2, batch_size=8, seed=0)
    copy = pickle.loads(pickle.dumps(net))
    assert copy._fit_state[1]["t"] == net._fit_state[1]["t"] == 6
    for n in (net, copy):
        n.fit(X, y, optimizer="adam", lr=0.01, epochs=1, batch_size=8, seed=1, warm_start=True)
    for a, b in zip(weights(net), weights(copy)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_a_failed_fit_leaves_no_state():
    X, y = data()
    net = network("numpy")
    net.fit(X, y, optimizer="sgd", lr=0.01, epochs=1)
    with pytest.raises(FloatingPointError):
        net.fit(X, y * 1e200, optimizer="sgd", lr=0.01, epochs=3, warm_start=True)
    assert net._fit_state is None


def test_options_are_checked():
    X, y = data()
    net = network("numpy")
    with pytest.raises(TypeError, match="warm_start must be True or False"):
        net.fit(X, y, warm_start="yes")
    with pytest.raises(ValueError, match="warm_start=True and resume="):
        net.fit(X, y, warm_start=True, resume="run.safetensors")


def test_a_copy_on_another_backend_keeps_the_state(backend):
    """to() dropped the optimizer state: warm_start on the copy restarted
    Adam silently (pickle and deepcopy kept it)."""
    X, y = data()
    here = network("numpy")
    here.fit(X, y, optimizer="adam", lr=0.01, epochs=2, batch_size=8, seed=0)
    there = here.to(backend)
    assert there._fit_state[1]["t"] == 6
    for n in (here, there):
        n.fit(X, y, optimizer="adam", lr=0.01, epochs=1, batch_size=8, seed=1, warm_start=True)
    for a, b in zip(weights(here), weights(there)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_a_state_narrowed_to_infinity_by_to_is_refused_by_warm_start(backend):
    """Adam's v of a float64 run (gradients of 1e20: v above 1e39) is infinite
    in float32: ``to(dtype="float32")`` copied it so, and a warm fit of the
    copy froze those weights (m / inf = 0) with a finite loss. The copy
    still predicts; warm_start names the state and how to start afresh."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 3)) * 100, rng.normal(size=(32, 1)) * 1e22
    net = network("numpy")
    net.fit(X, y, loss="mse", optimizer="adam", epochs=2, batch_size=None)
    small = net.to(backend, dtype="float32")
    small.predict(X[:2] / 100)
    with pytest.raises(ValueError, match=r"warm_start=True .* v\.0 holds NaN or infinite values .*warm_start=False"):
        small.fit(X / 100, y / 1e22, loss="mse", optimizer="adam", epochs=2, batch_size=None, warm_start=True)
    small.fit(X / 100, y / 1e22, loss="mse", optimizer="adam", epochs=2, batch_size=None)
