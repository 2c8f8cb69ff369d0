"""``python -m benchmarks``: see :mod:`benchmarks.run`."""

import os
import sys

# --threads N must reach the BLAS and OpenMP pools before NumPy or torch load
# them, so it is read here, ahead of every import that could load them.
for i, arg in enumerate(sys.argv):
    value = arg.split("=", 1)[1] if arg.startswith("--threads=") else None
    if arg == "--threads" and i + 1 < len(sys.argv):
        value = sys.argv[i + 1]
    if value is not None and value.isdigit() and int(value) >= 1:  # run.main refuses the rest
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = value
        if value == "1":  # JAX's CPU programs too (XLA's Eigen pool spins against the others' pools)
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()

from .run import main  # noqa: E402

raise SystemExit(main())
