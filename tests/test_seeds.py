"""Every figure the seed documents print, reproduced with xpnet (float64)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import host

import xpnet


def test_seed001_relu_neuron_gives_19(backend):
    n = xpnet.Neuron(3, "relu", bias=False, backend=backend, dtype="float64")
    n.weights = [1, -1, 5]
    assert float(host(n.forward([2, 3, 4]))) == 19.0
    assert float(host(n.activation_potential)) == 19.0


def test_seed002_sigmoid_neuron_gives_1(backend):
    n = xpnet.Neuron(2, "sigmoid", backend=backend, dtype="float64")
    n.weights, n.bias = [19, 23], 7
    assert float(host(n.forward([12, 24]))) == 1.0


def test_seed002_network_4_3_1_gives_1(backend):
    net = xpnet.Network([xpnet.Dense(4, 3, "sigmoid"), xpnet.Dense(3, 1, "sigmoid")], backend=backend, dtype="float64")
    net.layers[0].weights = np.array([[19, 23, 14, 2], [4, 7, 11, 18], [3, 13, 52, 20]]).T  # rows are hidden neurons
    net.layers[0].bias = [4, 6, 9]
    net.layers[1].weights = np.array([[5], [10], [15]])
    net.layers[1].bias = [7]
    assert float(host(net.predict([[12, 24, 9, 16]]))[0, 0]) == 1.0


def test_seed002_mse_and_sigmoid_of_126():
    assert float(xpnet.loss_fcn("mse", [4, 9, 6], [4, 8, 6])) == pytest.approx(0.3333333333333333, abs=1e-16)
    assert float(xpnet.get_activation("sigmoid").forward(126)) == 1.0


# -- seed 003: the symbolic 2-2-1 network ---------------------------------------

X003 = [[0.35, 0.9]]
W0, W13, W14, W23, W24, W35, W45 = 0.1, 0.2, 0.8, 0.6, 0.4, 0.1, 0.5


def net_003(backend):
    net = xpnet.Network([xpnet.Dense(2, 2, "sigmoid"), xpnet.Dense(2, 1, "sigmoid")], backend=backend, dtype="float64")
    # The seed shares one bias symbol w0, added once per input: each bias is 2*w0.
    net.layers[0].weights = [[W13, W14], [W23, W24]]
    net.layers[0].bias = [2 * W0, 2 * W0]
    net.layers[1].weights = [[W35], [W45]]
    net.layers[1].bias = [2 * W0]
    return net


def test_seed003_output(backend):
    out = float(host(net_003(backend).predict(X003))[0, 0])
    assert out == pytest.approx(0.649864477526152, abs=1e-15)


def test_seed003_gradients_equal_symbolic_derivatives(backend):
    sympy = pytest.importorskip("sympy", reason="sympy is in the test extra")
    w0, w13, w14, w23, w24, w35, w45 = sympy.symbols("w0 w13 w14 w23 w24 w35 w45")
    b3, b4, b5 = sympy.symbols("b3 b4 b5")  # separate biases, then the seed's tie b = 2*w0
    x1, x2 = sympy.Rational(35, 100), sympy.Rational(9, 10)
    sig = lambda z: 1 / (1 + sympy.exp(-z))
    f3, f4 = sig(x1 * w13 + x2 * w23 + b3), sig(x1 * w14 + x2 * w24 + b4)
    f5 = sig(f3 * w35 + f4 * w45 + b5)
    L = -sympy.log(f5)  # binary cross-entropy with y_true = 1
    values = {w13: W13, w14: W14, w23: W23, w24: W24, w35: W35, w45: W45, b3: 2 * W0, b4: 2 * W0, b5: 2 * W0}
    d = {s: float(sympy.diff(L, s).subs(values).evalf(30)) for s in values}
    (dW1, db1), (dW2, db2) = [(host(a), host(b)) for a, b in net_003(backend).gradients(X003, [1.0], "binary_cross_entropy")]
    np.testing.assert_allclose(dW1, [[d[w13], d[w14]], [d[w23], d[w24]]], rtol=1e-12)
    np.testing.assert_allclose(db1, [d[b3], d[b4]], rtol=1e-12)
    np.testing.assert_allclose(dW2, [[d[w35]], [d[w45]]], rtol=1e-12)
    np.testing.assert_allclose(db2, [d[b5]], rtol=1e-12)
    # The seed's own dL/dw0 (one shared symbol, each bias = 2*w0) is 2 * (sum of the bias gradients).
    tied = -sympy.log(f5.subs({b3: 2 * w0, b4: 2 * w0, b5: 2 * w0}))
    dw0 = float(sympy.diff(tied, w0).subs({**values, w0: W0}).evalf(30))
    assert 2 * (db1.sum() + db2.sum()) == pytest.approx(dw0, rel=1e-12)


def test_seed003_training_lifts_output_above_099(backend):
    net = net_003(backend)
    net.fit(X003, [1.0], loss="binary_cross_entropy", optimizer="sgd", lr=0.3, epochs=1000)
    assert float(host(net.predict(X003))[0, 0]) > 0.99


# -- seed 001: 1000 -> 100 (ReLU) -> 1, SSE, lr 1e-6 -------------------------------


def test_seed001_network_matches_hand_written_loop_step_by_step(backend):
    rng = np.random.default_rng(0)
    input_values = rng.standard_normal((128, 1000))
    output_values = rng.standard_normal((128, 1))
    net = xpnet.Network([xpnet.Dense(1000, 100, "relu", bias=False, init="normal"),
                         xpnet.Dense(100, 1, "identity", bias=False, init="normal")],
                        backend=backend, dtype="float64", seed=1)
    weights1, weights2 = host(net.layers[0].weights).copy(), host(net.layers[1].weights).copy()
    hist = net.fit(input_values, output_values, loss="sse", optimizer="sgd", lr=1e-6, epochs=500)

    losses = []  # the seed's loop, verbatim in spirit
    for _ in range(500):
        activations = input_values.dot(weights1)
        relu_activations = np.maximum(activations, 0)
        predictions = relu_activations.dot(weights2)
        losses.append(np.sum(np.square(predictions - output_values)))
        dloss_predictions = 2.0 * (predictions - output_values)
        dloss_weights2 = relu_activations.T.dot(dloss_predictions)
        dloss_activations = dloss_predictions.dot(weights2.T)
        dloss_activations[activations < 0] = 0
        dloss_weights1 = input_values.T.dot(dloss_activations)
        weights1 -= 1e-6 * dloss_weights1
        weights2 -= 1e-6 * dloss_weights2
    np.testing.assert_allclose(hist.loss, losses, rtol=1e-9)
    assert hist.loss[0] - hist.loss[-1] > 1e4
    np.testing.assert_allclose(host(net.layers[1].weights), weights2, rtol=1e-8, atol=1e-10)


# -- seed 004: XOR by hand-written backprop --------------------------------------------


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_seed004_xor_matches_hand_written_loop_and_learns(backend, activation):
    X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)  # third column: the seed's bias input
    Y = np.array([[0], [1], [1], [0]], dtype=float)
    rng = np.random.default_rng(4)
    W1, W2 = rng.random((3, 4)), rng.random((4, 1))
    f = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh}[activation]
    df_from_out = {"sigmoid": lambda y: y * (1 - y), "tanh": lambda y: 1 - y**2}[activation]  # as the seed does
    lr = 0.05 if activation == "tanh" else 1.0  # a smooth descent: chaotic ones amplify last-bit differences
    net = xpnet.Network([xpnet.Dense(3, 4, activation, bias=False), xpnet.Dense(4, 1, activation, bias=False)],
                        backend=backend, dtype="float64")
    net.layers[0].weights, net.layers[1].weights = W1, W2
    hist = net.fit(X, Y, loss="sse", optimizer="sgd", lr=lr, epochs=1000)

    losses = []
    for _ in range(1000):
        hidden = f(X @ W1)
        out = f(hidden @ W2)
        losses.append(np.sum((out - Y) ** 2))
        diff = out - Y
        d_W2 = hidden.T @ (2 * diff * df_from_out(out))
        d_W1 = X.T @ ((2 * diff * df_from_out(out)) @ W2.T * df_from_out(hidden))
        W1, W2 = W1 - lr * d_W1, W2 - lr * d_W2
    np.testing.assert_allclose(hist.loss, losses, rtol=1e-9)
    np.testing.assert_allclose(host(net.layers[0].weights), W1, rtol=1e-9)
    assert np.array_equal(np.round(host(net.predict(X))), Y)


def test_seed004_save_then_separate_inference(tmp_path, backend):
    X, y = xpnet.datasets.xor()
    net = xpnet.MLP([2, 4, 1], "tanh", "sigmoid", backend=backend, dtype="float64", seed=0)
    net.fit(X, y, loss="binary_cross_entropy", optimizer="adam", lr=0.05, epochs=400)
    net.save(tmp_path / "xor.safetensors")
    infer = xpnet.load(tmp_path / "xor.safetensors", backend="numpy")
    assert np.array_equal(np.round(host(infer.predict(X)))[:, 0], y)
