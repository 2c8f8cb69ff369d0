"""The shipped 8x8 digits, classified through the Python API.

The steps of ``xpnet train``, written out: load the data (NumPy arrays on
the host), hold out the same stratified 20% for testing, standardise with the
training rows' statistics, train a 64-128-10 softmax MLP with Adam, and
report the test accuracy and the confusion matrix. The training is simpler
than the command's, so its accuracy differs: a ReLU hidden layer (``xpnet
train``: tanh) for a fixed number of epochs, 30 by default (``xpnet train``:
at most 488 here, stopping early on the loss of 10% of the training rows
held out for validation).

    python examples/digits.py [--backend torch] [--epochs 30] [--save digits.safetensors]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _options import backend_name, chosen_backend, non_negative_int, output_file, positive_int

import xpnet


def stratified_split(y: np.ndarray, test_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices: the same share of every class goes to the test set."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for digit in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == digit))
        k = round(test_share * len(rows))
        test.append(rows[:k])
        train.append(rows[k:])
    return np.concatenate(train), np.concatenate(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", type=backend_name, default="numpy")
    parser.add_argument("--device")
    parser.add_argument("--epochs", type=positive_int, default=30)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--save", type=output_file, metavar="MODEL", help="save the trained model here")
    args = parser.parse_args()
    backend = chosen_backend(parser, args)

    X, y = xpnet.datasets.load_digits()  # (1797, 64) in [0, 1], labels 0-9
    train, test = stratified_split(y, 0.2, args.seed)
    mean, std = X[train].mean(axis=0), X[train].std(axis=0)
    std[std == 0] = 1.0  # some corner pixels are always blank
    X = (X - mean) / std

    net = xpnet.MLP([64, 128, 10], activation="relu", output_activation="softmax",
                    backend=backend, seed=args.seed)
    print(f"backend: {net.backend}, dtype: {net.dtype}; {len(train)} training rows, {len(test)} test rows")
    start = time.perf_counter()
    history = net.fit(
        X[train], y[train], loss="cross_entropy", optimizer="adam", lr=1e-3, epochs=args.epochs,
        batch_size=32, seed=args.seed, progress=sys.stdout.isatty(),
        validation_data=(X[test], y[test]), metrics=("accuracy",),
    )
    print(f"trained {history.epochs} epochs in {time.perf_counter() - start:.2f} s; "
          f"loss {history.loss[0]:.3f} -> {history.loss[-1]:.4f}")

    predicted = xpnet.to_numpy(net.predict(X[test])).argmax(axis=1)  # probabilities -> digits, on the host
    print(f"test accuracy: {np.mean(predicted == y[test]):.4f}")
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (y[test], predicted), 1)
    print("confusion matrix (rows: true digit, columns: predicted):")
    print("     " + " ".join(f"{d:3d}" for d in range(10)))
    for digit, row in enumerate(confusion):
        print(f"  {digit}: " + " ".join(f"{n:3d}" for n in row))

    if args.save:
        # As `xpnet train` records them: the feature columns (an NPZ file's X columns are x0, x1, ...), their
        # scaling and the classes, so that `xpnet predict` prepares new rows as these were prepared.
        features = [f"x{i}" for i in range(X.shape[1])]
        net.info = {"features": features, "x_mean": mean.tolist(), "x_std": std.tolist(), "classes": list(range(10))}
        net.save(args.save)
        print(f"saved to {args.save} (xpnet predict {args.save} DATA.npz applies the stored scaling)")


if __name__ == "__main__":
    main()
