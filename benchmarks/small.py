"""Small: the launch-bound size of issue 14, 64 -> 128 -> 10 (ReLU, softmax +
cross-entropy), batch 32, plain SGD lr 0.05, float32, 1000 minibatches in one
epoch (no shuffling), on random data.

At this size every array operation costs its dispatch (a kernel launch on a
GPU) and the arithmetic is nothing, so the rows compare ways of running the
same step: eager (``fit(compile=False)``: every operation as written) and
compiled (``compile=True``: one ``jax.jit`` program on JAX, one CUDA graph
on torch with CUDA, the same graph or fused update kernels on CuPy), against hand-written
NumPy and PyTorch autograd. Targets (issue 14, on a GPU): compiled torch and
JAX >= 3x faster than PyTorch autograd eager; compiled CuPy >= 1.5x faster
than eager CuPy; xpnet on JAX <= 1.2x xpnet on CuPy (the ``xpnet train
--backend jax`` target). On a CPU the JAX rows show what ``jax.jit`` buys
there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import Settings, backend_of, compiled, hand_prepare, host_params, net_params, random_classes
from .common import relu_softmax_mlp, run_length, softmax_ce, torch_params, torch_summed_steps, torch_tensor
from .common import torch_training
from .harness import Comparison, Impl, Workload, cupy_sync, cupy_usable, have, jax_gpu_usable, torch_devices

NAME = "Small"
SEED = 64
SIZES = [64, 128, 10]
BATCH = 32
LR = 0.05
STEPS = 1000


def data(steps: int) -> tuple[np.ndarray, np.ndarray]:
    return random_classes(SEED, steps * BATCH, SIZES, normal=True)


def xpnet_network(backend: Any = "numpy") -> Any:
    return relu_softmax_mlp(SIZES, SEED, backend)


def numpy_loop(xp: Any, X, Y, params, lr, steps):
    """The hand-written step (as W3's), minibatch by minibatch; ``xp`` is NumPy or CuPy."""
    (W1, b1), (W2, b2) = params
    total = None
    for k in range(steps):
        x, t = X[k * BATCH : (k + 1) * BATCH], Y[k * BATCH : (k + 1) * BATCH]
        h = x @ W1 + b1
        a = xp.maximum(h, 0)
        z = a @ W2 + b2
        z = z - z.max(axis=1, keepdims=True)
        p = xp.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -xp.sum(t * xp.log(xp.clip(p, 1.1920929e-07, 1.0))) / BATCH
        total = loss if total is None else total + loss
        d2 = (p - t) / BATCH
        gW2, gb2 = a.T @ d2, d2.sum(axis=0)
        d1 = d2 @ W2.T
        d1[h <= 0] = 0
        gW1, gb1 = x.T @ d1, d1.sum(axis=0)
        W1 -= lr * gW1
        b1 -= lr * gb1
        W2 -= lr * gW2
        b2 -= lr * gb2
    return float(total) / steps  # one host read per epoch, as fit


def loss_of(X: np.ndarray, y: np.ndarray, params: list[tuple[np.ndarray, np.ndarray]]) -> float:
    return softmax_ce(X[:1024], y[:1024], params)


def xpnet_impl(key: str, label: str, backend: Any, X, y, n_steps, compile: Any, sync=None, device="cpu") -> Impl:
    """A row timing ``net.fit`` for one epoch of minibatches, data on the device first."""

    def prepare(warmup: bool):
        net = xpnet_network(backend_of(backend))
        # jax.jit's program is specialised to the data's shape: its warm-up takes the timed rows
        k = n_steps(warmup and (net.backend.name != "jax" or compile is False))
        Xb, yb = net.backend.asarray(X[: k * BATCH]), net.backend.asarray(y[: k * BATCH])

        def run():
            net.fit(Xb, yb, loss="cross_entropy", optimizer="sgd", lr=LR, epochs=1, batch_size=BATCH, shuffle=False,
                    **compiled(compile))  # fmt: skip
            return lambda: {"final_loss": loss_of(X, y, net_params(net))}

        return run

    return Impl(key, label, prepare, sync or (lambda: None), device)


def build(s: Settings, rss: bool = True) -> Workload:
    steps = s.steps(STEPS, 20)
    X, y = data(steps)
    params = host_params(xpnet_network())
    n_steps = run_length(steps, min(steps, 50))

    def hand(xp: str) -> Any:
        return hand_prepare(numpy_loop, params, X, y, LR, n_steps, lambda ps: loss_of(X, y, ps), xp)

    impls = [xpnet_impl("xpnet-numpy", "xpnet (numpy)", "numpy", X, y, n_steps, "auto")]
    impls.append(Impl("numpy-hand", "hand-written NumPy", hand("numpy")))
    if have("jax"):
        dev = "cuda" if s.gpu and jax_gpu_usable() else "cpu"
        sfx = "" if dev == "cpu" else "-gpu"
        impls += [
            xpnet_impl(f"xpnet-jax{sfx}", f"xpnet (jax {dev}), compiled: jax.jit", "jax", X, y, n_steps, True,
                       device=dev),
            xpnet_impl(f"xpnet-jax{sfx}-eager", f"xpnet (jax {dev}), eager", "jax", X, y, n_steps, False, device=dev),
        ]  # fmt: skip
    for dev, sfx, sync in torch_devices(s.gpu):

        def autograd_prepare(warmup: bool, dev=dev):
            model, opt, loss_fn = torch_training(params, ["relu", "identity"], "float32", dev, "SGD", LR)
            Xt, yt = torch_tensor(X, dev), torch_tensor(y, dev)
            k = n_steps(warmup)

            def run():
                batches = ((Xt[i * BATCH : (i + 1) * BATCH], yt[i * BATCH : (i + 1) * BATCH]) for i in range(k))
                torch_summed_steps(model, opt, loss_fn, batches)
                ps = torch_params(model)  # read in the clock, as the loss is
                return lambda: {"final_loss": loss_of(X, y, ps)}

            return run

        impls.append(Impl(f"torch-autograd{sfx}", f"PyTorch autograd + optim.SGD ({dev})", autograd_prepare,
                          sync, dev))  # fmt: skip
        impls.append(xpnet_impl(f"xpnet-torch{sfx}", f"xpnet (torch {dev}), eager", ("torch", dev), X, y,
                                n_steps, False, sync, dev))  # fmt: skip
        if dev == "cuda":
            impls.append(xpnet_impl("xpnet-torch-cuda-compiled", "xpnet (torch cuda), compiled: CUDA graph",
                                    ("torch", dev), X, y, n_steps, True, sync, dev))  # fmt: skip
    if s.gpu and cupy_usable():
        impls += [
            xpnet_impl("xpnet-cupy", "xpnet (cupy), eager", "cupy", X, y, n_steps, False, cupy_sync, "cuda"),
            xpnet_impl("xpnet-cupy-compiled", "xpnet (cupy), compiled: torch CUDA graph (DLPack) or fused updates", "cupy", X, y, n_steps,
                       True, cupy_sync, "cuda"),
        ]  # fmt: skip
        impls.append(Impl("cupy-hand", "hand-written CuPy", hand("cupy"), cupy_sync, "cuda"))

    third = 1 / 3
    comps = [
        Comparison("xpnet-numpy", "numpy-hand", None, "xpnet / hand-written NumPy"),
        Comparison("xpnet-numpy", "torch-autograd", None, "xpnet / PyTorch autograd (cpu)"),
        Comparison("xpnet-jax", "xpnet-jax-eager", None, "xpnet on JAX (cpu): jax.jit / eager"),
        Comparison("xpnet-torch-cuda-compiled", "torch-autograd-cuda", third,
                   "xpnet on torch, CUDA graph / PyTorch autograd (3x faster)"),
        Comparison("xpnet-jax-gpu", "torch-autograd-cuda", third, "xpnet on JAX, jax.jit / PyTorch autograd (3x faster)"),
        Comparison("xpnet-cupy-compiled", "xpnet-cupy", 1 / 1.5, "xpnet on CuPy: compiled / eager (1.5x faster)"),
        Comparison("xpnet-jax-gpu", "xpnet-cupy-compiled", 1.2, "xpnet on JAX / xpnet on CuPy (`xpnet train`)"),
        Comparison("xpnet-cupy", "cupy-hand", None, "xpnet on CuPy, eager / hand-written CuPy"),
        Comparison("xpnet-torch-cuda", "torch-autograd-cuda", None, "xpnet on torch, eager / PyTorch autograd (CUDA)"),
    ]  # fmt: skip
    return Workload(
        NAME,
        f"Small: {BATCH} x {' -> '.join(map(str, SIZES))} ReLU, softmax + CE, SGD, {steps} minibatches, float32",
        impls,
        comps,
        steps=steps,
        meta={"batch": BATCH, "sizes": SIZES, "lr": LR, "steps": steps},
    )
