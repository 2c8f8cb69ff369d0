"""Seeds 000 and 002: one neuron, a 4-3-1 network and the loss functions.

The seeds keep a neuron in a dictionary (weights, bias, activation potential,
activation function, output); ``xpnet.Neuron`` keeps the same five things as
attributes, on any backend. Prints the seeds' figures: the ReLU neuron's 19,
the saturated sigmoid's 1.0, the 4-3-1 sigmoid network's 1.0, the MSE
0.333..., and the ``loss_fcn`` lists.

    python examples/neuron.py [--backend numpy|torch|jax|array_api_strict|cupy]
"""

from __future__ import annotations

import argparse

import numpy as np
from _options import backend_name, chosen_backend

import xpnet


def as_dict(neuron: xpnet.Neuron) -> dict:
    """The seed-000 neuron dictionary, read from an ``xpnet.Neuron``."""
    host = lambda a: None if a is None else xpnet.to_numpy(a).tolist()  # noqa: E731
    return {
        "weights": host(neuron.weights),
        "bias": host(neuron.bias),
        "activation_potential": host(neuron.activation_potential),
        "activation_function": neuron.activation.name,
        "output": host(neuron.output),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", type=backend_name, default="numpy")
    args = parser.parse_args()
    backend = chosen_backend(parser, args, float64=True)  # the seeds' figures are float64
    print(f"backend: {backend}")
    f64 = dict(backend=backend, dtype="float64")

    # Seed 000: a neuron with random weights, printed as the seed's dictionary.
    neuron = xpnet.Neuron(5, "tanh", seed=4, **f64)
    x = np.random.default_rng(4).random(5)
    print("before forward:", as_dict(neuron))
    neuron.forward(x)
    print("after forward: ", as_dict(neuron))

    # Seed 001's first neuron: inputs (2, 3, 4), weights (1, -1, 5), ReLU, no bias.
    relu = xpnet.Neuron(3, "relu", bias=False, **f64)
    relu.weights = [1, -1, 5]
    print("ReLU neuron:", float(xpnet.to_numpy(relu.forward([2, 3, 4]))))

    # Seed 002: sigmoid(12*19 + 24*23 + 7) = sigmoid(787), and sigmoid(126).
    sigmoid = xpnet.Neuron(2, "sigmoid", **f64)
    sigmoid.weights, sigmoid.bias = [19, 23], 7
    print("sigmoid neuron:", float(xpnet.to_numpy(sigmoid.forward([12, 24]))))
    print("sigmoid(126):", float(xpnet.to_numpy(xpnet.get_activation("sigmoid").forward(backend.asarray(126.0, "float64")))))

    # Seed 002's 4-3-1 network. The seed lists each hidden neuron's weights
    # as a row; Dense.weights is (n_in, n_out), so the matrix goes in transposed.
    net = xpnet.Network([xpnet.Dense(4, 3, "sigmoid"), xpnet.Dense(3, 1, "sigmoid")], **f64)
    w = [[19, 23, 14, 2], [4, 7, 11, 18], [3, 13, 52, 20]]
    net.layers[0].weights = np.array(w, dtype=float).T
    net.layers[0].bias = [4, 6, 9]
    net.layers[1].weights = [[5], [10], [15]]
    net.layers[1].bias = [7]
    out = xpnet.to_numpy(net.predict([[12, 24, 9, 16]]))
    print("4-3-1 network:", float(out[0, 0]))

    # Seed 002's MSE, and seed 000's loss_fcn over lists.
    print("MSE:", float(xpnet.to_numpy(xpnet.loss_fcn("mse", backend.asarray([4, 9, 6], "float64"),
                                                         backend.asarray([4, 8, 6], "float64")))))
    t = np.arange(-10, 10, 1.0)
    L = [float(xpnet.loss_fcn("MSE", ti, yi)) for ti, yi in zip(t, np.zeros(t.size))]
    print(f"L = {L}")
    yout = np.arange(0, 1, 0.1)
    L = [float(xpnet.loss_fcn("binary_cross_entropy", ti, yi)) for ti, yi in zip(np.ones(yout.size), yout)]
    print(f"L = {L}")
    print("(the seed prints nan at y = 0; xpnet clips y into [eps, 1 - eps], so the loss stays finite)")


if __name__ == "__main__":
    main()
