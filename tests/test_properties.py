"""Property-based tests: over shapes, dtypes and values (extremes included),
only documented errors are raised and finite inputs give finite outputs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import host

import xpnet
from xpnet._backend import quiet_float_errors

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

BACKENDS = ["numpy", "array_api_strict"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from(["float32", "float64"])


def finite_arrays(shape, lo=-1e4, hi=1e4):
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def matrices(min_rows=1, max_rows=6, min_cols=1, max_cols=5):
    return hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6).filter(
        lambda s: min_rows <= s[0] <= max_rows and min_cols <= s[1] <= max_cols)


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(data=st.data(), dtype=DTYPES, act=st.sampled_from(list(xpnet.activations.ACTIVATIONS)))
def test_activations_finite_for_finite_inputs(name, data, dtype, act):
    b = xpnet.get_backend(name)
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    v = data.draw(finite_arrays(shape))
    a = xpnet.get_activation(act)
    va = b.asarray(v, dtype)
    y = host(a.forward(va))
    assert y.shape == v.shape and np.all(np.isfinite(y))
    if act in ("sigmoid", "softmax"):
        assert np.all((y >= 0) & (y <= 1))
    if act == "softmax":
        np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)
    dy = b.asarray(np.ones(shape), dtype)
    assert np.all(np.isfinite(host(a.backward(va, a.forward(va), dy))))
    if a.elementwise:
        assert np.all(np.isfinite(host(a.derivative(va))))


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(data=st.data(), dtype=DTYPES, loss=st.sampled_from(list(xpnet.losses.LOSSES)))
def test_losses_finite_at_extreme_logits(name, data, dtype, loss):
    """Outputs from sigmoid/softmax of logits up to +-1e4 (saturated to exact
    0 and 1) still give finite losses and gradients."""
    b = xpnet.get_backend(name)
    shape = data.draw(matrices(max_cols=4).filter(lambda s: loss != "cross_entropy" or s[1] > 1))
    logits = data.draw(finite_arrays(shape))
    out_act = {"binary_cross_entropy": "sigmoid", "cross_entropy": "softmax"}.get(loss, "identity")
    y = xpnet.get_activation(out_act).forward(b.asarray(logits, dtype))
    if loss == "cross_entropy":
        t = np.eye(shape[1])[data.draw(hnp.arrays(np.int64, shape[0], elements=st.integers(0, shape[1] - 1)))]
    elif loss == "binary_cross_entropy":
        t = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0])))
    else:
        t = data.draw(finite_arrays(shape, -100, 100))
    L = xpnet.get_loss(loss)
    ta = b.asarray(t, dtype)
    assert np.isfinite(float(host(L.value(ta, y))))
    assert np.all(np.isfinite(host(L.gradient(ta, y))))
    if L.fused_with:
        assert np.all(np.isfinite(host(L._fused_delta(b.xp, ta, y))))


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(data=st.data(), dtype=DTYPES, act=st.sampled_from(list(xpnet.activations.ACTIVATIONS)), bias=st.booleans())
def test_dense_forward_backward_shapes_and_finiteness(name, data, dtype, act, bias):
    n_in, n_out, n = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    layer = xpnet.Dense(n_in, n_out, act, bias)
    xpnet.Network([layer], backend=name, dtype=dtype, seed=data.draw(st.integers(0, 2**32 - 1)))
    X = data.draw(finite_arrays((n, n_in), -100, 100))
    xp, params = layer._backend.xp, layer._all_params()
    with quiet_float_errors():  # as fit and predict call the kernels: sigmoid's exp(-v) may overflow to its limit
        Y, cache, _ = layer.forward(xp, params, [], layer._backend.asarray(X, dtype), xpnet.layers.INFERENCE)
        dX, grads = layer.backward(xp, params, cache, layer._backend.asarray(np.ones((n, n_out)), dtype), True)
    assert tuple(Y.shape) == (n, n_out) and np.all(np.isfinite(host(Y)))
    dW, db = layer.named_gradients(grads)
    assert tuple(dX.shape) == (n, n_in) and tuple(dW.shape) == (n_in, n_out)
    assert (db is None) == (not bias)
    for g in (dX, dW) + ((db,) if bias else ()):
        assert np.all(np.isfinite(host(g)))


DOCUMENTED = (ValueError, TypeError, FloatingPointError)


@pytest.mark.parametrize("name", BACKENDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), dtype=DTYPES)
def test_fit_raises_only_documented_errors(name, data, dtype):
    n, n_in = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 3))
    classify = data.draw(st.booleans())
    X = data.draw(hnp.arrays(np.float64, (n, n_in), elements=st.floats(allow_nan=True, allow_infinity=True, width=32)))
    if classify:
        y = data.draw(hnp.arrays(np.int64, n, elements=st.integers(-1, 3)))
        net = xpnet.MLP([n_in, 4, 3], "relu", "softmax", backend=name, dtype=dtype, seed=0)
        loss = "cross_entropy"
    else:
        y = data.draw(hnp.arrays(np.float64, (n, 1), elements=st.floats(-1e3, 1e3)))
        net = xpnet.MLP([n_in, 4, 1], "tanh", backend=name, dtype=dtype, seed=0)
        loss = data.draw(st.sampled_from(["mse", "sse"]))
    kw = dict(loss=loss, optimizer=data.draw(st.sampled_from(["sgd", "momentum", "adam"])),
              lr=data.draw(st.sampled_from([1e-3, 0.1, 10.0])), epochs=data.draw(st.integers(1, 3)),
              batch_size=data.draw(st.one_of(st.none(), st.integers(1, 10))), seed=1)
    bad_input = not np.all(np.isfinite(X)) or (classify and (np.any(y < 0) or np.any(y > 2)))
    try:
        hist = net.fit(X, y, **kw)
    except DOCUMENTED as exc:
        if isinstance(exc, ValueError):
            assert bad_input, f"ValueError for valid input: {exc}"
        if isinstance(exc, FloatingPointError):
            assert "epoch" in str(exc)
        for p in net._params():  # whatever happened, the weights stayed finite
            assert np.all(np.isfinite(host(p)))
        return
    assert not bad_input, "bad input was accepted"
    assert len(hist.loss) == kw["epochs"] and all(np.isfinite(hist.loss))
