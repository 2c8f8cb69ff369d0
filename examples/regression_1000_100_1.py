"""Seed 001: a 1000-100-1 ReLU network, no biases, learns random targets.

128 random inputs of 1000 values and 128 random targets; weights drawn from
N(0, 1) like the seed's ``np.random.randn``; the sum of squared errors as
loss; 500 full-batch gradient steps with learning rate 1e-6. The loss is
printed at the seed's steps (0, 10, ..., 100, 200, 300, 400): it falls from
millions to tens or hundreds. Where it ends depends on the random draw: the
seed's went from 9.1e6 to 61.5; here ``--seed 0`` goes from 3.6e6 to about
230 (still falling), seeds 1-3 end between 40 and 71 (70.27, 68.47, 40.75).

    python examples/regression_1000_100_1.py [--backend torch] [--seed 0] [--plot loss.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _options import backend_name, chosen_backend, image_file, non_negative_int, positive_int

import xpnet

BATCH, INPUT_DIM, HIDDEN_DIM, OUTPUT_DIM = 128, 1000, 100, 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", type=backend_name, default="numpy")
    parser.add_argument("--device")
    parser.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--steps", type=positive_int, default=500)
    parser.add_argument("--plot", type=image_file, metavar="PNG", help="draw the loss curve (needs matplotlib)")
    args = parser.parse_args()
    backend = chosen_backend(parser, args, float64=args.dtype == "float64")

    rng = np.random.default_rng(args.seed)
    input_values = rng.standard_normal((BATCH, INPUT_DIM))
    output_values = rng.standard_normal((BATCH, OUTPUT_DIM))

    net = xpnet.Network(
        [
            xpnet.Dense(INPUT_DIM, HIDDEN_DIM, "relu", bias=False, init="normal"),
            xpnet.Dense(HIDDEN_DIM, OUTPUT_DIM, "identity", bias=False, init="normal"),
        ],
        backend=backend,
        dtype=args.dtype,
        seed=args.seed,
    )
    print(f"backend: {net.backend}, dtype: {net.dtype}")
    first = xpnet.to_numpy(net.predict(input_values[:5])) - output_values[:5]
    print("difference of the first 5 examples before training:", np.round(first[:, 0], 2).tolist())

    start = time.perf_counter()
    # One epoch of full-batch descent is one step; History.loss[i] is the
    # loss of step i's forward pass, before its update, as the seed prints it.
    history = net.fit(input_values, output_values, loss="sse", optimizer="sgd", lr=1e-6,
                      epochs=args.steps, batch_size=None)
    seconds = time.perf_counter() - start
    for i, loss in enumerate(history.loss):
        if (i <= 100 and i % 10 == 0) or i % 100 == 0:
            print(f"{i}: {loss:.2f}")
    print(f"final loss: {net.evaluate(input_values, output_values, 'sse'):.2f} "
          f"after {history.epochs} steps in {seconds:.2f} s")
    after = xpnet.to_numpy(net.predict(input_values[:5])) - output_values[:5]
    print("difference of the first 5 examples after training:", [f"{d:.3g}" for d in after[:, 0]])

    if args.plot:
        from xpnet.plotting import plot_history

        plot_history(history, args.plot, title="1000-100-1 ReLU network, lr 1e-6", ylabel="sum of squared errors",
                     xlabel="step", first=0)  # steps numbered from 0, as printed above
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
