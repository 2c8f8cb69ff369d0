"""W2, digits: 64 -> 128 (ReLU) -> 10 (softmax), cross-entropy, minibatches of
64 reshuffled every epoch, plain SGD (lr 0.05, no momentum), 100 epochs;
float32 and float64. Reports training time and test accuracy.

The 8x8 digits come from scikit-learn (``X / 16``), split 75/25 stratified
with a fixed seed; xpnet, the hand-written loop and PyTorch see the same
minibatches (``numpy.random.default_rng(SHUFFLE_SEED).permutation`` per
epoch, as ``fit`` draws them); scikit-learn shuffles with its own generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import Settings, host_params, relu_softmax_mlp, run_length, sklearn_fit, sklearn_inject, sklearn_plain_sgd
from .common import torch_summed_steps, torch_tensor, torch_training
from .harness import Comparison, Impl, Skip, Workload, cupy_sync, cupy_usable, have, torch_devices

NAME = "W2"
SEED, SPLIT_SEED, SHUFFLE_SEED = 2, 0, 3
SIZES = [64, 128, 10]
LR, BATCH, EPOCHS = 0.05, 64, 100


def data(quick: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=SPLIT_SEED)
    return Xtr, Xte, ytr.astype(np.int64), yte.astype(np.int64)


def xpnet_network(dtype: str, backend: Any = "numpy") -> Any:
    return relu_softmax_mlp(SIZES, SEED, backend, dtype)


def accuracy(P: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(P, axis=1) == y))


def numpy_loop(np: Any, X, Y, W1, b1, W2, b2, lr, epochs, batch, seed):
    """A plain minibatch-SGD loop for ReLU -> softmax + cross-entropy, written
    as one would by hand (in-place updates, as in the seed); ``np`` is NumPy
    or CuPy, shuffling is on the host."""
    rng = __import__("numpy").random.default_rng(seed)
    n = X.shape[0]
    eps = np.finfo(X.dtype).eps
    losses = []
    for _ in range(epochs):
        order = np.asarray(rng.permutation(n))
        total = 0.0
        nb = 0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            x, t = X[idx], Y[idx]
            h = x @ W1 + b1
            a = np.maximum(h, 0)
            z = a @ W2 + b2
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            total = total - np.sum(t * np.log(np.clip(p, eps, 1.0))) / x.shape[0]
            nb += 1
            d2 = (p - t) / x.shape[0]
            gW2 = a.T @ d2
            gb2 = d2.sum(axis=0)
            d1 = d2 @ W2.T
            d1[h <= 0] = 0
            gW1 = x.T @ d1
            gb1 = d1.sum(axis=0)
            W1 -= lr * gW1
            b1 -= lr * gb1
            W2 -= lr * gW2
            b2 -= lr * gb2
        losses.append(float(total / nb))  # one host read per epoch, as fit
    return losses


def build_all(s: Settings, rss: bool = True) -> list[Workload]:
    if not have("sklearn"):
        raise Skip("scikit-learn is not installed: it provides the digits data (pip install 'xpnet[bench]')")
    return [build(s, "float32"), build(s, "float64")]


def build(s: Settings, dtype: str = "float32") -> Workload:
    Xtr, Xte, ytr, yte = data(s.quick)
    if s.quick:
        Xtr, ytr = Xtr[:256], ytr[:256]
    epochs = s.steps(EPOCHS, 2)
    n_epochs = run_length(epochs, min(epochs, 5))
    params = host_params(xpnet_network(dtype))
    npd = np.dtype(dtype)
    Xtr_d, Xte_d = Xtr.astype(npd), Xte.astype(npd)
    Ytr = np.eye(10, dtype=npd)[ytr]
    steps = epochs * -(-Xtr.shape[0] // BATCH)

    impls: list[Impl] = []

    def xpnet_impl(key, label, backend, sync=None, device="cpu"):
        def prepare(warmup: bool):
            net = xpnet_network(dtype, backend)
            Xb, yb = net.backend.asarray(Xtr_d), net.backend.asarray(ytr)
            k = n_epochs(warmup)

            def run():
                h = net.fit(
                    Xb, yb, loss="cross_entropy", optimizer="sgd", lr=LR, epochs=k, batch_size=BATCH,
                    shuffle=True, seed=SHUFFLE_SEED,
                )
                return lambda: {
                    "final_loss": h.loss[-1],
                    "test_accuracy": accuracy(net.backend.to_numpy(net.predict(Xte_d)), yte),
                }

            return run

        return Impl(key, label, prepare, sync or (lambda: None), device)

    impls.append(xpnet_impl("xpnet-numpy", "xpnet (numpy)", "numpy"))

    def numpy_prepare(warmup: bool):
        (W1, b1), (W2, b2) = [(w.copy(), b.copy()) for w, b in params]
        k = n_epochs(warmup)

        def run():
            losses = numpy_loop(np, Xtr_d, Ytr, W1, b1, W2, b2, LR, k, BATCH, SHUFFLE_SEED)

            def finish():
                P = np.maximum(Xte_d @ W1 + b1, 0) @ W2 + b2
                return {"final_loss": losses[-1], "test_accuracy": accuracy(P, yte)}

            return finish

        return run

    impls.append(Impl("numpy-hand", "hand-written NumPy", numpy_prepare))

    for dev, sfx, sync in torch_devices(s.gpu):

        def autograd_prepare(warmup: bool, dev=dev):
            import torch

            # CrossEntropyLoss: log-softmax + NLL on logits, mean over the batch
            model, opt, loss_fn = torch_training(params, ["relu", "identity"], dtype, dev, "SGD", LR)
            Xt = torch_tensor(Xtr_d, dev)
            yt = torch_tensor(ytr, dev)
            Xv = torch_tensor(Xte_d, dev)
            rng_seed = SHUFFLE_SEED
            k = n_epochs(warmup)
            n = Xt.shape[0]

            def run():
                rng = np.random.default_rng(rng_seed)
                last = None
                for _ in range(k):
                    order = torch_tensor(rng.permutation(n), dev)
                    idxs = (order[start : start + BATCH] for start in range(0, n, BATCH))
                    last = torch_summed_steps(model, opt, loss_fn, ((Xt[i], yt[i]) for i in idxs))  # as fit
                nb = -(-n // BATCH)

                def finish():
                    with torch.no_grad():
                        P = model(Xv).cpu().numpy()
                    return {"final_loss": last / nb, "test_accuracy": accuracy(P, yte)}

                return finish

            return run

        impls.append(Impl(f"torch-autograd{sfx}", f"PyTorch autograd + optim.SGD ({dev})", autograd_prepare, sync, dev))

    if have("sklearn"):

        def sklearn_prepare(warmup: bool):
            from sklearn.neural_network import MLPClassifier

            model = MLPClassifier(**sklearn_plain_sgd(SIZES[1], LR, BATCH, shuffle=True, random_state=SHUFFLE_SEED))
            k = n_epochs(warmup)
            sklearn_inject(model, Xtr_d, ytr, params, k)

            def run():
                sklearn_fit(model, Xtr_d, ytr)
                return lambda: {
                    "final_loss": float(model.loss_curve_[-1]),
                    "test_accuracy": float(np.mean(model.predict(Xte_d) == yte)),
                }

            return run

        impls.append(Impl("sklearn", "scikit-learn MLPClassifier (sgd)", sklearn_prepare))

    if s.gpu and cupy_usable():
        impls.append(xpnet_impl("xpnet-cupy", "xpnet (cupy)", "cupy", cupy_sync, "cuda"))

        def cupy_prepare(warmup: bool):
            import cupy

            (W1, b1), (W2, b2) = [(cupy.asarray(w), cupy.asarray(b)) for w, b in params]
            Xc, Yc = cupy.asarray(Xtr_d), cupy.asarray(Ytr)
            k = n_epochs(warmup)

            def run():
                losses = numpy_loop(cupy, Xc, Yc, W1, b1, W2, b2, LR, k, BATCH, SHUFFLE_SEED)

                def finish():
                    P = (cupy.maximum(cupy.asarray(Xte_d) @ W1 + b1, 0) @ W2 + b2).get()
                    return {"final_loss": losses[-1], "test_accuracy": accuracy(P, yte)}

                return finish

            return run

        impls.append(Impl("cupy-hand", "hand-written CuPy", cupy_prepare, cupy_sync, "cuda"))

    comps = [
        Comparison("xpnet-numpy", "sklearn", 0.5, "xpnet / scikit-learn MLP (2x faster)"),
        Comparison("xpnet-numpy", "torch-autograd", 0.5, "xpnet / PyTorch autograd (2x faster)"),
        Comparison("xpnet-numpy", "numpy-hand", None, "xpnet / hand-written NumPy"),
        Comparison("xpnet-cupy", "cupy-hand", None, "xpnet on CuPy / hand-written CuPy"),
    ]
    w = Workload(
        f"{NAME}-{dtype}",
        f"W2 digits {dtype}: 64 -> 128 ReLU -> 10 softmax, CE, minibatch {BATCH} shuffled, SGD lr {LR}, {epochs} epochs",
        impls,
        comps,
        steps=steps,
        meta={"sizes": SIZES, "lr": LR, "batch": BATCH, "epochs": epochs, "dtype": dtype, "quick": s.quick,
              "n_train": int(Xtr.shape[0]), "n_test": int(Xte.shape[0])},
        extra=_accuracy_targets,
    )
    return w


ACCURACY_SEEDS = (3, 11, 12, 13, 14)  # shuffling seeds for the accuracy comparison (3: the timed runs')


def _accuracy_targets(res: dict[str, Any]) -> None:
    """xpnet's test accuracy must be at least that of scikit-learn and PyTorch.

    One shuffling order decides a few of the 450 test digits either way, so
    the comparison is on the mean over ``ACCURACY_SEEDS`` (untimed runs;
    PyTorch sees xpnet's minibatches, so its accuracy is xpnet's to rounding
    and is compared on the timed run)."""
    impls = res["impls"]
    if "xpnet-numpy" not in impls:
        return
    meta = res["meta"]
    ours = impls["xpnet-numpy"]["result"]["test_accuracy"]
    targets = []
    if "torch-autograd" in impls:
        theirs = impls["torch-autograd"]["result"]["test_accuracy"]
        targets.append(
            {
                "what": "test accuracy xpnet >= PyTorch (same minibatches)",
                "value": f"{ours:.4f} vs {theirs:.4f}",
                "met": ours >= theirs,
                "distance": f"{(theirs - ours) * 100:.2f} points lower",
            }
        )
    if "sklearn" in impls and not meta.get("quick"):
        mean_x, mean_s = _mean_accuracies(meta["dtype"], meta["epochs"])
        impls["xpnet-numpy"]["extra"] = {"mean_test_accuracy_5_seeds": mean_x}
        impls["sklearn"]["extra"] = {"mean_test_accuracy_5_seeds": mean_s}
        targets.append(
            {
                "what": f"mean test accuracy over {len(ACCURACY_SEEDS)} shuffling seeds xpnet >= scikit-learn",
                "value": f"{mean_x:.4f} vs {mean_s:.4f}",
                "met": mean_x >= mean_s,
                "distance": f"{(mean_s - mean_x) * 100:.2f} points lower",
            }
        )
    res["targets"] = targets


def _mean_accuracies(dtype: str, epochs: int) -> tuple[float, float]:
    from sklearn.neural_network import MLPClassifier

    Xtr, Xte, ytr, yte = data(False)
    npd = np.dtype(dtype)
    Xtr, Xte = Xtr.astype(npd), Xte.astype(npd)
    params = host_params(xpnet_network(dtype))
    ax, as_ = [], []
    for seed in ACCURACY_SEEDS:
        net = xpnet_network(dtype)
        net.fit(Xtr, ytr, loss="cross_entropy", optimizer="sgd", lr=LR, epochs=epochs, batch_size=BATCH, seed=seed)
        ax.append(accuracy(net.backend.to_numpy(net.predict(Xte)), yte))
        m = MLPClassifier(**sklearn_plain_sgd(SIZES[1], LR, BATCH, shuffle=True, random_state=seed))
        sklearn_inject(m, Xtr, ytr, params, epochs)
        sklearn_fit(m, Xtr, ytr)
        as_.append(float(np.mean(m.predict(Xte) == yte)))
    return float(np.mean(ax)), float(np.mean(as_))
