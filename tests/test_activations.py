"""Activations: values, derivatives and backward passes against float64 NumPy
references and central differences, on every backend; PyTorch autograd as an
extra oracle."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import REF_ACTIVATIONS, assert_on, elementwise_diff, host, try_import

import xpnet
from xpnet.activations import ACTIVATIONS, LEAKY_SLOPE

ELEMENTWISE = ["identity", "sigmoid", "tanh", "relu", "leaky_relu"]

def sample(shape=(5, 4), seed=0):
    v = np.random.default_rng(seed).normal(0.0, 2.0, shape)
    return np.where(np.abs(v) < 1e-3, 0.5, v)  # keep away from the ReLU kink


def test_registry_names_and_alias():
    assert set(ACTIVATIONS) == {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"}
    assert xpnet.get_activation("linear").name == "identity"
    assert xpnet.get_activation("ReLU").name == "relu"
    assert xpnet.get_activation(" Sigmoid ").name == "sigmoid"


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'swish'") as e:
        xpnet.get_activation("swish")
    for name in (*ACTIVATIONS, "linear"):
        assert name in str(e.value)
    with pytest.raises(TypeError):
        xpnet.get_activation(3)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_matches_reference(backend, name, dtype):
    v = sample()
    va = backend.asarray(v, dtype)
    before = host(va).copy()
    out = xpnet.get_activation(name).forward(va)
    assert_on(out, backend, dtype, v.shape)
    rtol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(host(out), REF_ACTIVATIONS[name](v), rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(host(va), before)  # input not modified


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_central_differences(backend, name):
    v = sample()
    act = xpnet.get_activation(name)
    d = act.derivative(backend.asarray(v, "float64"))
    assert_on(d, backend, "float64", v.shape)
    np.testing.assert_allclose(host(d), elementwise_diff(REF_ACTIVATIONS[name], v), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_backward_is_the_vjp(backend, name):
    """backward(v, y, dy) == J(v)^T dy, the Jacobian from central differences."""
    v, dy = sample((3, 4)), sample((3, 4), seed=1)
    act = xpnet.get_activation(name)
    va, dya = backend.asarray(v, "float64"), backend.asarray(dy, "float64")
    dv = act.backward(va, act.forward(va), dya)
    assert_on(dv, backend, "float64", v.shape)
    f = REF_ACTIVATIONS[name]
    h = 1e-6
    expected = np.zeros_like(v)
    for i in np.ndindex(v.shape):
        e = np.zeros_like(v)
        e[i] = h
        expected[i] = np.sum(dy * (f(v + e) - f(v - e))) / (2 * h)
    np.testing.assert_allclose(host(dv), expected, rtol=1e-6, atol=1e-8)


def test_softmax_derivative_raises_and_points_to_backward():
    with pytest.raises(ValueError, match="backward"):
        xpnet.get_activation("softmax").derivative(np.zeros((2, 3)))


def test_sigmoid_is_stable_without_overflow_warning():
    sig = xpnet.get_activation("sigmoid")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sig.forward(126.0) == 1.0
        assert sig.forward(-1000.0) == 0.0
        big = sig.forward(np.array([-1e4, -50.0, 0.0, 50.0, 1e4]))
    assert big.tolist()[2] == 0.5 and big[0] == 0.0 and big[-1] == 1.0
    assert np.all(np.isfinite(sig.derivative(np.array([-1e4, 1e4]))))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_is_stable_for_huge_logits(backend, dtype):
    v = backend.asarray([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], dtype)
    y = host(xpnet.get_activation("softmax").forward(v))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(y[0], [1.0, 0.0, 0.0])


def test_python_scalars_and_lists():
    assert float(xpnet.get_activation("relu").forward(-3)) == 0.0
    assert host(xpnet.get_activation("tanh").forward([0.0, 0.0])).tolist() == [0.0, 0.0]
    with pytest.raises(TypeError, match="numbers"):
        xpnet.get_activation("relu").forward(["a"])


def test_relu_derivative_convention_at_zero():
    assert xpnet.get_activation("relu").derivative(np.array([0.0]))[0] == 0.0


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_torch_autograd_oracle(name):
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch is not installed")
    v, dy = sample((4, 3)), sample((4, 3), seed=2)
    tv = torch.tensor(v, requires_grad=True)
    fn = {
        "identity": lambda t: t,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, LEAKY_SLOPE),
        "softmax": lambda t: torch.softmax(t, dim=-1),
    }[name]
    out = fn(tv)
    out.backward(torch.tensor(dy))
    act = xpnet.get_activation(name)
    np.testing.assert_allclose(act.forward(v), out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(act.backward(v, act.forward(v), dy), tv.grad.numpy(), rtol=1e-12, atol=1e-15)
