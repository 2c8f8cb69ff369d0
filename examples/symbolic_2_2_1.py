"""Seed 003: a 2-2-1 sigmoid network, its gradients checked against SymPy.

Inputs x1 = 0.35, x2 = 0.9; hidden neurons 3 and 4, output neuron 5; weights
w13 = 0.2, w14 = 0.8, w23 = 0.6, w24 = 0.4, w35 = 0.1, w45 = 0.5, and one bias
symbol w0 = 0.1 that the seed adds once per input, so every neuron's bias is
2 * w0. The network's output is 0.649864477526152. SymPy differentiates the
binary cross-entropy (target 1) by every weight; xpnet's backpropagation must
give the same numbers. The seed's own training (999 rounds of lr 0.3, one
weight at a time, the shared w0 first) then ends at its printed
0.999453185534398. Last, plain gradient descent (lr 0.3) with ``fit`` trains
until the output passes 0.99. (xpnet gives each neuron its own bias, so
``fit`` moves the three biases apart, where the seed keeps one shared w0.)

    python examples/symbolic_2_2_1.py [--backend torch]
"""

from __future__ import annotations

import argparse

import numpy as np
from _options import backend_name, chosen_backend

import xpnet

X = [[0.35, 0.9]]
Y = [[1.0]]
W = {"w13": 0.2, "w14": 0.8, "w23": 0.6, "w24": 0.4, "w35": 0.1, "w45": 0.5, "w0": 0.1}


def build(backend: xpnet.Backend) -> xpnet.Network:
    net = xpnet.Network([xpnet.Dense(2, 2, "sigmoid"), xpnet.Dense(2, 1, "sigmoid")], backend=backend, dtype="float64")
    set_weights(net, W)
    return net


def set_weights(net: xpnet.Network, w: dict[str, float]) -> None:
    """The seed's seven symbols as the network's weights and biases."""
    hidden, output = net.layers
    hidden.weights = [[w["w13"], w["w14"]], [w["w23"], w["w24"]]]  # row: input, column: neuron 3, 4
    hidden.bias = [2 * w["w0"], 2 * w["w0"]]
    output.weights = [[w["w35"]], [w["w45"]]]
    output.bias = [2 * w["w0"]]


def seed_training(net: xpnet.Network, iterations: int = 999, lr: float = 0.3) -> float:
    """The seed's own training, with backpropagation's gradients in place of
    SymPy's: ``iterations`` rounds (its loop runs while ``i != 1000``, from
    1; its stop test is computed once, before the loop), each updating w0,
    w13, w14, w23, w24, w35, w45 in turn, each from the gradient at the
    weights as already updated in that round. The output it prints:
    0.999453185534398."""
    w = dict(W)
    for _ in range(iterations):
        for name in ("w0", "w13", "w14", "w23", "w24", "w35", "w45"):
            set_weights(net, w)
            w[name] -= lr * float(xpnet_gradients(net)[name])
    set_weights(net, w)
    return float(xpnet.to_numpy(net.predict(X))[0, 0])


def sympy_gradients() -> tuple[float, dict[str, float]] | None:
    """The seed's symbolic output and dL/dw for each of its 7 symbols."""
    try:
        import sympy as sp
    except ImportError:
        return None
    s = {name: sp.Symbol(name) for name in W}
    x1, x2 = sp.Rational(35, 100), sp.Rational(9, 10)
    sig = lambda z: 1 / (1 + sp.exp(-z))  # noqa: E731
    f3 = sig((x1 * s["w13"] + s["w0"]) + (x2 * s["w23"] + s["w0"]))
    f4 = sig((x1 * s["w14"] + s["w0"]) + (x2 * s["w24"] + s["w0"]))
    f5 = sig((f3 * s["w35"] + s["w0"]) + (f4 * s["w45"] + s["w0"]))
    y_true = 1
    L = -y_true * sp.log(f5) - (1 - y_true) * sp.log(1 - f5)
    at = {s[name]: sp.Rational(str(value)) for name, value in W.items()}
    grads = {name: float(sp.diff(L, s[name]).subs(at).evalf(30)) for name in W}
    return float(f5.subs(at).evalf(30)), grads


def xpnet_gradients(net: xpnet.Network) -> dict[str, float]:
    """Backpropagation's gradients in the seed's names; the shared w0 enters
    each of the three biases twice, so dL/dw0 = 2 * (sum of the bias gradients)."""
    (dW1, db1), (dW2, db2) = [tuple(xpnet.to_numpy(g) for g in pair) for pair in net.gradients(X, Y, "binary_cross_entropy")]
    return {
        "w13": dW1[0, 0], "w14": dW1[0, 1], "w23": dW1[1, 0], "w24": dW1[1, 1],
        "w35": dW2[0, 0], "w45": dW2[1, 0], "w0": 2 * (db1.sum() + db2.sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", type=backend_name, default="numpy")
    parser.add_argument("--device")
    args = parser.parse_args()
    net = build(chosen_backend(parser, args, float64=True))
    print(f"backend: {net.backend}")
    out = float(xpnet.to_numpy(net.predict(X))[0, 0])
    print(f"output before training: {out:.15g}")  # the seed prints 15 digits: 0.649864477526152

    mine = xpnet_gradients(net)
    symbolic = sympy_gradients()
    if symbolic is None:
        print("sympy is not installed (pip install sympy); checking against central differences instead")
        print(f"gradcheck relative error: {xpnet.gradcheck(net, X, Y, 'binary_cross_entropy'):.2e}")
    else:
        f5, grads = symbolic
        print(f"sympy output:           {f5:.15g}")
        print(f"{'':>4} {'sympy':>22} {'xpnet':>22}")
        for name in W:
            print(f"{name:>4} {grads[name]:22.15e} {mine[name]:22.15e}")
        worst = max(abs(mine[n] - grads[n]) / max(abs(grads[n]), 1e-300) for n in W)
        print(f"largest relative difference: {worst:.2e}")

    seeds = seed_training(build(net.backend))
    print(f"output after the seed's 999 rounds of one-weight-at-a-time updates (lr 0.3): {seeds:.15g}")
    steps = 0  # and as fit trains: every weight at once, each neuron its own bias
    while out <= 0.99 and steps < 10_000:
        net.fit(X, Y, loss="binary_cross_entropy", optimizer="sgd", lr=0.3, epochs=1)
        out = float(xpnet.to_numpy(net.predict(X))[0, 0])
        steps += 1
    print(f"output after {steps} steps of gradient descent (lr 0.3): {out:.15g}")
    loss = net.evaluate(X, Y, "binary_cross_entropy")
    print(f"loss: {loss:.6f}; weights: {np.round(xpnet.to_numpy(net.layers[0].weights), 4).tolist()}, "
          f"{np.round(xpnet.to_numpy(net.layers[1].weights), 4).ravel().tolist()}")


if __name__ == "__main__":
    main()
