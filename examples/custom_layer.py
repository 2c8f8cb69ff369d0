"""Your own components: a residual block of two Dense layers and the Mish
activation, registered, trained on the digits, saved, and reloaded in a fresh
process with the same predictions.

Registration is what makes a component nameable: the model file stores
``{"type": "ResBlock", "width": 64, ...}`` and ``"mish"``, never code, so the
process that loads it must import the classes first (here: this file; on the
command line: ``xpnet predict --plugin MODULE``).

    python examples/custom_layer.py [--backend torch] [--device cpu] [--model custom.safetensors]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
from _options import backend_name, chosen_backend, output_file

import xpnet


@xpnet.register
class Mish(xpnet.Activation):
    """v * tanh(softplus(v)) (Misra, 2019), smooth and non-monotonic."""

    name = "mish"

    def _forward(self, xp, v):
        return v * xp.tanh(_softplus(xp, v))

    def _derivative(self, xp, v):
        """tanh(sp) + v (1 - tanh(sp)^2) sigmoid(v), sp = softplus(v). Below
        zero sigmoid is e/(1+e) with e = exp(v): 1 - 1/(1+e) would cancel to
        rounding noise (the wrong sign below about -17 in float32)."""
        t = xp.tanh(_softplus(xp, v))
        e = xp.exp(-xp.abs(v))
        sigmoid = xp.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return t + v * (1.0 - t * t) * sigmoid


def _softplus(xp, v):
    """log(1 + exp(v)) without overflow: max(v, 0) + log1p(exp(-|v|))."""
    return xp.maximum(v, 0.0) + xp.log1p(xp.exp(-xp.abs(v)))


@xpnet.register
class ResBlock(xpnet.Residual):
    """x + Dense(Dense(x)): two Dense layers of the same width around a skip."""

    name = "ResBlock"

    def __init__(self, width: int, activation: str = "mish") -> None:
        self.width, self.activation = width, activation
        super().__init__([xpnet.Dense(width, width, activation), xpnet.Dense(width, width)])

    def config(self) -> dict:
        return {"width": self.width, "activation": self.activation}


def build(backend) -> xpnet.Network:
    return xpnet.Network(
        [xpnet.Dense(64, 64, "mish"), ResBlock(64), ResBlock(64), xpnet.Dense(64, 10, "softmax")],
        backend=backend, seed=0,
    )


def train(args: argparse.Namespace, backend: xpnet.Backend) -> None:
    X, y = xpnet.datasets.load_digits()
    rows = np.random.default_rng(0).permutation(len(y))
    train_rows, test_rows = rows[:1400], rows[1400:]
    net = build(backend)
    print(f"backend: {net.backend}")
    print(net.summary())
    history = net.fit(X[train_rows], y[train_rows], loss="cross_entropy", optimizer="adam", lr=1e-3, epochs=15,
                      batch_size=32, seed=0, validation_data=(X[test_rows], y[test_rows]), metrics=("accuracy",))
    print(f"test accuracy: {history.metrics['val_accuracy'][-1]:.4f}")
    net.save(args.model)
    probabilities = xpnet.to_numpy(net.predict(X[test_rows]))
    np.save(args.model + ".npy", probabilities)
    print(f"saved to {args.model}")
    fresh = subprocess.run([sys.executable, __file__, "--reload", args.model], capture_output=True, text=True)
    print(fresh.stdout.strip() or fresh.stderr.strip())
    if fresh.returncode != 0:
        sys.exit(fresh.returncode)


def reload(model: str) -> None:
    """In a fresh process: the classes above are registered by this module's
    import, so ``load`` can rebuild the model from its names and configs."""
    X, y = xpnet.datasets.load_digits()
    rows = np.random.default_rng(0).permutation(len(y))
    net = xpnet.load(model, backend="numpy")
    same = np.allclose(xpnet.to_numpy(net.predict(X[rows[1400:]])), np.load(model + ".npy"), rtol=1e-5, atol=1e-6)
    print(f"same predictions in a fresh process (NumPy): {same}")
    if not same:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", type=backend_name, default="numpy")
    parser.add_argument("--device")
    parser.add_argument("--model", type=output_file, default="custom.safetensors",
                        help="where to save the trained model")
    parser.add_argument("--reload", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reload:
        reload(args.reload)
    else:
        train(args, chosen_backend(parser, args))


if __name__ == "__main__":
    main()
