"""W4, Dropout and BatchNorm: float32, batch 1024, 784 -> 1024 -> 1024 -> 10
with ``Dense, BatchNorm, ReLU, Dropout(0.2)`` twice, then softmax +
cross-entropy; 20 full-batch SGD steps (lr 0.01), W3's data.

xpnet (NumPy; torch on the CPU) against PyTorch eager on the CPU with the
same modules (``nn.Linear``, ``nn.BatchNorm1d``, ``nn.ReLU``, ``nn.Dropout``,
autograd, ``optim.SGD``), from the same initial weights. The Dropout masks
differ (xpnet hashes counters on the device, torch draws from its own
generator), so the final losses agree only roughly; the work is the same.
For scale, the same rows without BatchNorm and Dropout (W3's network)
show what the two layers cost each implementation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import Settings, torch_full_batch_steps, torch_tensor
from .harness import Comparison, Impl, Skip, Workload, have
from .w3 import data

NAME = "W4"
SEED = 3
SIZES = [784, 1024, 1024, 10]
RATE = 0.2
LR = 0.01
STEPS = 20
DTYPE = "float32"


def xpnet_network(backend: Any = "numpy", regularised: bool = True) -> Any:
    from xpnet import BatchNorm, Dense, Dropout, Network

    layers: list[Any] = []
    for n_in, n_out in zip(SIZES[:-2], SIZES[1:-1]):
        layers += [Dense(n_in, n_out), BatchNorm(n_out), "relu", Dropout(RATE)] if regularised else [Dense(n_in, n_out, "relu")]
    layers.append(Dense(SIZES[-2], SIZES[-1], "softmax"))
    return Network(layers, backend=backend, dtype=DTYPE, seed=SEED)


def dense_params(net: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    from xpnet import Dense, to_numpy

    return [(np.array(to_numpy(l.weights)), np.array(to_numpy(l.bias))) for l in net.layers if isinstance(l, Dense)]


def torch_model(params: list[tuple[np.ndarray, np.ndarray]], regularised: bool) -> Any:
    import torch

    mods: list[Any] = []
    for i, (w, b) in enumerate(params):
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(params) - 1:
            if regularised:
                mods += [torch.nn.BatchNorm1d(w.shape[1]), torch.nn.ReLU(), torch.nn.Dropout(RATE)]
            else:
                mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def eval_loss(X: np.ndarray, y: np.ndarray, predict: Any) -> float:
    """Cross-entropy of the trained network in inference mode (running statistics, no Dropout)."""
    p = np.asarray(predict(X), dtype=np.float64)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))


def build(s: Settings) -> Workload:
    if not have("torch"):
        raise Skip("torch is not installed (pip install -e '.[bench,torch]'): W4 compares against PyTorch")
    X, y = data()
    steps = s.steps(STEPS, 1)
    warm = min(steps, 2)
    impls: list[Impl] = []

    def xpnet_impl(key: str, label: str, backend: str, regularised: bool) -> Impl:
        def prepare(warmup: bool):
            from xpnet import get_backend, to_numpy

            net = xpnet_network(get_backend(backend), regularised)
            Xb, yb = net.backend.asarray(X), net.backend.asarray(y)
            k = warm if warmup else steps

            def run():
                net.fit(Xb, yb, loss="cross_entropy", optimizer="sgd", lr=LR, epochs=k, batch_size=None, seed=SEED)
                return lambda: {"final_loss": eval_loss(X, y, lambda a: to_numpy(net.predict(a)))}

            return run

        return Impl(key, label, prepare)

    def torch_impl(key: str, label: str, regularised: bool) -> Impl:
        def prepare(warmup: bool):
            import torch

            model = torch_model(dense_params(xpnet_network("numpy", regularised)), regularised)
            opt = torch.optim.SGD(model.parameters(), lr=LR)
            Xt, yt = torch_tensor(X, "cpu"), torch_tensor(y, "cpu")
            loss_fn = torch.nn.CrossEntropyLoss()
            k = warm if warmup else steps

            def run():
                model.train()
                torch_full_batch_steps(model, opt, loss_fn, Xt, yt, k)

                def finish():
                    model.eval()
                    with torch.no_grad():
                        return {"final_loss": eval_loss(X, y, lambda a: torch.softmax(model(torch_tensor(a, "cpu")), 1).numpy())}

                return finish

            return run

        return Impl(key, label, prepare)

    impls.append(xpnet_impl("xpnet-numpy", "xpnet (numpy)", "numpy", True))
    impls.append(xpnet_impl("xpnet-torch", "xpnet (torch cpu)", "torch", True))
    impls.append(torch_impl("torch-autograd", "PyTorch eager (cpu)", True))
    impls.append(xpnet_impl("xpnet-numpy-plain", "xpnet (numpy), without BatchNorm and Dropout", "numpy", False))
    impls.append(torch_impl("torch-autograd-plain", "PyTorch eager (cpu), without BatchNorm and Dropout", False))
    comps = [
        Comparison("xpnet-numpy", "torch-autograd", 1.0, "xpnet / PyTorch eager, Dropout + BatchNorm (not slower)"),
        Comparison("xpnet-torch", "torch-autograd", 1.0, "xpnet on torch / PyTorch eager, Dropout + BatchNorm (not slower)"),
        Comparison("xpnet-numpy", "xpnet-numpy-plain", None, "xpnet with / without Dropout + BatchNorm"),
        Comparison("torch-autograd", "torch-autograd-plain", None, "PyTorch with / without Dropout + BatchNorm"),
    ]
    return Workload(
        NAME,
        f"W4 Dropout + BatchNorm float32: 1024 x 784 -> 1024 -> 1024 -> 10 (Dense, BatchNorm, ReLU, Dropout {RATE}) "
        f"x2, softmax + CE, {steps} SGD steps",
        impls,
        comps,
        steps=steps,
        meta={"batch": len(X), "sizes": SIZES, "rate": RATE, "lr": LR, "dtype": DTYPE, "steps": steps},
    )
