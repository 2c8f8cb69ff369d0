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

from .common import Settings, host_params, torch_sequential, torch_tensor
from .harness import Comparison, Impl, Workload, cupy_sync, cupy_usable, have, torch_cuda_usable, torch_sync_for
from .w3 import flops_per_step, matmul_limit

NAME = "Wide"
SEED = 2048
BATCH = 512
SIZES = [784, 2048, 2048, 10]
STEPS = 6
LR = 1e-3
TARGET = 0.75


def data(steps: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    X = rng.random((steps * BATCH, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], steps * BATCH).astype(np.int64)
    return X, y


def xpnet_network(backend: Any = "numpy") -> Any:
    from xpnet import MLP

    return MLP(SIZES, activation="relu", output_activation="softmax", backend=backend, dtype="float32", seed=SEED)


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
    a = X[:BATCH].astype(np.float64)
    for i, (w, b) in enumerate(params):
        a = a @ w + b
        if i < len(params) - 1:
            a = np.maximum(a, 0)
    a = a - a.max(axis=1, keepdims=True)
    logp = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
    return float(-np.mean(logp[np.arange(BATCH), y[:BATCH]]))


def build(s: Settings, rss: bool = True) -> Workload:
    steps = s.steps(STEPS, 2)
    X, y = data(steps)
    Y = np.eye(SIZES[-1], dtype=np.float32)[y]
    params = host_params(xpnet_network())

    def n_steps(warmup: bool) -> int:
        return min(steps, 2) if warmup else steps

    def xpnet_impl(key, label, backend, sync=None, device="cpu", pure=False):
        def prepare(warmup: bool):
            from xpnet import Adam

            net = xpnet_network(_backend(backend))
            k = n_steps(warmup)
            Xb, yb = net.backend.asarray(X[: k * BATCH]), net.backend.asarray(y[: k * BATCH])

            def run():
                with _no_donation() if pure else _nothing():
                    net.fit(Xb, yb, loss="cross_entropy", optimizer=Adam(LR), epochs=1, batch_size=BATCH, shuffle=False)

                def finish():
                    from xpnet import to_numpy

                    return {"final_loss": loss_of(X, y, [(to_numpy(l.weights), to_numpy(l.bias)) for l in net.layers])}

                return finish

            return run

        return Impl(key, label, prepare, sync or (lambda: None), device)

    impls = [
        xpnet_impl("xpnet-numpy", "xpnet (numpy)", "numpy"),
        xpnet_impl("xpnet-numpy-pure", "xpnet (numpy), updates not in place", "numpy", pure=True),
    ]

    def hand_prepare(warmup: bool, xp: Any = np, finish_host=lambda a: a):
        ps = [(xp.asarray(w.copy()), xp.asarray(b.copy())) for w, b in params]
        k = n_steps(warmup)
        Xd, Yd = xp.asarray(X), xp.asarray(Y)

        def run():
            numpy_adam_loop(xp, Xd, Yd, ps, LR, k)
            return lambda: {"final_loss": loss_of(X, y, [(finish_host(w), finish_host(b)) for w, b in ps])}

        return run

    impls.append(Impl("numpy-hand", "hand-written NumPy (Adam in place)", hand_prepare))

    if have("torch"):
        devs = ["cpu"] + (["cuda"] if s.gpu and torch_cuda_usable() else [])
        for dev in devs:
            sfx = "" if dev == "cpu" else "-cuda"
            sync = torch_sync_for(dev)

            def autograd_prepare(warmup: bool, dev=dev):
                import torch

                model = torch_sequential(params, ["relu", "relu", "identity"], "float32", dev)
                opt = torch.optim.Adam(model.parameters(), lr=LR)
                Xt, yt = torch_tensor(X, dev), torch_tensor(y, dev)
                loss_fn = torch.nn.CrossEntropyLoss()
                k = n_steps(warmup)

                def run():
                    for i in range(k):
                        loss = loss_fn(model(Xt[i * BATCH : (i + 1) * BATCH]), yt[i * BATCH : (i + 1) * BATCH])
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                    loss.item()
                    lins = [m for m in model if isinstance(m, torch.nn.Linear)]
                    ps = [(m.weight.detach().cpu().numpy().T, m.bias.detach().cpu().numpy()) for m in lins]
                    return lambda: {"final_loss": loss_of(X, y, ps)}

                return run

            impls.append(Impl(f"torch-autograd{sfx}", f"PyTorch autograd + optim.Adam ({dev})", autograd_prepare,
                              sync, dev))  # fmt: skip
            impls.append(xpnet_impl(f"xpnet-torch{sfx}", f"xpnet (torch {dev})", ("torch", dev), sync, dev))
    if s.gpu and cupy_usable():
        impls.append(xpnet_impl("xpnet-cupy", "xpnet (cupy)", "cupy", cupy_sync, "cuda"))

        def cupy_prepare(warmup: bool):
            import cupy

            return hand_prepare(warmup, cupy, lambda a: a.get())

        impls.append(Impl("cupy-hand", "hand-written CuPy (Adam in place)", cupy_prepare, cupy_sync, "cuda"))

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
        from xpnet._compile import _mode

        self.context = _mode(in_place_min=math.inf)
        self.context.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.context.__exit__(*exc)


def _backend(spec: Any) -> Any:
    from xpnet import get_backend

    return get_backend(*spec) if isinstance(spec, tuple) else get_backend(spec)
