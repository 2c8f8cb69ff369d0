"""The same script on the CPU or a GPU: only ``--backend`` (and ``--device``) change.

Nothing below names an array library. The data are NumPy arrays on the
host; the model converts them to its backend and device once, trains there,
and ``xpnet.to_numpy`` brings results back. Initial weights and shuffling
come from the host generator, so every backend starts from the same weights
and sees the same minibatches.

    python examples/cpu_or_gpu.py                        # NumPy on the CPU
    python examples/cpu_or_gpu.py --backend cupy         # CuPy on GPU 0 (pip install "xpnet[gpu]")
    python examples/cpu_or_gpu.py --backend torch --device cuda
    python examples/cpu_or_gpu.py --backend auto         # $XPNET_BACKEND, else cupy if usable, else numpy
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _options import backend_name, chosen_backend, positive_int

import xpnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", type=backend_name, default="numpy")
    parser.add_argument("--device")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--hidden", type=positive_int, default=128,
                        help="width of the two hidden layers; try 2048 on a GPU")
    parser.add_argument("--epochs", type=positive_int, default=10)
    args = parser.parse_args()

    backend = chosen_backend(parser, args, float64=args.dtype == "float64")
    print(f"backend: {backend.name}, device: {backend.device}, dtype: {args.dtype}")

    X, y = xpnet.datasets.load_digits()
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[360:], order[:360]
    mean, std = X[train].mean(axis=0), X[train].std(axis=0) + 1e-8
    X = (X - mean) / std

    net = xpnet.MLP([64, args.hidden, args.hidden, 10], output_activation="softmax",
                    backend=backend, dtype=args.dtype, seed=0)
    start = time.perf_counter()
    history = net.fit(X[train], y[train], loss="cross_entropy", optimizer="adam", lr=1e-3,
                      epochs=args.epochs, batch_size=64, seed=0)
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(xpnet.to_numpy(net.predict(X[test])).argmax(axis=1) == y[test]))
    print(f"{history.epochs} epochs in {seconds:.2f} s ({seconds / history.epochs * 1000:.1f} ms per epoch), "
          f"final loss {history.loss[-1]:.4f}, test accuracy {accuracy:.4f}")

    # A model trained on a GPU serves on a CPU: copy it to NumPy (the original stays put).
    cpu = net.to("numpy")
    same = np.array_equal(cpu.predict(X[test]).argmax(axis=1), xpnet.to_numpy(net.predict(X[test])).argmax(axis=1))
    print(f"copied to numpy for serving; same predictions: {same}")


if __name__ == "__main__":
    main()
