"""gradcheck: small for correct gradients, large for a broken one."""

from __future__ import annotations

import numpy as np
import pytest

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
