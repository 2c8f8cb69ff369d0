"""Seed 004, part 2: load the model ``xor_train.py`` saved and predict.

Loading needs no training code and no GPU: the file holds the architecture,
dtype and weights, and loads on any backend, whatever it was trained on.

    python examples/xor_infer.py [--model xor.safetensors] [--backend numpy] [ROW ...]

ROW is two numbers separated by a comma, e.g. ``1,0``; default: all four rows.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from _options import backend_name, chosen_backend, input_file

import xpnet


def xor_row(text: str) -> list[float]:
    """A ROW: two finite numbers separated by a comma, checked by argparse
    rather than by ``float`` or the network after the model has loaded."""
    try:
        row = [float(v) for v in text.split(",")]
    except ValueError:
        row = []
    if len(row) != 2 or not all(math.isfinite(v) for v in row):
        raise argparse.ArgumentTypeError(f"expected two finite numbers separated by a comma, such as 1,0; got {text!r}")
    return row


def load_xor_model(parser: argparse.ArgumentParser, path: str, backend) -> xpnet.Network:
    """The model at ``path``, or argparse's one-line error naming --model: a
    file that is no model (empty, corrupt, a component this process has not
    registered) or no XOR model (two inputs, one output) is refused here,
    not in a traceback from inside xpnet."""
    try:
        net = xpnet.load(path, backend=backend)
    except (OSError, ValueError, TypeError) as exc:
        parser.error(f"argument --model: cannot load {path!r}: {exc}")
    if (net.n_in, net.n_out) != (2, 1):
        parser.error(f"argument --model: {path!r} holds a model of {net.n_in} inputs and {net.n_out} outputs; "
                     "an XOR model (xor_train.py's) has 2 inputs and 1 output")
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", metavar="ROW", type=xor_row,
                        help="inputs such as 1,0 (default: the XOR table)")
    parser.add_argument("--model", type=input_file, default="xor.safetensors")
    parser.add_argument("--backend", type=backend_name, default="numpy")
    parser.add_argument("--device")
    args = parser.parse_args()
    backend = chosen_backend(parser, args)

    net = load_xor_model(parser, args.model, backend)
    print(f"loaded {args.model}: {net!r}")
    X = np.array(args.rows) if args.rows else xpnet.datasets.xor()[0]
    outputs = xpnet.to_numpy(net.predict(X))[:, 0]
    for row, out in zip(X, outputs):
        print(f"  {row.tolist()} -> {out:.4f} -> class {int(out > 0.5)}")


if __name__ == "__main__":
    main()
