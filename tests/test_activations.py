"""Activations: values, derivatives and backward passes against float64 NumPy
references and central differences, on every backend; PyTorch autograd as an
extra oracle."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import REF_ACTIVATIONS, assert_on, elementwise_diff, host, try_import

import xpnet
from xpnet._random import default_init
from xpnet.activations import ACTIVATIONS, LEAKY_SLOPE

ELEMENTWISE = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "gelu", "elu", "softplus", "silu"]
SMOOTH_RELUS = ["gelu", "elu", "softplus", "silu"]

def sample(shape=(5, 4), seed=0):
    v = np.random.default_rng(seed).normal(0.0, 2.0, shape)
    return np.where(np.abs(v) < 1e-3, 0.5, v)  # keep away from the ReLU kink


def test_registry_names_and_alias():
    assert set(ACTIVATIONS) == {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax", *SMOOTH_RELUS}
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
def test_sigmoid_is_accurate_near_one_and_near_zero(backend, dtype):
    """Within a few units of rounding of the float64 reference at both ends,
    so ``1 - sigmoid(v)`` (binary predict_proba's other column) keeps its
    digits: the earlier exp(v - logaddexp(0, v)) lost them near 1 (a 2%
    error in float32 at v = 10.8, 20x scikit-learn's, found by its
    test_mlp_classifier_dtypes_casting)."""
    v = np.array([-30.0, -10.8, -2.0, 0.5, 3.0, 10.8, 15.0], dtype=dtype)
    y = host(xpnet.get_activation("sigmoid").forward(backend.asarray(v, dtype))).astype(np.float64)
    ref = 1.0 / (1.0 + np.exp(-v.astype(np.float64)))
    eps = float(np.finfo(dtype).eps)
    relative = np.abs(y - ref) / ref
    assert np.all(relative <= 8 * eps * (1 + np.abs(v))), relative  # relative, as the rounding of |v| allows
    np.testing.assert_allclose(1.0 - y[v > 0], 1.0 - ref[v > 0], rtol=0, atol=2 * eps)  # absolute near 1


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


def torch_activation(torch, name, config=None):
    """The torch module or function for an xpnet activation and its config."""
    config = config or {}
    return {
        "identity": lambda: (lambda t: t),
        "sigmoid": lambda: torch.sigmoid,
        "tanh": lambda: torch.tanh,
        "relu": lambda: torch.relu,
        "leaky_relu": lambda: (lambda t: torch.nn.functional.leaky_relu(t, LEAKY_SLOPE)),
        "softmax": lambda: (lambda t: torch.softmax(t, dim=-1)),
        "gelu": lambda: torch.nn.GELU(approximate="tanh"),
        "elu": lambda: torch.nn.ELU(**config),
        "softplus": lambda: torch.nn.Softplus(**config),
        "silu": lambda: torch.nn.SiLU(),
    }[name]()


def torch_value_and_grad(name, v, dy, config=None, dtype="float64"):
    torch = try_import("torch")
    if torch is None:
        pytest.skip("torch is not installed")
    tv = torch.tensor(v, dtype=getattr(torch, dtype), requires_grad=True)
    out = torch_activation(torch, name, config)(tv)
    out.backward(torch.tensor(dy, dtype=getattr(torch, dtype)))
    return out.detach().numpy().astype(np.float64), tv.grad.numpy().astype(np.float64)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_torch_autograd_oracle(backend, name):
    """Values, backward and derivative against PyTorch autograd, on every backend."""
    v, dy = sample((4, 3)), sample((4, 3), seed=2)
    want_y, want_dv = torch_value_and_grad(name, v, dy)
    act = xpnet.get_activation(name)
    va, dya = backend.asarray(v, "float64"), backend.asarray(dy, "float64")
    y = act.forward(va)
    dv = act.backward(va, y, dya)
    assert_on(dv, backend, "float64", v.shape)
    np.testing.assert_allclose(host(y), want_y, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(host(dv), want_dv, rtol=1e-12, atol=1e-15)
    if act.elementwise:
        np.testing.assert_allclose(host(act.derivative(va)) * dy, want_dv, rtol=1e-12, atol=1e-15)


EXTREMES = np.array([-1e4, -100.0, -30.0, -10.5, -3.0, -1e-6, 0.0, 1e-6, 3.0, 10.5, 19.99, 20.01, 30.0, 100.0, 1e4])


@pytest.mark.parametrize("name", SMOOTH_RELUS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_smooth_relus_match_torch_at_extremes(backend, name, dtype):
    """Finite, warning-free and equal to torch (computed in the same dtype) at
    saturating inputs, either side of softplus's threshold, and at zero."""
    dy = np.linspace(0.5, 1.5, EXTREMES.size)
    want_y, want_dv = torch_value_and_grad(name, EXTREMES, dy, dtype=dtype)
    act = xpnet.get_activation(name)
    va, dya = backend.asarray(EXTREMES, dtype), backend.asarray(dy, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = act.forward(va)
        dv, d = act.backward(va, y, dya), act.derivative(va)
    assert_on(y, backend, dtype, EXTREMES.shape)
    assert_on(dv, backend, dtype, EXTREMES.shape)
    tol = 1e-6 if dtype == "float32" else 1e-14
    # gelu's 1 + tanh cancels for negative v in both: errors scale with |v|.
    np.testing.assert_allclose(host(y) / np.maximum(np.abs(EXTREMES), 1.0),
                               want_y / np.maximum(np.abs(EXTREMES), 1.0), rtol=tol, atol=tol)
    np.testing.assert_allclose(host(dv), want_dv, rtol=tol, atol=tol)
    np.testing.assert_allclose(host(d) * dy, want_dv, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", SMOOTH_RELUS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_smooth_relus_reach_their_limits_for_huge_inputs(backend, name, dtype):
    """Where v**2 or v**3 overflow (and torch's gelu gradient is nan), the
    outputs are the limits: v and 0 (-alpha for elu), slopes 1 and 0."""
    big = 1e30 if dtype == "float32" else 1e200
    v = np.array([-big, -1e10, 1e10, big])
    act = xpnet.get_activation(name)
    va = backend.asarray(v, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, d = host(act.forward(va)), host(act.derivative(va))
        dv = host(act.backward(va, act.forward(va), backend.asarray(np.ones(4), dtype)))
    low = -1.0 if name == "elu" else 0.0
    np.testing.assert_array_equal(y, [low, low, 1e10, big] if dtype == "float64" else np.float32([low, low, 1e10, big]))
    np.testing.assert_array_equal(d, [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(dv, [0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize(("name", "config"), [("elu", {"alpha": 0.5}), ("elu", {"alpha": 2.0}),
                                              ("softplus", {"beta": 2.0, "threshold": 5.0}),
                                              ("softplus", {"beta": 0.5, "threshold": 1.0})])
def test_configured_activations_match_torch(backend, name, config):
    v, dy = sample((4, 3)) * 2, sample((4, 3), seed=2)
    want_y, want_dv = torch_value_and_grad(name, v, dy, config)
    act = xpnet.get_activation({"name": name, "config": config})
    assert act.config() == config and type(act)(**act.config()) == act
    assert act != xpnet.get_activation(name)
    va = backend.asarray(v, "float64")
    y = act.forward(va)
    np.testing.assert_allclose(host(y), want_y, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(host(act.backward(va, y, backend.asarray(dy, "float64"))), want_dv, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(host(act.derivative(va)) * dy, want_dv, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("spec", "match"), [
    ({"name": "elu", "config": {"alpha": -1.0}}, "alpha"),
    ({"name": "elu", "config": {"alpha": float("nan")}}, "alpha"),
    ({"name": "softplus", "config": {"beta": 0.0}}, "beta"),
    ({"name": "softplus", "config": {"threshold": -1.0}}, "threshold"),
])
def test_bad_activation_settings_are_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        xpnet.get_activation(spec)


@pytest.mark.parametrize("name", SMOOTH_RELUS)
def test_smooth_relus_default_to_he_init(name):
    assert default_init(name) == "he_normal"
    assert default_init("tanh") == "glorot_uniform"


def test_integer_inputs_on_jax_in_32_bit_mode_become_float32_without_a_warning():
    """Integer and bool inputs became float64, which JAX in its default
    32-bit mode truncates with a UserWarning: now the widest float it holds."""
    pytest.importorskip("jax", reason="jax is not installed: its 32-bit mode is what this checks")
    import jax.numpy as jnp
    from helpers import jax_x64

    from xpnet.losses import loss_fcn

    with jax_x64(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        y = xpnet.get_activation("sigmoid").forward(jnp.asarray([0, 2]))
        assert y.dtype == jnp.float32 and np.allclose(np.asarray(y), [0.5, 1 / (1 + np.exp(-2))])
        assert float(loss_fcn("mse", jnp.asarray([1, 2]), jnp.asarray([True, False]))) == 2.0


def test_integer_inputs_on_a_device_without_float64_become_float32():
    """array-api-strict's 'no_float64' device refused the float64 that
    integer inputs became: now the widest float the device holds."""
    xs = pytest.importorskip("array_api_strict", reason="array-api-strict's no_float64 device is what this checks")
    strict = xs.asarray([-1, 3], device=xs.Device("no_float64"))
    y = xpnet.get_activation("relu").forward(strict)
    assert y.dtype == xs.float32 and y.device == strict.device and np.array_equal(np.asarray(y._array), [0.0, 3.0])
    assert xpnet.get_activation("identity").forward(xs.asarray([1, 2])).dtype == xs.float64
