"""Wide: Adam on a width-2048 network, float32: 784 -> 2048 -> 2048 -> 10
(ReLU, softmax + cross-entropy), 6 minibatches of 512 rows in one epoch (no
shuffling), lr 1e-3.

5.8 million parameters: Adam's update reads and writes four arrays of that
size per step, so here the optimizer, not the matrix products, decides how
close a step comes to the machine's matrix-multiply limit (measured as in
W3, each round). Target (issue 14): xpnet on NumPy at >= 75% of the limit.
``xpnet-numpy-pure`` is xpnet with its in-place updates switched off (every
step builds new parameter and moment arrays, as before issue 14), paired in
the same rounds.

With a usable GPU (and without ``--no-gpu``), xpnet on CuPy (a fused update
kernel per parameter) and on CUDA torch, against PyTorch autograd +
``optim.Adam`` on CUDA.
"""

from __future__ import annotations

import math

import statistics
from typing import Any

import numpy as np

from .common import Settings, backend_of, hand_prepare, host_params, net_params, random_classes, relu_softmax_mlp
from .common import run_length, softmax_ce, torch_params, torch_tensor, torch_training
from .harness import Comparison, Impl, Workload, cupy_sync, cupy_usable, torch_devices
from .w3 import flops_per_step, matmul_limit

NAME = "Wide"
SEED = 2048
BATCH = 512
SIZES = [784, 2048, 2048, 10]
STEPS = 6
LR = 1e-3
TARGET = 0.75


def data(steps: int) -> tuple[np.ndarray, np.ndarray]:
    return random_classes(SEED, steps * BATCH, SIZES)


def xpnet_network(backend: Any = "numpy") -> Any:
    return relu_softmax_mlp(SIZES, SEED, backend)


def numpy_adam_loop(np: Any, X, Y, params, lr, steps, b1=0.9, b2=0.999, eps=1e-8):
    """Minibatch Adam by hand, in place as torch.optim does; ``np`` is NumPy or CuPy."""
    flat = [a for w, b in params for a in (w, b)]
    moments = [(np.zeros_like(a), np.zeros_like(a)) for a in flat]
    for t in range(1, steps + 1):
        Xb, Yb = X[(t - 1) * BATCH : t * BATCH], Y[(t - 1) * BATCH : t * BATCH]
        acts, pre = [Xb], []
        for i, (w, b) in enumerate(params):
            h = acts[-1] @ w + b
            pre.append(h)
            acts.append(np.maximum(h, 0) if i < len(params) - 1 else h)
        z = acts[-1] - acts[-1].max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        d = (p - Yb) / Xb.shape[0]
        grads = []
        for i in range(len(params) - 1, -1, -1):
            grads[:0] = [acts[i].T @ d, d.sum(axis=0)]
            if i:
                d = d @ params[i][0].T
                d[pre[i - 1] <= 0] = 0
        step_size, root = lr / (1 - b1**t), (1 - b2**t) ** 0.5
        for a, g, (m, v) in zip(flat, grads, moments):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            denom = np.sqrt(v)
            denom /= root
            denom += eps
            a -= step_size * m / denom
    return params


def loss_of(X: np.ndarray, y: np.ndarray, params: list[tuple[np.ndarray, np.ndarray]]) -> float:
    return softmax_ce(X[:BATCH], y[:BATCH], params)


def build(s: Settings, rss: bool = True) -> Workload:
    steps = s.steps(STEPS, 2)
    X, y = data(steps)
    params = host_params(xpnet_network())
    n_steps = run_length(steps, min(steps, 2))

    def xpnet_impl(key, label, backend, sync=None, device="cpu", pure=False):
        def prepare(warmup: bool):
            from xpnet import Adam

            net = xpnet_network(backend_of(backend))
            k = n_steps(warmup)
            Xb, yb = net.backend.asarray(X[: k * BATCH]), net.backend.asarray(y[: k * BATCH])

            def run():
                with _no_donation() if pure else _nothing():
                    net.fit(Xb, yb, loss="cross_entropy", optimizer=Adam(LR), epochs=1, batch_size=BATCH, shuffle=False)

                return lambda: {"final_loss": loss_of(X, y, net_params(net))}

            return run

        return Impl(key, label, prepare, sync or (lambda: None), device)

    impls = [
        xpnet_impl("xpnet-numpy", "xpnet (numpy)", "numpy"),
        xpnet_impl("xpnet-numpy-pure", "xpnet (numpy), updates not in place", "numpy", pure=True),
    ]

    def hand(xp: str) -> Any:
        return hand_prepare(numpy_adam_loop, params, X, y, LR, n_steps, lambda ps: loss_of(X, y, ps), xp)

    impls.append(Impl("numpy-hand", "hand-written NumPy (Adam in place)", hand("numpy")))

    for dev, sfx, sync in torch_devices(s.gpu):

        def autograd_prepare(warmup: bool, dev=dev):
            model, opt, loss_fn = torch_training(params, ["relu", "relu", "identity"], "float32", dev, "Adam", LR)
            Xt, yt = torch_tensor(X, dev), torch_tensor(y, dev)
            k = n_steps(warmup)

            def run():
                for i in range(k):
                    loss = loss_fn(model(Xt[i * BATCH : (i + 1) * BATCH]), yt[i * BATCH : (i + 1) * BATCH])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                loss.item()
                ps = torch_params(model)  # read in the clock, as the loss is
                return lambda: {"final_loss": loss_of(X, y, ps)}

            return run

        impls.append(Impl(f"torch-autograd{sfx}", f"PyTorch autograd + optim.Adam ({dev})", autograd_prepare,
                          sync, dev))  # fmt: skip
        impls.append(xpnet_impl(f"xpnet-torch{sfx}", f"xpnet (torch {dev})", ("torch", dev), sync, dev))
    if s.gpu and cupy_usable():
        impls.append(xpnet_impl("xpnet-cupy", "xpnet (cupy)", "cupy", cupy_sync, "cuda"))
        impls.append(Impl("cupy-hand", "hand-written CuPy (Adam in place)", hand("cupy"), cupy_sync, "cuda"))

    comps = [
        Comparison("xpnet-numpy", "numpy-hand", None, "xpnet / hand-written NumPy"),
        Comparison("xpnet-numpy", "xpnet-numpy-pure", None, "xpnet / xpnet with updates not in place"),
        Comparison("xpnet-numpy", "torch-autograd", None, "xpnet / PyTorch autograd"),
        Comparison("xpnet-torch", "torch-autograd", None, "xpnet on torch / PyTorch autograd"),
        Comparison("xpnet-torch-cuda", "torch-autograd-cuda", None, "xpnet on torch / PyTorch autograd (CUDA)"),
        Comparison("xpnet-cupy", "cupy-hand", None, "xpnet on CuPy / hand-written CuPy"),
    ]
    reps = 2 if s.quick else 5
    fl = flops_per_step(BATCH, SIZES)

    def extra(res: dict[str, Any]) -> None:
        limits = res["probes"]["matmul_limit_step_s"]
        limit_s = min(limits)
        res["matmul_limit"] = {"step_s": limit_s, "gflops": fl / limit_s / 1e9, "per_round_step_s": limits}
        targets = []
        for key, imp in res["impls"].items():
            step_s = imp["median_s"] / res["steps"]
            imp["extra"] = {"gflops": fl / step_s / 1e9}
            if imp["device"] == "cpu":
                fracs = [lim / (t / res["steps"]) for lim, t in zip(limits, imp["times_s"])]
                imp["extra"]["frac_matmul_limit"] = statistics.median(fracs)
        for key in ("xpnet-numpy", "xpnet-numpy-pure", "numpy-hand"):
            if key in res["impls"]:
                frac = res["impls"][key]["extra"]["frac_matmul_limit"]
                what = f"{res['impls'][key]['label']} at >= {TARGET:.0%} of the matmul limit"
                targets.append({"what": what if key == "xpnet-numpy" else f"(for reference) {what}",
                                "value": f"{frac * 100:.1f}%", "met": frac >= TARGET,
                                "distance": f"{(TARGET - frac) * 100:.1f} points short"})  # fmt: skip
        res["targets"] = targets
        res["notes"] = [
            f"Matrix-multiply limit (as in W3; best round): {limit_s * 1e3:.1f} ms/step = {fl / limit_s / 1e9:.1f} "
            f"GFLOP/s; per round: " + ", ".join(f"{x * 1e3:.1f}" for x in limits) + " ms. frac_matmul_limit: "
            "median over rounds of that round's limit / that round's step time."
        ]

    return Workload(
        NAME,
        f"Wide: Adam, {BATCH} x 784 -> 2048 -> 2048 -> 10 ReLU, softmax + CE, {steps} minibatches, float32",
        impls,
        comps,
        steps=steps,
        meta={"batch": BATCH, "sizes": SIZES, "lr": LR, "steps": steps, "gflop_per_step": fl / 1e9},
        extra=extra,
        probes={"matmul_limit_step_s": lambda: matmul_limit(reps, BATCH, SIZES)["step_s"]},
    )


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


class _no_donation:
    """xpnet's training step without donation: every update is pure (no
    array is large enough to be written in place)."""

    def __enter__(self) -> None:
        from xpnet._kernels import _mode

        self.context = _mode(in_place_min=math.inf)
        self.context.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.context.__exit__(*exc)
