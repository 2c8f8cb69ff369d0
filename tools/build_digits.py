"""Build ``xpnet/datasets/digits.npz`` from scikit-learn's copy of the digits.

Run once, by a maintainer, on a machine with scikit-learn; the package itself
never imports scikit-learn. The pixels are stored as their original counts
0..16 in ``uint8`` (``load_digits`` divides by 16), which keeps the
compressed file small.

    python tools/build_digits.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parent.parent / "xpnet" / "datasets" / "digits.npz"


def main() -> None:
    X, y = load_digits(return_X_y=True)
    if X.shape != (1797, 64) or X.min() < 0 or X.max() > 16 or not np.array_equal(X, np.round(X)):
        raise SystemExit(f"unexpected digits data: shape {X.shape}, range {X.min()}..{X.max()}")
    np.savez_compressed(OUT, X=X.astype(np.uint8), y=y.astype(np.uint8))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): X {X.shape}, y {y.shape}, classes {np.unique(y).tolist()}")


if __name__ == "__main__":
    main()
