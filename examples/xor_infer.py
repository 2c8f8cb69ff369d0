"""Seed 004, part 2: load the model ``xor_train.py`` saved and predict.

Loading needs no training code and no GPU: the file holds the architecture,
dtype and weights, and loads on any backend, whatever it was trained on.

    python examples/xor_infer.py [--model xor.safetensors] [--backend numpy] [ROW ...]

ROW is two numbers separated by a comma, e.g. ``1,0``; default: all four rows.
"""

from __future__ import annotations

import argparse

import numpy as np
from _options import backend_name

import xpnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", metavar="ROW", help="inputs such as 1,0 (default: the XOR table)")
    parser.add_argument("--model", default="xor.safetensors")
    parser.add_argument("--backend", type=backend_name, default="numpy")
    parser.add_argument("--device")
    args = parser.parse_args()

    net = xpnet.load(args.model, backend=args.backend, device=args.device)
    print(f"loaded {args.model}: {net!r}")
    X = np.array([[float(v) for v in row.split(",")] for row in args.rows]) if args.rows else xpnet.datasets.xor()[0]
    outputs = xpnet.to_numpy(net.predict(X))[:, 0]
    for row, out in zip(X, outputs):
        print(f"  {row.tolist()} -> {out:.4f} -> class {int(out > 0.5)}")


if __name__ == "__main__":
    main()
