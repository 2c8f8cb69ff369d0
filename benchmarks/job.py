"""Job: the 100 000-row job of issue 14: 100 000 rows x 50 features, 50 ->
256 -> 256 -> 5 (ReLU, softmax + cross-entropy), Adam lr 1e-3, batch 200,
shuffled, 10 epochs, float32: 5000 steps of a small network.

The issue measured xpnet on CuPy (H200) at 22.7 s against 6.0 s for xpnet on
NumPy with 16 CPU cores; the target is CuPy faster than the CPU. Here:
xpnet on NumPy and scikit-learn's MLP on this machine's cores, and with a
GPU xpnet on CuPy and on CUDA torch (compiled, as ``fit`` defaults to).
"""

from __future__ import annotations

import numpy as np

from .common import Settings, backend_of, relu_softmax_mlp
from .harness import Comparison, Impl, Workload, cupy_sync, cupy_usable, have, jax_gpu_usable, torch_cuda_usable
from .harness import torch_sync_for

NAME = "Job"
SEED = 100
ROWS = 100_000
SIZES = [50, 256, 256, 5]
BATCH = 200
EPOCHS = 10
LR = 1e-3


def data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((rows, SIZES[0]), dtype=np.float32)
    w = rng.standard_normal((SIZES[0], SIZES[-1])).astype(np.float32)
    return X, np.argmax(X @ w + rng.standard_normal((rows, SIZES[-1])).astype(np.float32), axis=1)


def build(s: Settings, rss: bool = True) -> Workload:
    rows, epochs = (2000, 2) if s.quick else (ROWS, EPOCHS)
    X, y = data(rows)

    def xpnet_impl(key, label, backend, sync=None, device="cpu"):
        def prepare(warmup: bool):
            b = backend_of(backend)
            net = relu_softmax_mlp(SIZES, SEED, b)
            n = 2000 if warmup and b.name != "jax" else rows  # jax.jit's program is specialised to the data's shape
            Xb, yb = net.backend.asarray(X[:n]), net.backend.asarray(y[:n])

            def run():
                h = net.fit(Xb, yb, loss="cross_entropy", optimizer="adam", lr=LR, epochs=1 if warmup else epochs,
                            batch_size=BATCH, seed=0)  # fmt: skip
                return lambda: {"final_loss": h.loss[-1]}

            return run

        return Impl(key, label, prepare, sync or (lambda: None), device)

    impls = [xpnet_impl("xpnet-numpy", "xpnet (numpy)", "numpy")]
    impls[0].gpu_baseline = True
    if have("sklearn"):
        impls += sklearn_impls(s, X, y, rows, epochs)
    if s.gpu and cupy_usable():
        impls.append(xpnet_impl("xpnet-cupy", "xpnet (cupy)", "cupy", cupy_sync, "cuda"))
    if s.gpu and have("torch") and torch_cuda_usable():
        impls.append(xpnet_impl("xpnet-torch-cuda", "xpnet (torch cuda), CUDA graph", ("torch", "cuda"),
                                torch_sync_for("cuda"), "cuda"))  # fmt: skip
    if s.gpu and jax_gpu_usable():
        impls.append(xpnet_impl("xpnet-jax-gpu", "xpnet (jax cuda), jax.jit", "jax", None, "cuda"))
    comps = [
        Comparison("xpnet-numpy", "sklearn", None, "xpnet / scikit-learn"),
        Comparison("xpnet-cupy", "xpnet-numpy", None, "xpnet on CuPy / xpnet on NumPy (this machine's cores)"),
        Comparison("xpnet-torch-cuda", "xpnet-numpy", None, "xpnet on CUDA torch / xpnet on NumPy"),
        Comparison("xpnet-jax-gpu", "xpnet-numpy", None, "xpnet on JAX (GPU) / xpnet on NumPy"),
        Comparison("sk-cupy", "sklearn", 0.2, "xpnet.sklearn on CuPy / scikit-learn (issue 12: 5x faster)"),
        Comparison("sk-torch-cuda", "sklearn", 0.2, "xpnet.sklearn on CUDA torch / scikit-learn"),
    ]
    return Workload(
        NAME,
        f"Job: {rows} x {' -> '.join(map(str, SIZES))} ReLU, softmax + CE, Adam, batch {BATCH}, {epochs} epochs",
        impls,
        comps,
        steps=epochs * -(-rows // BATCH),
        meta={"rows": rows, "sizes": SIZES, "batch": BATCH, "epochs": epochs},
    )


def sklearn_impls(s: Settings, X: np.ndarray, y: np.ndarray, rows: int, epochs: int) -> list[Impl]:
    """scikit-learn's MLPClassifier on this machine's cores and, with a GPU,
    ``xpnet.sklearn.MLPClassifier`` with the same settings on CuPy and CUDA
    torch (issue 12: at least 5x faster than scikit-learn on CuPy)."""

    def prepare_for(make):
        def prepare(warmup: bool):
            import warnings

            from sklearn.exceptions import ConvergenceWarning

            model = make(hidden_layer_sizes=tuple(SIZES[1:-1]), solver="adam", learning_rate_init=LR,
                         batch_size=BATCH, max_iter=1 if warmup else epochs, alpha=0.0, tol=0.0,
                         n_iter_no_change=10**9, random_state=0)  # fmt: skip
            n = 2000 if warmup else rows

            def run():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model.fit(X[:n], y[:n])
                return lambda: {"final_loss": float(model.loss_curve_[-1])}

            return run

        return prepare

    from sklearn.neural_network import MLPClassifier

    impls = [Impl("sklearn", "scikit-learn MLPClassifier (adam)", prepare_for(MLPClassifier), gpu_baseline=True)]
    if not s.gpu:
        return impls
    from functools import partial

    from xpnet.sklearn import MLPClassifier as XpnetMLP

    if cupy_usable():
        impls.append(Impl("sk-cupy", "xpnet.sklearn MLPClassifier (cupy)", prepare_for(partial(XpnetMLP, backend="cupy")),
                          cupy_sync, "cuda"))  # fmt: skip
    if have("torch") and torch_cuda_usable():
        make = partial(XpnetMLP, backend="torch", device="cuda")
        impls.append(Impl("sk-torch-cuda", "xpnet.sklearn MLPClassifier (torch cuda)", prepare_for(make),
                          torch_sync_for("cuda"), "cuda"))  # fmt: skip
    return impls
