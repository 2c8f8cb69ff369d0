"""Dense: forward/backward against NumPy float64 references and central
differences; parameter setters convert and check shapes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REF_ACTIVATIONS, assert_on, central_diff, host

import xpnet
from xpnet.activations import ACTIVATIONS
from xpnet.layers import INFERENCE


def built(backend, n_in=4, n_out=3, activation="tanh", bias=True, dtype="float64", seed=0):
    layer = xpnet.Dense(n_in, n_out, activation, bias)
    xpnet.Network([layer], backend=backend, dtype=dtype, seed=seed)
    return layer


def forward(layer, X):
    """The protocol's pure forward on the layer's committed parameters."""
    Y, cache, _ = layer.forward(layer._backend.xp, layer._all_params(), [], X, INFERENCE)
    return Y, cache


def backward(layer, cache, dY, need_dx=True):
    dX, grads = layer.backward(layer._backend.xp, layer._all_params(), cache, dY, need_dx)
    return (dX, *layer.named_gradients(grads))


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_reference(backend, activation, bias):
    layer = built(backend, activation=activation, bias=bias)
    X = np.random.default_rng(1).normal(size=(5, 4))
    Xa = backend.asarray(X, "float64")
    Y, cache = forward(layer, Xa)
    assert_on(Y, backend, "float64", (5, 3))
    W = host(layer.weights)
    b = host(layer.bias) if bias else 0.0
    np.testing.assert_allclose(host(Y), REF_ACTIVATIONS[activation](X @ W + b), rtol=1e-12, atol=1e-14)
    assert cache.x is Xa


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_backward_matches_central_differences(backend, activation):
    """For a scalar L = sum(dY * Y), backward gives dL/dX, dL/dW, dL/db."""
    layer = built(backend, activation=activation)
    rng = np.random.default_rng(2)
    X, dY = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    W, b = host(layer.weights), host(layer.bias)
    Y, cache = forward(layer, backend.asarray(X, "float64"))
    dX, dW, db = backward(layer, cache, backend.asarray(dY, "float64"))
    for g, shape in ((dX, (5, 4)), (dW, (4, 3)), (db, (3,))):
        assert_on(g, backend, "float64", shape)
    f = REF_ACTIVATIONS[activation]
    np.testing.assert_allclose(host(dX), central_diff(lambda x: np.sum(dY * f(x @ W + b)), X), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(host(dW), central_diff(lambda w: np.sum(dY * f(X @ w + b)), W), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(host(db), central_diff(lambda bb: np.sum(dY * f(X @ W + bb)), b), rtol=1e-6, atol=1e-8)


def test_backward_without_bias_or_input_grad(backend):
    layer = built(backend, bias=False)
    Y, cache = forward(layer, backend.asarray(np.ones((2, 4)), "float64"))
    dX, dW, db = backward(layer, cache, Y, need_dx=False)
    assert dX is None and db is None and dW.shape == (4, 3)


def test_setters_convert_any_backend_and_check_shape(backend):
    from conftest import make_backend, usable_backend_params

    layer = built(backend)
    for other in usable_backend_params():
        W = make_backend(other).asarray(np.full((4, 3), 0.5), "float32")
        layer.weights = W
        assert_on(layer.weights, backend, "float64", (4, 3))
    layer.bias = [1.0, 2.0, 3.0]
    assert_on(layer.bias, backend, "float64", (3,))
    with pytest.raises(ValueError, match=r"Dense.weights must have shape \(4, 3\), got \(3, 4\)"):
        layer.weights = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"Dense.bias must have shape \(3,\), got \(4,\)"):
        layer.bias = np.zeros(4)
    with pytest.raises(TypeError, match="strings"):
        layer.bias = ["a", "b", "c"]


def test_setter_copies_so_later_user_writes_do_not_leak(backend):
    layer = built(backend)
    W = np.ones((4, 3))
    layer.weights = W
    W[0, 0] = 42.0
    assert host(layer.weights)[0, 0] == 1.0


def test_bias_false_layer_has_none_bias(backend):
    layer = built(backend, bias=False)
    assert layer.bias is None
    layer.bias = None
    with pytest.raises(ValueError, match="bias=False"):
        layer.bias = [0.0, 0.0, 0.0]


def test_unbuilt_layer_explains_itself():
    layer = xpnet.Dense(2, 3)
    assert layer.weights is None
    with pytest.raises(RuntimeError, match="Network"):
        layer.weights = np.zeros((2, 3))


@pytest.mark.parametrize(("args", "err"), [((0, 3), ValueError), ((2, -1), ValueError), ((2.5, 3), TypeError)])
def test_invalid_sizes(args, err):
    with pytest.raises(err, match="n_"):
        xpnet.Dense(*args)


def test_invalid_init_name():
    with pytest.raises(ValueError, match="unknown initializer 'zeros'"):
        xpnet.Dense(2, 3, init="zeros")


@pytest.mark.parametrize("given", [xpnet.Dropout, xpnet.BatchNorm, xpnet.activations.ReLU])
def test_a_layer_class_for_a_layer_names_the_call(given):
    """Dropout for Dropout(0.5) was refused as "got type"."""
    with pytest.raises(TypeError, match=rf"got the class {given.__name__}: pass {given.__name__}\(\.\.\.\)"):
        xpnet.Network([xpnet.Dense(3, 4), given])


class _HeldMask(xpnet.Layer):
    """Multiplies by a fixed array (not a parameter) it holds as an attribute
    of its own; the subclasses hold it one level down."""

    name = "test_layers_held_mask"

    def __init__(self, mask) -> None:
        super().__init__()
        self.mask = mask

    def _mask(self):
        return self.mask

    def forward(self, xp, params, buffers, X, ctx):
        return X * self._mask(), None, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return dY * self._mask(), []


class _MaskInList(_HeldMask):
    name = "test_layers_mask_in_list"

    def __init__(self, mask) -> None:
        xpnet.Layer.__init__(self)
        self.masks = [mask]

    def _mask(self):
        return self.masks[0]


class _MaskInDict(_HeldMask):
    name = "test_layers_mask_in_dict"

    def __init__(self, mask) -> None:
        xpnet.Layer.__init__(self)
        self.masks = {"mask": mask}

    def _mask(self):
        return self.masks["mask"]


@pytest.mark.parametrize("holder", [_MaskInList, _MaskInDict], ids=["list", "dict"])
def test_a_layer_holding_an_array_one_level_down_runs_with_its_own(backend, holder):
    """Networks whose layers hold other arrays in a list or dict predict and
    train each with their own, as with the array held directly: on JAX the
    programs, found by the network's classes and plain settings, ran the
    second network with the first one's array."""
    X, T = np.ones((4, 3)), np.zeros((4, 2))
    for values in ([1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]):
        mask = backend.asarray(np.array(values, dtype=np.float32))
        nets = [xpnet.Network([layer, xpnet.Dense(3, 2)], backend=backend, dtype="float32", seed=0)
                for layer in (holder(mask), _HeldMask(mask))]  # fmt: skip
        got, want = (np.asarray(xpnet.to_numpy(n.predict(X))) for n in nets)
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"mask {values}")
        fits = [n.fit(X, T, loss="mse", epochs=2, batch_size=2, seed=0).loss for n in nets]
        np.testing.assert_allclose(fits[0], fits[1], rtol=1e-6, err_msg=f"mask {values}")
