"""gradcheck: small for correct gradients, large for a broken one."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import jax_x64

import xpnet


@pytest.mark.parametrize(("out", "loss"), [("identity", "mse"), ("sigmoid", "binary_cross_entropy"),
                                           ("softmax", "cross_entropy"), ("tanh", "sse")])
def test_gradcheck_small_for_every_backend(backend, out, loss):
    rng = np.random.default_rng(0)
    net = xpnet.MLP([3, 4, 2], "tanh", out, backend=backend, dtype="float32", seed=0)
    X = rng.normal(size=(5, 3))
    y = np.eye(2)[rng.integers(0, 2, 5)] if "entropy" in loss else rng.normal(size=(5, 2))
    assert xpnet.gradcheck(net, X, y, loss) < 1e-5
    assert net.dtype == "float32"  # checked on a float64 copy; the network is untouched


def test_gradcheck_catches_a_wrong_gradient(monkeypatch):
    from xpnet.activations import Tanh

    monkeypatch.setattr(Tanh, "_backward", lambda self, xp, v, y, dy: dy * (1.0 - y))  # a plausible slip
    net = xpnet.MLP([3, 4, 1], "tanh", backend="numpy", seed=0)
    X, y = np.random.default_rng(1).normal(size=(4, 3)), np.zeros(4)
    assert xpnet.gradcheck(net, X, y, "mse") > 1e-2


class _NanBelowZero(xpnet.Activation):
    """Unregistered: v**2 with a derivative that is NaN for v < 0."""

    name = "nan_below_zero_test"

    def _forward(self, xp, v):
        return v * v

    def _derivative(self, xp, v):
        return xp.where(v < 0, xp.full_like(v, float("nan")), 2 * v)


def test_a_nan_gradient_fails_the_check_and_step_is_checked():
    net = xpnet.Network([xpnet.Dense(3, 4, _NanBelowZero()), xpnet.Dense(4, 1)], backend="numpy", dtype="float64",
                        seed=0)  # fmt: skip
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 3)), rng.normal(size=(10, 1))
    err = xpnet.gradcheck(net, X, y, "mse")
    assert not err < 1e-5 and np.isnan(err)  # max(0.0, nan) is 0.0: it passed as 1e-9
    for step in (0, -1e-6, float("nan"), "a", None, True):
        with pytest.raises(ValueError, match="step must be a finite number > 0"):
            xpnet.gradcheck(net, X, y, "mse", step=step)


def test_a_float32_jax_network_is_checked_in_jaxs_default_32_bit_mode():
    """The float64 copy was refused without JAX's 64-bit mode, which is off
    by default (the suite's conftest turns it on, so this test turns it off)."""
    jax = pytest.importorskip("jax", reason="jax not installed")
    X = np.random.default_rng(0).standard_normal((5, 3))
    y = np.array([0, 1, 0, 1, 1])
    with jax_x64(False):
        net = xpnet.MLP([3, 4, 2], output_activation="softmax", backend="jax", seed=0)
        assert xpnet.gradcheck(net, X, y, "cross_entropy") < 1e-5
        assert not jax.config.read("jax_enable_x64")  # the mode is back as it was
        assert str(net.predict(X).dtype) == "float32"


class _Centre(xpnet.Layer):
    """No parameters: subtracts each row's mean."""

    name = "test_gradcheck_centre"

    def input_width(self):
        return 3

    def forward(self, xp, params, buffers, X, ctx):
        return X - xp.mean(X, axis=1, keepdims=True), None, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return dY - xp.mean(dY, axis=1, keepdims=True), []


def test_a_network_without_parameters_is_refused_with_why():
    """It failed with Python's "max() arg is an empty sequence"."""
    net = xpnet.Network([_Centre()], backend="numpy", dtype="float64", seed=0)
    X = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match="gradcheck: the network has no parameters, and it compares parameter "
                                         "gradients"):  # fmt: skip
        xpnet.gradcheck(net, X, X, "mse")
    with_dense = xpnet.Network([xpnet.Dense(3, 3), _Centre()], backend="numpy", dtype="float64", seed=0)
    assert xpnet.gradcheck(with_dense, X, X, "mse") < 1e-6  # its backward checked through the Dense's gradients


def test_gradcheck_on_a_device_without_float64_names_gradcheck():
    """gradcheck computes on a float64 copy; on a device that holds no
    float64 (array-api-strict's ``no_float64``, as torch's MPS) it said
    "use dtype='float32'" of a network that is float32 already. It must say
    that gradcheck needs float64 and how to check a copy elsewhere."""
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict's no_float64 device")
    narrow = xpnet.get_backend("array_api_strict", strict.Device("no_float64"))
    net = xpnet.MLP([2, 3, 1], "tanh", backend=narrow, dtype="float32", seed=0)
    X, y = xpnet.datasets.xor()
    with pytest.raises(ValueError, match=r"gradcheck computes in float64.*no_float64.*net\.to\(") as info:
        xpnet.gradcheck(net, X, y, "mse")
    assert "dtype='float32'" not in str(info.value)
    copy = net.to("array_api_strict", device="CPU_DEVICE")  # the way the message points to
    assert xpnet.gradcheck(copy, X, y, "mse") < 1e-5
