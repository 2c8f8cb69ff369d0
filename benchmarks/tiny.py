"""Tiny: XOR, 2 -> 2 -> 1 with sigmoid on both layers, MSE, batch 4 (all of
XOR), plain gradient descent lr 2.0, 10000 steps, float64. Per-step
microseconds: here the arrays are nothing and the Python around them is all.

xpnet runs twice: ``fit`` over one epoch of 10000 batches of the four rows
(``X`` tiled, no shuffle: the steady per-step cost, one host read in all),
and ``fit(epochs=10000)`` on the four rows (every step is then also an epoch
end: the NaN guard, one host read, the History entry).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import Settings, host_params, torch_sequential, torch_tensor
from .harness import Comparison, Impl, Workload, have

NAME = "Tiny"
SEED = 4
LR = 2.0
STEPS = 10000


def data() -> tuple[np.ndarray, np.ndarray]:
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    return X, y


def xpnet_network() -> Any:
    from xpnet import MLP

    return MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid", backend="numpy", dtype="float64", seed=SEED)


def numpy_loop(X, T, W1, b1, W2, b2, lr, steps):
    """Textbook XOR backprop (in-place updates, as in the seeds)."""
    n = T.size
    for _ in range(steps):
        a1 = 1.0 / (1.0 + np.exp(-(X @ W1 + b1)))
        y = 1.0 / (1.0 + np.exp(-(a1 @ W2 + b2)))
        d = y - T
        loss = np.sum(d * d) / n
        d2 = d * (2.0 / n) * y * (1.0 - y)
        gW2, gb2 = a1.T @ d2, d2.sum(axis=0)
        d1 = (d2 @ W2.T) * a1 * (1.0 - a1)
        gW1, gb1 = X.T @ d1, d1.sum(axis=0)
        W1 -= lr * gW1
        b1 -= lr * gb1
        W2 -= lr * gW2
        b2 -= lr * gb2
    return loss


def mse(X, T, params) -> float:
    a = X
    for w, b in params:
        a = 1.0 / (1.0 + np.exp(-(a @ w + b)))
    return float(np.mean((a - T) ** 2))


def build(s: Settings) -> Workload:
    X, T = data()
    params = host_params(xpnet_network())
    steps = s.steps(STEPS, 20)
    warm = min(steps, 500)

    def n_steps(warmup: bool) -> int:
        return warm if warmup else steps

    def xpnet_finish(net):
        from xpnet import to_numpy

        return lambda: {"final_mse": mse(X, T, [(to_numpy(l.weights), to_numpy(l.bias)) for l in net.layers])}

    def xpnet_steps_prepare(warmup: bool):
        net = xpnet_network()
        k = n_steps(warmup)
        Xk, Tk = np.tile(X, (k, 1)), np.tile(T, (k, 1))

        def run():
            net.fit(Xk, Tk, loss="mse", optimizer="sgd", lr=LR, epochs=1, batch_size=4, shuffle=False)
            return xpnet_finish(net)

        return run

    def xpnet_epochs_prepare(warmup: bool):
        net = xpnet_network()
        k = n_steps(warmup)

        def run():
            net.fit(X, T, loss="mse", optimizer="sgd", lr=LR, epochs=k, batch_size=None)
            return xpnet_finish(net)

        return run

    def numpy_prepare(warmup: bool):
        (W1, b1), (W2, b2) = [(w.copy(), b.copy()) for w, b in params]
        k = n_steps(warmup)

        def run():
            numpy_loop(X, T, W1, b1, W2, b2, LR, k)
            return lambda: {"final_mse": mse(X, T, [(W1, b1), (W2, b2)])}

        return run

    impls = [
        Impl("xpnet-numpy", "xpnet (numpy), fit: 1 epoch of 10000 batches", xpnet_steps_prepare),
        Impl("xpnet-numpy-epochs", "xpnet (numpy), fit: 10000 epochs of 1 batch", xpnet_epochs_prepare),
        Impl("numpy-hand", "hand-written NumPy", numpy_prepare),
    ]

    if have("torch"):

        def autograd_prepare(warmup: bool):
            import torch

            model = torch_sequential(params, ["sigmoid", "sigmoid"], "float64", "cpu")
            opt = torch.optim.SGD(model.parameters(), lr=LR)
            Xt, Tt = torch_tensor(X, "cpu"), torch_tensor(T, "cpu")
            loss_fn = torch.nn.MSELoss()
            k = n_steps(warmup)

            def run():
                total = None
                for _ in range(k):
                    loss = loss_fn(model(Xt), Tt)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total = loss.detach() if total is None else total + loss.detach()
                total.item()

                def finish():
                    lins = [m for m in model if isinstance(m, torch.nn.Linear)]
                    return {
                        "final_mse": mse(X, T, [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in lins])
                    }

                return finish

            return run

        impls.append(Impl("torch-autograd", "PyTorch autograd + optim.SGD (cpu)", autograd_prepare))

    comps = [
        Comparison("xpnet-numpy", "numpy-hand", 1.3, "xpnet / hand-written NumPy"),
        Comparison("xpnet-numpy-epochs", "numpy-hand", 1.3, "xpnet, 1 step per epoch / hand-written NumPy"),
        Comparison("xpnet-numpy", "torch-autograd", 1.0, "xpnet / PyTorch autograd (faster)"),
        Comparison("xpnet-numpy-epochs", "torch-autograd", 1.0, "xpnet, 1 step per epoch / PyTorch autograd"),
    ]
    return Workload(
        NAME,
        f"Tiny XOR 2-2-1 sigmoid, MSE, batch 4, GD lr {LR}, {steps} steps, float64",
        impls,
        comps,
        steps=steps,
        meta={"sizes": [2, 2, 1], "lr": LR, "dtype": "float64", "steps": steps},
    )
