"""Seed 004, part 1: train a small network on XOR and save it.

A 2-4-1 network (tanh hidden layer, sigmoid output), the seed's sum of
squared errors and plain gradient descent on all four rows at once. The
trained model goes to a safetensors file that ``xor_infer.py`` (a separate
program, as in the seed's "standalone inference code") loads.

    python examples/xor_train.py [--backend torch] [--model xor.safetensors] [--plot loss.png]
"""

from __future__ import annotations

import argparse

import numpy as np
from _options import (
    backend_name,
    chosen_backend,
    image_file,
    non_negative_int,
    output_file,
    positive_float,
    positive_int,
)

import xpnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", type=backend_name, default="numpy")
    parser.add_argument("--device")
    parser.add_argument("--model", type=output_file, default="xor.safetensors", help="where to save the trained model")
    parser.add_argument("--epochs", type=positive_int, default=1000)
    parser.add_argument("--lr", type=positive_float, default=1.0)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--plot", type=image_file, metavar="PNG", help="draw the loss curve (needs matplotlib)")
    args = parser.parse_args()
    backend = chosen_backend(parser, args)

    X, y = xpnet.datasets.xor()
    net = xpnet.MLP([2, 4, 1], activation="tanh", output_activation="sigmoid",
                    backend=backend, seed=args.seed)
    print(f"backend: {net.backend}, dtype: {net.dtype}")
    history = net.fit(X, y, loss="sse", optimizer="sgd", lr=args.lr, epochs=args.epochs)
    print(f"loss: {history.loss[0]:.4f} -> {history.loss[-1]:.4f} after {history.epochs} epochs")
    outputs = xpnet.to_numpy(net.predict(X))[:, 0]
    for row, out in zip(X, outputs):
        print(f"  {row.astype(int).tolist()} -> {out:.4f}")
    print(f"all four right: {bool(np.all((outputs > 0.5) == (y > 0.5)))}")

    net.info = {"inputs": ["x1", "x2"], "task": "xor"}
    net.save(args.model)
    print(f"saved to {args.model}")

    if args.plot:
        from xpnet.plotting import plot_history

        plot_history(history, args.plot, title="XOR, 2-4-1", ylabel="sum of squared errors", xlabel="epoch")
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
