"""Tiny: XOR, 2 -> 2 -> 1 with sigmoid on both layers, MSE, batch 4 (all of
XOR), plain gradient descent lr 2.0, 10000 steps, float64. Per-step
microseconds: here the arrays are nothing and the Python around them is all.

xpnet runs twice: ``fit`` over one epoch of 10000 batches of the four rows
(``X`` tiled, no shuffle: the steady per-step cost, one host read in all),
and ``fit(epochs=10000)`` on the four rows (every step is then also an epoch
end: its figures are held on the device and read, with the NaN guard, every
64 epochs; issue #11's target for this row is 1.2x hand-written NumPy).
On NumPy both run the recorded step (``compile="auto"``, xpnet/_tape.py); a
third row runs the first eagerly (``compile=False``) for comparison.

With a usable GPU (and without ``--no-gpu``), the same rows run on CuPy and
CUDA torch against hand-written CuPy and PyTorch autograd on that GPU: at
this size they time kernel launches and host syncs, not arithmetic.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .common import Settings, backend_of, compiled, host_params, net_params, run_length, torch_params
from .common import torch_summed_steps, torch_tensor, torch_training
from .harness import Comparison, Impl, Workload, cupy_sync, cupy_usable, have, jax_gpu_usable, torch_cuda_usable
from .harness import torch_sync_for

NAME = "Tiny"
SEED = 4
LR = 2.0
STEPS = 10000
#: The torch device of the GPU rows.
TORCH_GPU = "cuda"


def data() -> tuple[np.ndarray, np.ndarray]:
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    return X, y


def xpnet_network(backend: Any = "numpy") -> Any:
    from xpnet import MLP

    return MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid", backend=backend, dtype="float64", seed=SEED)


def numpy_loop(X, T, W1, b1, W2, b2, lr, steps, xp=np):
    """Textbook XOR backprop (in-place updates, as in the seeds); ``xp=cupy`` on a GPU."""
    n = T.size
    for _ in range(steps):
        a1 = 1.0 / (1.0 + xp.exp(-(X @ W1 + b1)))
        y = 1.0 / (1.0 + xp.exp(-(a1 @ W2 + b2)))
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


def torch_autograd_prepare(X, T, params, n_steps, device: Any):
    """The ``prepare`` of the PyTorch autograd + ``optim.SGD`` row on ``device``
    (the loss is summed on the device and read once; the weights are read by
    ``finish``, after the clock)."""

    def prepare(warmup: bool):
        model, opt, loss_fn = torch_training(params, ["sigmoid", "sigmoid"], "float64", device, "SGD", LR, "MSELoss")
        Xt, Tt = torch_tensor(X, device), torch_tensor(T, device)
        k = n_steps(warmup)

        def run():
            torch_summed_steps(model, opt, loss_fn, itertools.repeat((Xt, Tt), k))
            return lambda: {"final_mse": mse(X, T, torch_params(model))}

        return run

    return prepare


def build(s: Settings) -> Workload:
    X, T = data()
    params = host_params(xpnet_network())
    steps = s.steps(STEPS, 20)
    n_steps = run_length(steps, min(steps, 500))

    def xpnet_finish(net):
        return lambda: {"final_mse": mse(X, T, net_params(net))}

    def xpnet_steps_prepare(warmup: bool, backend: Any = "numpy", compile: Any = "auto"):
        net = xpnet_network(backend_of(backend))
        k = n_steps(warmup and (backend != "jax" or compile is False))  # jax.jit: the timed data's shape
        Xk, Tk = np.tile(X, (k, 1)), np.tile(T, (k, 1))
        if backend != "numpy":  # the data move to the device before the clock starts
            Xk, Tk = net.backend.asarray(Xk), net.backend.asarray(Tk)

        def run():
            net.fit(Xk, Tk, loss="mse", optimizer="sgd", lr=LR, epochs=1, batch_size=4, shuffle=False, **compiled(compile))
            return xpnet_finish(net)

        return run

    def xpnet_epochs_prepare(warmup: bool, backend: Any = "numpy", compile: Any = "auto"):
        net = xpnet_network(backend_of(backend))
        k = n_steps(warmup)
        Xd, Td = (X, T) if backend == "numpy" else (net.backend.asarray(X), net.backend.asarray(T))

        def run():
            net.fit(Xd, Td, loss="mse", optimizer="sgd", lr=LR, epochs=k, batch_size=None, **compiled(compile))
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
        Impl("xpnet-numpy-eager", "xpnet (numpy), eager (compile=False), fit: 1 epoch of 10000 batches",
             lambda w: xpnet_steps_prepare(w, compile=False)),
        Impl("numpy-hand", "hand-written NumPy", numpy_prepare),
    ]

    if have("torch"):
        autograd_prepare = torch_autograd_prepare(X, T, params, n_steps, "cpu")
        impls.append(Impl("torch-autograd", "PyTorch autograd + optim.SGD (cpu)", autograd_prepare))

    if have("jax"):  # float64 on JAX needs its 64-bit mode, switched on here for this process
        import jax

        jax.config.update("jax_enable_x64", True)
        dev = "cuda" if s.gpu and jax_gpu_usable() else "cpu"
        sfx = "" if dev == "cpu" else "-gpu"
        impls.append(Impl(f"xpnet-jax{sfx}", f"xpnet (jax {dev}), fit: 1 epoch of {steps} batches, jax.jit",
                          lambda w: xpnet_steps_prepare(w, "jax"), device=dev))  # fmt: skip
    if s.gpu:
        gpu_impls, gpu_comps = _gpu_rows(X, T, params, n_steps, xpnet_steps_prepare, xpnet_epochs_prepare)
        impls += gpu_impls

    comps = [
        Comparison("xpnet-numpy", "numpy-hand", 1.3, "xpnet / hand-written NumPy"),
        Comparison("xpnet-numpy-epochs", "numpy-hand", 1.2, "xpnet, 1 step per epoch / hand-written NumPy"),
        Comparison("xpnet-numpy", "torch-autograd", 1.0, "xpnet / PyTorch autograd (faster)"),
        Comparison("xpnet-numpy-epochs", "torch-autograd", 1.0, "xpnet, 1 step per epoch / PyTorch autograd"),
        Comparison("xpnet-numpy-eager", "numpy-hand", None, "xpnet, eager (no recorded step) / hand-written NumPy"),
        Comparison("xpnet-jax", "xpnet-numpy", None, "xpnet on JAX (cpu), jax.jit / xpnet on NumPy"),
    ]
    if s.gpu:
        comps += gpu_comps
    return Workload(
        NAME,
        f"Tiny XOR 2-2-1 sigmoid, MSE, batch 4, GD lr {LR}, {steps} steps, float64",
        impls,
        comps,
        steps=steps,
        meta={"sizes": [2, 2, 1], "lr": LR, "dtype": "float64", "steps": steps},
    )


def _gpu_rows(X, T, params, n_steps, steps_prepare, epochs_prepare) -> tuple[list[Impl], list[Comparison]]:
    """xpnet's two Tiny rows on CuPy and on CUDA torch, and hand-written
    baselines on the same GPU (no targets: GPU speed is issue #12)."""
    impls: list[Impl] = []
    comps: list[Comparison] = []
    if cupy_usable():

        def cupy_prepare(warmup: bool):
            import cupy

            (W1, b1), (W2, b2) = [(cupy.asarray(w), cupy.asarray(b)) for w, b in params]
            Xc, Tc = cupy.asarray(X), cupy.asarray(T)
            k = n_steps(warmup)

            def run():
                numpy_loop(Xc, Tc, W1, b1, W2, b2, LR, k, xp=cupy)
                return lambda: {"final_mse": mse(X, T, [(W1.get(), b1.get()), (W2.get(), b2.get())])}

            return run

        impls += [
            Impl("xpnet-cupy", "xpnet (cupy), eager, fit: 1 epoch of 10000 batches",
                 lambda w: steps_prepare(w, "cupy", False), cupy_sync, "cuda"),
            Impl("xpnet-cupy-compiled", "xpnet (cupy), compiled, fit: 1 epoch of 10000 batches",
                 lambda w: steps_prepare(w, "cupy"), cupy_sync, "cuda"),
            Impl("xpnet-cupy-epochs", "xpnet (cupy), fit: 10000 epochs of 1 batch",
                 lambda w: epochs_prepare(w, "cupy"), cupy_sync, "cuda"),
            Impl("cupy-hand", "hand-written CuPy", cupy_prepare, cupy_sync, "cuda"),
        ]  # fmt: skip
        comps += [
            Comparison("xpnet-cupy", "cupy-hand", None, "xpnet, eager / hand-written CuPy"),
            Comparison("xpnet-cupy-compiled", "cupy-hand", None, "xpnet, fused updates / hand-written CuPy"),
            Comparison("xpnet-cupy-epochs", "cupy-hand", None, "xpnet, 1 step per epoch / hand-written CuPy"),
        ]
    if have("torch") and torch_cuda_usable():
        dev = TORCH_GPU
        sync = torch_sync_for(dev)

        autograd_prepare = torch_autograd_prepare(X, T, params, n_steps, dev)
        cuda = ("torch", dev)
        impls += [
            Impl("xpnet-torch-cuda", "xpnet (torch cuda), eager, fit: 1 epoch of 10000 batches",
                 lambda w: steps_prepare(w, cuda, False), sync, "cuda"),
            Impl("xpnet-torch-cuda-compiled", "xpnet (torch cuda), CUDA graph, fit: 1 epoch of 10000 batches",
                 lambda w: steps_prepare(w, cuda), sync, "cuda"),
            Impl("xpnet-torch-cuda-epochs", "xpnet (torch cuda), fit: 10000 epochs of 1 batch",
                 lambda w: epochs_prepare(w, cuda), sync, "cuda"),
            Impl("torch-autograd-cuda", "PyTorch autograd + optim.SGD (cuda)", autograd_prepare, sync, "cuda"),
        ]  # fmt: skip
        comps += [
            Comparison("xpnet-torch-cuda", "torch-autograd-cuda", None, "xpnet on torch / PyTorch autograd (CUDA)"),
            Comparison("xpnet-torch-cuda-compiled", "torch-autograd-cuda", None,
                       "xpnet on torch, CUDA graph / PyTorch autograd (CUDA)"),
            Comparison("xpnet-torch-cuda-epochs", "torch-autograd-cuda", None,
                       "xpnet on torch, 1 step per epoch / PyTorch autograd (CUDA)"),
        ]  # fmt: skip
    return impls, comps
