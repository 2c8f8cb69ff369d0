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


def test_activation_assigned_after_build_is_the_one_used(backend):
    """``layer.activation = "tanh"`` on a built network: predict and fit use
    tanh (it failed deep in forward with "'str' object has no attribute
    '_forward'"); a name that is no activation is refused at the assignment."""
    X = np.random.default_rng(3).normal(size=(6, 4))
    net = xpnet.Network([xpnet.Dense(4, 3, "relu"), xpnet.ActivationLayer("relu")], backend=backend,
                        dtype="float64", seed=0)
    net.predict(X)  # a program of relu, kept
    net.layers[0].activation = "tanh"
    net.layers[1].activation = {"name": "elu", "config": {"alpha": 0.5}}
    assert isinstance(net.layers[0].activation, xpnet.activations.Tanh)
    W, b = host(net.layers[0].weights), host(net.layers[0].bias)
    v = np.tanh(X @ W + b)
    np.testing.assert_allclose(host(net.predict(X)), np.where(v > 0, v, 0.5 * np.expm1(v)), rtol=1e-12, atol=1e-14)
    net.fit(X, np.zeros((6, 3)), loss="mse", epochs=1, batch_size=3, seed=0)
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        net.layers[0].activation = "nope"
    with pytest.raises(TypeError, match="activation must be a name or an Activation, got int"):
        net.layers[1].activation = 3
    assert isinstance(net.layers[0].activation, xpnet.activations.Tanh)


@pytest.mark.parametrize(("make", "setting", "value"), [
    (lambda: xpnet.Dense(4, 3), "n_in", 5), (lambda: xpnet.Dense(4, 3), "n_out", 5),
    (lambda: xpnet.Dense(4, 3), "use_bias", False), (lambda: xpnet.BatchNorm(3), "n", 4),
    (lambda: xpnet.LayerNorm(3), "n", 4),
])  # fmt: skip
def test_settings_that_fix_the_parameters_are_refused_when_reassigned(make, setting, value):
    """A width or the bias switch, reassigned, left the parameters as they
    were: ``use_bias = False`` made predict skip the bias in silence and fit
    fail with "backward returned 3 gradients for 4 arrays"."""
    layer = make()
    net = xpnet.Network([layer], seed=0)
    with pytest.raises(AttributeError, match=f"{setting} is fixed when the layer is made"):
        setattr(layer, setting, value)
    assert net.predict(np.ones((2, net.n_in))).shape == (2, net.n_out)


@pytest.mark.parametrize(("make", "setting", "value", "err", "match"), [
    (lambda: xpnet.Dropout(0.2), "rate", 1.5, ValueError, r"rate must be in \[0, 1\)"),
    (lambda: xpnet.Dropout(0.2), "rate", -0.1, ValueError, r"rate must be in \[0, 1\)"),
    (lambda: xpnet.Dropout(0.2), "rate", 1.0, ValueError, r"rate must be in \[0, 1\)"),
    (lambda: xpnet.Dropout(0.2), "rate", "0.5", TypeError, "rate must be a number"),
    (lambda: xpnet.BatchNorm(3), "momentum", 2.0, ValueError, r"momentum must be a number in \[0, 1\]"),
    (lambda: xpnet.BatchNorm(3), "momentum", "0.1", TypeError, r"momentum must be a number in \[0, 1\]"),
    (lambda: xpnet.BatchNorm(3), "eps", -1.0, ValueError, "eps must be a positive finite number"),
    (lambda: xpnet.LayerNorm(3), "eps", "1e-5", TypeError, "eps must be a positive number"),
])  # fmt: skip
def test_settings_assigned_after_construction_are_checked_as_the_constructor_checks(make, setting, value, err,
                                                                                       match):
    """Dropout's rate 1.5 trained with a negative scale and BatchNorm's
    momentum 2.0 with running statistics that diverge, without a word;
    rate 1.0 failed with a bare ZeroDivisionError and eps -1 as a NaN loss
    blamed on the learning rate. A valid value is taken, as a float."""
    layer = make()
    before = getattr(layer, setting)
    with pytest.raises(err, match=match):
        setattr(layer, setting, value)
    assert getattr(layer, setting) == before
    setattr(layer, setting, np.float32(0.25))
    assert getattr(layer, setting) == 0.25 and type(getattr(layer, setting)) is float


class _WritesX(xpnet.Layer):
    """A user's ReLU that writes into its input (unregistered: not saved)."""

    name = "_WritesX"

    def forward(self, xp, params, buffers, X, ctx):
        X[X < 0] = 0
        return X, X, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return dY * (cache > 0), []


class _WritesDY(_WritesX):
    def forward(self, xp, params, buffers, X, ctx):
        return X * 1.0, None, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        dY *= 2.0
        return dY, []


class _WritesParam(xpnet.Layer):
    name = "_WritesParam"

    def parameter_shapes(self):
        return {"gain": (4,)}

    def init_parameters(self, rng, dtype):
        return {"gain": np.ones(4, dtype)}

    def forward(self, xp, params, buffers, X, ctx):
        params[0] += 1.0
        return X * params[0], X, buffers

    def backward(self, xp, params, cache, dY, need_dx):
        return dY * params[0], [xp.sum(dY * cache, axis=0)]


@pytest.mark.parametrize("compile", [False, True])
@pytest.mark.parametrize(("layer", "kernel"), [(_WritesX, "forward"), (_WritesDY, "backward"),
                                               (_WritesParam, "forward")])  # fmt: skip
def test_a_layer_that_writes_into_an_array_it_is_given_is_named_on_numpy(layer, kernel, compile):
    """On NumPy a user's kernel that wrote into X changed the caller's data
    (predict's and fit's X) and the previous layer's cache, in silence; one
    that wrote into a parameter changed the weights outside the commit. The
    arrays it is given are read-only views now, and the write names it."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 4)), rng.normal(size=(8, 2))
    X0 = X.copy()
    net = xpnet.Network([layer(), xpnet.Dense(4, 2)], backend="numpy", dtype="float64", seed=0)
    W0 = host(net.layers[-1].weights).copy()
    with pytest.raises(ValueError, match=rf"\.{kernel} wrote into an array it was given"):
        if kernel == "forward":
            net.predict(X)
        net.fit(X, y, loss="mse", epochs=1, batch_size=4, seed=0, compile=compile)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(host(net.layers[-1].weights), W0)
    assert all(np.all(host(p) == 1.0) for p in net.layers[0]._all_params())


def test_activation_assigned_before_build_picks_the_default_init_as_the_constructor_would():
    """The default initialiser follows the activation (He-normal for ReLU,
    Glorot-uniform otherwise): ``Dense(4, 3)`` made ReLU by assignment
    drew Glorot weights, unlike ``Dense(4, 3, "relu")``. A given init stays."""
    assigned = xpnet.Dense(64, 32)
    assigned.activation = "relu"
    want = xpnet.Network([xpnet.Dense(64, 32, "relu")], seed=0).layers[0].weights
    np.testing.assert_array_equal(host(xpnet.Network([assigned], seed=0).layers[0].weights), host(want))
    kept = xpnet.Dense(64, 32, init="glorot_uniform")
    kept.activation = "relu"
    want = xpnet.Network([xpnet.Dense(64, 32, init="glorot_uniform")], seed=0).layers[0].weights
    np.testing.assert_array_equal(host(xpnet.Network([kept], seed=0).layers[0].weights), host(want))


class _NumpyTanh(xpnet.Activation):
    """A user's activation computed with NumPy whatever the backend (unregistered)."""

    name = "_numpy_tanh"

    def _forward(self, xp, v):
        return np.tanh(np.asarray(v))

    def _derivative(self, xp, v):
        return 1.0 - np.tanh(np.asarray(v)) ** 2


def test_a_user_activation_assigned_after_build_is_checked_as_one_given_to_the_constructor():
    """Containers sorted their layers into xpnet's own (not checked per
    step) and users' when made: a user's activation assigned to a built
    Dense later was not checked, and NumPy arrays on torch failed in the
    next layer's matmul ("argument 'input' must be Tensor"), naming none."""
    pytest.importorskip("torch")
    X = np.ones((2, 4), "float32")
    net = xpnet.Network([xpnet.Dense(4, 3), xpnet.Dense(3, 2)], backend="torch", seed=0)
    net.predict(X)
    net.layers[0].activation = _NumpyTanh()
    with pytest.raises(ValueError, match=r"Dense\(4, 3, activation='_numpy_tanh'.*forward returned Y as a numpy"):
        net.predict(X)
    net.layers[0].activation = "tanh"
    assert net.predict(X).shape == (2, 2)


class _SquareInPlace(xpnet.Activation):
    """A user's activation that writes its result into its input (unregistered)."""

    name = "_square_in_place"

    def _forward(self, xp, v):
        return xp.multiply(v, v, out=v)

    def _derivative(self, xp, v):
        return 2.0 * v


def test_a_user_activation_that_writes_into_its_input_is_named_on_numpy():
    """Dense caches its potential v for backward: an activation that wrote
    its result into v made fit train on wrong gradients in silence
    (gradcheck's relative error 1.9)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    layers = [xpnet.Dense(3, 4, _SquareInPlace()), xpnet.Dense(4, 1)]
    net = xpnet.Network(layers, backend="numpy", dtype="float64", seed=0)
    with pytest.raises(ValueError, match=r"activation='_square_in_place'.*wrote into an array"):
        net.fit(X, y, loss="mse", epochs=1, batch_size=5)
