"""W1, seed 001: batch 128, 1000 -> 100 (ReLU) -> 1, no bias, SSE, full-batch
gradient descent with lr 1e-6, 500 steps, float64.

The data and the N(0, 1) initial weights are those of the seed's loop
(``np.random.randn``), drawn from a seeded generator; every implementation
starts from xpnet's initial weights (``init="normal"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import Settings, backend_of, host_params, run_length, sklearn_fit, sklearn_inject, sklearn_plain_sgd
from .common import torch_sequential, torch_tensor
from .harness import Comparison, Impl, Workload, cupy_sync, cupy_usable, have, torch_devices

NAME = "W1"
SEED = 1
BATCH, N_IN, HIDDEN, N_OUT = 128, 1000, 100, 1
LR = 1e-6
STEPS = 500


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((BATCH, N_IN))
    T = rng.standard_normal((BATCH, N_OUT))
    return X, T


def xpnet_network(backend: Any = "numpy") -> Any:
    from xpnet import Dense, Network

    layers = [
        Dense(N_IN, HIDDEN, "relu", bias=False, init="normal"),
        Dense(HIDDEN, N_OUT, "identity", bias=False, init="normal"),
    ]
    return Network(layers, backend=backend, dtype="float64", seed=SEED)


# -- hand-written loops ------------------------------------------------------


def seed_loop(np: Any, input_values, output_values, weights1, weights2, learning_rate, num_loops):
    """The loop of seed 001, as printed (less the ``print``); ``np`` is NumPy
    or CuPy. It updates ``weights1``/``weights2`` in place."""
    loss = None
    for i in range(num_loops):
        activations = input_values.dot(weights1)
        relu_activations = np.maximum(activations, 0)
        predictions = relu_activations.dot(weights2)

        loss = np.sum(np.square(predictions - output_values))

        dloss_predictions = 2.0 * (predictions - output_values)
        dloss_weights2 = relu_activations.T.dot(dloss_predictions)
        dloss_relu_activations = dloss_predictions.dot(weights2.T)
        dloss_activations = dloss_relu_activations.copy()
        dloss_activations[activations < 0] = 0
        dloss_weights1 = input_values.T.dot(dloss_activations)

        weights1 -= learning_rate * dloss_weights1
        weights2 -= learning_rate * dloss_weights2
    return loss


def torch_loop(X, T, w1, w2, lr, steps):
    """The same loop in PyTorch tensors, without autograd (PyTorch's own
    "learning PyTorch with examples" loop is this one)."""
    loss = None
    for _ in range(steps):
        h = X.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)
        loss = (y_pred - T).pow(2).sum()
        grad_y_pred = 2.0 * (y_pred - T)
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h_relu = grad_y_pred.mm(w2.t())
        grad_h = grad_h_relu.clone()
        grad_h[h < 0] = 0
        grad_w1 = X.t().mm(grad_h)
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return loss


def sse(X: np.ndarray, T: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> float:
    p = np.maximum(X @ w1, 0) @ w2
    return float(np.sum((p - T) ** 2))


# -- implementations ----------------------------------------------------------


def build(s: Settings) -> Workload:
    X, T = data()
    params = host_params(xpnet_network())
    W1, W2 = params[0][0], params[1][0]
    steps = s.steps(STEPS, 5)
    n_steps = run_length(steps, min(steps, 20))

    impls: list[Impl] = []

    def xpnet_impl(key: str, label: str, backend: Any, sync=None, device="cpu") -> Impl:
        def prepare(warmup: bool):
            net = xpnet_network(backend_of(backend))
            Xb, Tb = net.backend.asarray(X), net.backend.asarray(T)
            k = n_steps(warmup)

            def run():
                net.fit(Xb, Tb, loss="sse", optimizer="sgd", lr=LR, epochs=k, batch_size=None)
                return lambda: {"final_sse": net.evaluate(Xb, Tb, "sse")}

            return run

        return Impl(key, label, prepare, sync or (lambda: None), device)

    impls.append(xpnet_impl("xpnet-numpy", "xpnet (numpy)", "numpy"))

    def numpy_prepare(warmup: bool):
        w1, w2 = W1.copy(), W2.copy()
        k = n_steps(warmup)

        def run():
            seed_loop(np, X, T, w1, w2, LR, k)
            return lambda: {"final_sse": sse(X, T, w1, w2)}

        return run

    impls.append(Impl("numpy-seed", "hand-written NumPy (seed 001 loop)", numpy_prepare))

    for dev, sfx, sync in torch_devices(s.gpu):
        impls.append(xpnet_impl(f"xpnet-torch{sfx}", f"xpnet (torch {dev})", ("torch", dev), sync, dev))

        def torch_prepare(warmup: bool, dev=dev):
            import torch

            Xt, Tt = torch_tensor(X, dev), torch_tensor(T, dev)
            w1, w2 = torch_tensor(W1.copy(), dev), torch_tensor(W2.copy(), dev)
            k = n_steps(warmup)

            def run():
                with torch.no_grad():
                    torch_loop(Xt, Tt, w1, w2, LR, k)
                return lambda: {"final_sse": sse(X, T, w1.cpu().numpy(), w2.cpu().numpy())}

            return run

        impls.append(Impl(f"torch-hand{sfx}", f"hand-written torch ({dev})", torch_prepare, sync, dev))

        def autograd_prepare(warmup: bool, dev=dev):
            import torch

            model = torch_sequential(params, ["relu", "identity"], "float64", dev)
            opt = torch.optim.SGD(model.parameters(), lr=LR)
            Xt, Tt = torch_tensor(X, dev), torch_tensor(T, dev)
            k = n_steps(warmup)

            def run():
                for _ in range(k):
                    loss = ((model(Xt) - Tt) ** 2).sum()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    loss.item()  # one host read per epoch, as fit's History (full batch: every step)
                return lambda: {
                    "final_sse": sse(X, T, model[0].weight.detach().cpu().numpy().T, model[2].weight.detach().cpu().numpy().T)
                }

            return run

        impls.append(Impl(f"torch-autograd{sfx}", f"PyTorch autograd + optim.SGD ({dev})", autograd_prepare, sync, dev))

    if have("sklearn"):

        def sklearn_prepare(warmup: bool):
            from sklearn.neural_network import MLPRegressor

            k = n_steps(warmup)
            # its loss is mean((y - p)**2) / 2, so d/dp = (p - y) / n: the SSE step needs lr * 2n
            model = MLPRegressor(**sklearn_plain_sgd(HIDDEN, LR * 2 * BATCH, BATCH, shuffle=False, random_state=0))
            y = T.ravel()
            sklearn_inject(model, X, y, params, k)

            def run():
                sklearn_fit(model, X, y)
                return lambda: {"final_sse": float(np.sum((model.predict(X) - y) ** 2))}

            return run

        impls.append(
            Impl(
                "sklearn",
                "scikit-learn MLPRegressor (sgd)",
                sklearn_prepare,
                note="cannot drop biases: they start at 0 and train; loss mean/2, lr scaled by 2n",
            )
        )

    if s.gpu and cupy_usable():

        impls.append(xpnet_impl("xpnet-cupy", "xpnet (cupy)", "cupy", cupy_sync, "cuda"))

        def cupy_prepare(warmup: bool):
            import cupy

            Xc, Tc = cupy.asarray(X), cupy.asarray(T)
            w1, w2 = cupy.asarray(W1), cupy.asarray(W2)
            k = n_steps(warmup)

            def run():
                seed_loop(cupy, Xc, Tc, w1, w2, LR, k)
                return lambda: {"final_sse": sse(X, T, w1.get(), w2.get())}

            return run

        impls.append(Impl("cupy-seed", "hand-written CuPy (seed 001 loop)", cupy_prepare, cupy_sync, "cuda"))

    comps = [
        Comparison("xpnet-numpy", "numpy-seed", 1.05, "xpnet / hand-written NumPy"),
        Comparison("xpnet-torch", "torch-hand", 1.05, "xpnet on torch / hand-written torch"),
        Comparison("xpnet-numpy", "torch-autograd", 1.0, "xpnet / PyTorch autograd (not slower)"),
        Comparison("xpnet-numpy", "sklearn", None, "xpnet / scikit-learn"),
        Comparison("xpnet-torch-cuda", "torch-hand-cuda", 1.05, "xpnet on torch / hand-written torch (CUDA)"),
        Comparison("xpnet-cupy", "cupy-seed", 1.05, "xpnet on CuPy / hand-written CuPy"),
    ]
    return Workload(
        NAME,
        "W1 seed 001: 128 x 1000 -> 100 ReLU -> 1, no bias, SSE, full-batch GD lr 1e-6, float64",
        impls,
        comps,
        steps=steps,
        meta={"batch": BATCH, "sizes": [N_IN, HIDDEN, N_OUT], "lr": LR, "dtype": "float64", "steps": steps},
    )
