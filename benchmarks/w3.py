"""W3, throughput: float32, batch 1024, 784 -> 1024 -> 1024 -> 10 (ReLU,
softmax + cross-entropy), 50 full-batch SGD steps (lr 0.01).

Reports steps/s, GFLOP/s (matrix products only: 2*m*k*n per product, three
per layer less the first layer's input gradient) and the fraction of the
machine's matrix-multiply limit, measured in the same run: for every product
of one step, the best time of ``numpy.matmul`` at that shape over several
layouts (the transposed views the step uses, contiguous copies, ``out=``),
summed. Peak RSS of each CPU implementation is measured in its own
subprocess (``python -m benchmarks.rss``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from .common import Settings, backend_of, compiled, hand_prepare, host_params, net_params, random_classes
from .common import relu_softmax_mlp, run_length, softmax_ce, torch_full_batch_steps, torch_params, torch_tensor
from .common import torch_training
from .harness import Comparison, Impl, Workload, cupy_sync, cupy_usable, have, jax_gpu_usable, torch_devices

NAME = "W3"
SEED = 3
BATCH = 1024
SIZES = [784, 1024, 1024, 10]
LR = 0.01
STEPS = 50
DTYPE = "float32"


def data() -> tuple[np.ndarray, np.ndarray]:
    return random_classes(SEED, BATCH, SIZES)


def xpnet_network(backend: Any = "numpy") -> Any:
    return relu_softmax_mlp(SIZES, SEED, backend, DTYPE)


def gemms(batch: int = BATCH, sizes: list[int] = SIZES) -> list[tuple[str, int, int, int]]:
    """The matrix products of one training step: ``(what, m, k, n)``."""
    out = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        out.append((f"fwd X{i}@W{i}", batch, a, b))
        out.append((f"dW{i}=X{i}.T@dV{i}", a, batch, b))
        if i > 0:
            out.append((f"dX{i}=dV{i}@W{i}.T", batch, b, a))
    return out


def flops_per_step(batch: int = BATCH, sizes: list[int] = SIZES) -> int:
    return sum(2 * m * k * n for _, m, k, n in gemms(batch, sizes))


def matmul_limit(reps: int, batch: int = BATCH, sizes: list[int] = SIZES) -> dict[str, Any]:
    """Best NumPy matmul time of each product of a step, over layouts."""
    rng = np.random.default_rng(0)
    per = []
    total = 0.0
    for what, m, k, n in gemms(batch, sizes):
        # the step's own layouts: forward A (m,k) @ W (k,n); dW = X.T @ dV; dX = dV @ W.T
        if what.startswith("fwd"):
            A, B = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
        elif what.startswith("dW"):
            A, B = rng.random((k, m), dtype=np.float32).T, rng.random((k, n), dtype=np.float32)
        else:
            A, B = rng.random((m, k), dtype=np.float32), rng.random((n, k), dtype=np.float32).T
        Ac, Bc = np.ascontiguousarray(A), np.ascontiguousarray(B)
        out = np.empty((m, n), dtype=np.float32)
        variants = {
            "as used": lambda A=A, B=B: A @ B,
            "contiguous": lambda A=Ac, B=Bc: A @ B,
            "out=": lambda A=A, B=B, out=out: np.matmul(A, B, out=out),
        }
        best = float("inf")
        for f in variants.values():
            f()
        for _ in range(reps):
            for f in variants.values():
                t0 = time.perf_counter()
                f()
                best = min(best, time.perf_counter() - t0)
        fl = 2 * m * k * n
        per.append({"what": what, "m": m, "k": k, "n": n, "best_s": best, "gflops": fl / best / 1e9})
        total += best
    return {"products": per, "step_s": total, "gflops": flops_per_step(batch, sizes) / total / 1e9}


def numpy_loop(np: Any, X, Y, params, lr, steps):
    """Full-batch SGD for ReLU, ReLU, softmax + cross-entropy, by hand
    (in-place updates as in the seed); ``np`` is NumPy or CuPy."""
    (W1, b1), (W2, b2), (W3, b3) = params
    n = X.shape[0]
    eps = np.finfo(X.dtype).eps
    for _ in range(steps):
        h1 = X @ W1 + b1
        a1 = np.maximum(h1, 0)
        h2 = a1 @ W2 + b2
        a2 = np.maximum(h2, 0)
        z = a2 @ W3 + b3
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.sum(Y * np.log(np.clip(p, eps, 1.0))) / n
        d3 = (p - Y) / n
        gW3, gb3 = a2.T @ d3, d3.sum(axis=0)
        d2 = d3 @ W3.T
        d2[h2 <= 0] = 0
        gW2, gb2 = a1.T @ d2, d2.sum(axis=0)
        d1 = d2 @ W2.T
        d1[h1 <= 0] = 0
        gW1, gb1 = X.T @ d1, d1.sum(axis=0)
        W1 -= lr * gW1
        b1 -= lr * gb1
        W2 -= lr * gW2
        b2 -= lr * gb2
        W3 -= lr * gW3
        b3 -= lr * gb3
        float(loss)  # one host read per epoch, as fit (full batch: every step)
    return params


def torch_loop(X, Y, params, lr, steps):
    """The same loop in torch tensors, without autograd."""
    (W1, b1), (W2, b2), (W3, b3) = params
    n = X.shape[0]
    for _ in range(steps):
        h1 = X @ W1 + b1
        a1 = h1.clamp(min=0)
        h2 = a1 @ W2 + b2
        a2 = h2.clamp(min=0)
        z = a2 @ W3 + b3
        p = z.softmax(dim=1)
        loss = -(Y * p.clamp(min=1.1920929e-07).log()).sum() / n
        d3 = (p - Y) / n
        gW3, gb3 = a2.t() @ d3, d3.sum(0)
        d2 = d3 @ W3.t()
        d2[h2 <= 0] = 0
        gW2, gb2 = a1.t() @ d2, d2.sum(0)
        d1 = d2 @ W2.t()
        d1[h1 <= 0] = 0
        gW1, gb1 = X.t() @ d1, d1.sum(0)
        W1 -= lr * gW1
        b1 -= lr * gb1
        W2 -= lr * gW2
        b2 -= lr * gb2
        W3 -= lr * gW3
        b3 -= lr * gb3
        loss.item()
    return params


loss_of = softmax_ce


def build(s: Settings, rss: bool = True) -> Workload:
    X, y = data()
    Y = np.eye(SIZES[-1], dtype=np.float32)[y]
    params = host_params(xpnet_network())
    steps = s.steps(STEPS, 2)
    n_steps = run_length(steps, min(steps, 3))

    impls: list[Impl] = []

    def xpnet_impl(key, label, backend, sync=None, device="cpu", compile="auto"):
        def prepare(warmup: bool):
            net = xpnet_network(backend_of(backend))
            Xb, yb = net.backend.asarray(X), net.backend.asarray(y)
            k = n_steps(warmup)

            def run():
                net.fit(Xb, yb, loss="cross_entropy", optimizer="sgd", lr=LR, epochs=k, batch_size=None,
                        **compiled(compile))  # fmt: skip
                return lambda: {"final_loss": loss_of(X, y, net_params(net))}

            return run

        return Impl(key, label, prepare, sync or (lambda: None), device)

    def hand(xp: str) -> Any:
        return hand_prepare(numpy_loop, params, X, y, LR, n_steps, lambda ps: loss_of(X, y, ps), xp)

    impls.append(xpnet_impl("xpnet-numpy", "xpnet (numpy)", "numpy"))
    impls.append(Impl("numpy-hand", "hand-written NumPy", hand("numpy")))

    for dev, sfx, sync in torch_devices(s.gpu):

        def autograd_prepare(warmup: bool, dev=dev):
            model, opt, loss_fn = torch_training(params, ["relu", "relu", "identity"], DTYPE, dev, "SGD", LR)
            Xt, yt = torch_tensor(X, dev), torch_tensor(y, dev)
            k = n_steps(warmup)

            def run():
                torch_full_batch_steps(model, opt, loss_fn, Xt, yt, k)
                return lambda: {"final_loss": loss_of(X, y, torch_params(model))}

            return run

        impls.append(Impl(f"torch-autograd{sfx}", f"PyTorch autograd + optim.SGD ({dev})", autograd_prepare, sync, dev))
        if dev == "cpu":
            impls.append(xpnet_impl("xpnet-torch", "xpnet (torch cpu)", ("torch", dev), sync, dev))
        else:  # eager (every operation as written) and compiled (a CUDA graph)
            impls.append(xpnet_impl("xpnet-torch-cuda", "xpnet (torch cuda), eager", ("torch", dev), sync, dev,
                                    compile=False))  # fmt: skip
            impls.append(xpnet_impl("xpnet-torch-cuda-compiled", "xpnet (torch cuda), compiled: CUDA graph",
                                    ("torch", dev), sync, dev))  # fmt: skip

        def torch_prepare(warmup: bool, dev=dev):
            import torch

            ps = [(torch_tensor(w.copy(), dev), torch_tensor(b.copy(), dev)) for w, b in params]
            Xt, Yt = torch_tensor(X, dev), torch_tensor(Y, dev)
            k = n_steps(warmup)

            def run():
                with torch.no_grad():
                    torch_loop(Xt, Yt, ps, LR, k)
                return lambda: {"final_loss": loss_of(X, y, [(w.cpu().numpy(), b.cpu().numpy()) for w, b in ps])}

            return run

        impls.append(Impl(f"torch-hand{sfx}", f"hand-written torch ({dev})", torch_prepare, sync, dev))

    if have("jax"):
        dev = "cuda" if s.gpu and jax_gpu_usable() else "cpu"
        impls.append(xpnet_impl("xpnet-jax" if dev == "cpu" else "xpnet-jax-gpu", f"xpnet (jax {dev}), compiled: jax.jit",
                                "jax", device=dev))  # fmt: skip
    if s.gpu and cupy_usable():
        impls.append(xpnet_impl("xpnet-cupy", "xpnet (cupy), eager", "cupy", cupy_sync, "cuda", compile=False))
        impls.append(xpnet_impl("xpnet-cupy-compiled", "xpnet (cupy), compiled: torch CUDA graph (DLPack) or fused updates", "cupy",
                                cupy_sync, "cuda"))  # fmt: skip
        impls.append(Impl("cupy-hand", "hand-written CuPy", hand("cupy"), cupy_sync, "cuda"))

    comps = [
        Comparison("xpnet-numpy", "numpy-hand", 1.05, "xpnet / hand-written NumPy"),
        Comparison("xpnet-torch", "torch-hand", 1.05, "xpnet on torch / hand-written torch"),
        Comparison("xpnet-numpy", "torch-autograd", 1.0, "xpnet / PyTorch autograd (not slower)"),
        Comparison("xpnet-torch-cuda", "torch-hand-cuda", 1.05, "xpnet on torch, eager / hand-written torch (CUDA)"),
        Comparison("xpnet-cupy", "cupy-hand", 1.05, "xpnet on CuPy, eager / hand-written CuPy"),
        Comparison("xpnet-torch-cuda-compiled", "torch-autograd-cuda", None,
                   "xpnet on torch, CUDA graph / PyTorch autograd (CUDA)"),
        Comparison("xpnet-cupy-compiled", "cupy-hand", None, "xpnet on CuPy, compiled / hand-written CuPy"),
        Comparison("xpnet-jax", "xpnet-numpy", None, "xpnet on JAX (cpu), jax.jit / xpnet on NumPy"),
        Comparison("xpnet-jax-gpu", "torch-autograd-cuda", None, "xpnet on JAX, jax.jit / PyTorch autograd (CUDA)"),
    ]  # fmt: skip
    quick = s.quick

    reps = 2 if quick else 5

    def extra(res: dict[str, Any]) -> None:
        limits = res["probes"]["matmul_limit_step_s"]
        limit_s = min(limits)  # the machine's limit: its best round
        res["matmul_limit"] = {"step_s": limit_s, "gflops": flops_per_step() / limit_s / 1e9, "per_round_step_s": limits}
        fl = flops_per_step()
        for imp in res["impls"].values():
            step_s = imp["median_s"] / res["steps"]
            imp["extra"] = {"steps_per_s": 1.0 / step_s, "gflops": fl / step_s / 1e9}
            if imp["device"] == "cpu":
                # paired: each round's limit against the same round's time
                fracs = [lim / (t / res["steps"]) for lim, t in zip(limits, imp["times_s"])]
                imp["extra"]["frac_matmul_limit"] = statistics.median(fracs)
        notes = [
            f"Matrix-multiply limit (best NumPy matmul per product of a step, summed; measured every "
            f"round, best round): {limit_s * 1e3:.1f} ms/step = {fl / limit_s / 1e9:.1f} GFLOP/s "
            f"({fl / 1e9:.2f} GFLOP per step; per round: "
            + ", ".join(f"{x * 1e3:.1f}" for x in limits)
            + " ms). frac_matmul_limit: median over rounds of that round's limit / that round's step time."
        ]
        targets = []
        if "xpnet-numpy" in res["impls"]:
            frac = res["impls"]["xpnet-numpy"]["extra"]["frac_matmul_limit"]
            targets.append(
                {
                    "what": "xpnet (numpy) at >= 85% of the matmul limit",
                    "value": f"{frac * 100:.1f}%",
                    "met": frac >= 0.85,
                    "distance": f"{(0.85 - frac) * 100:.1f} points short",
                }
            )
            hand = res["impls"].get("numpy-hand")
            if hand:
                targets.append(
                    {
                        "what": "(for reference) hand-written NumPy at >= 85% of the limit",
                        "value": f"{hand['extra']['frac_matmul_limit'] * 100:.1f}%",
                        "met": hand["extra"]["frac_matmul_limit"] >= 0.85,
                        "distance": f"{(0.85 - hand['extra']['frac_matmul_limit']) * 100:.1f} points short",
                    }
                )
        if rss:
            peaks = {}
            for key, imp in res["impls"].items():
                if imp["device"] != "cpu":
                    continue
                r = measure_rss(key, quick)
                imp["extra"].update(r)
                peaks[key] = r
            if "xpnet-numpy" in peaks and "numpy-hand" in peaks:
                ratio = peaks["xpnet-numpy"]["peak_rss_mib"] / peaks["numpy-hand"]["peak_rss_mib"]
                growth = peaks["xpnet-numpy"]["rss_growth_mib"] / max(peaks["numpy-hand"]["rss_growth_mib"], 1e-9)
                targets.append(
                    {
                        "what": "peak RSS xpnet / hand-written NumPy <= 1.2",
                        "value": f"{ratio:.3f}",
                        "range": f"growth during the run: {growth:.2f}x",
                        "met": ratio <= 1.2,
                        "distance": f"{(ratio / 1.2 - 1) * 100:.0f}% over",
                    }
                )
            notes.append(
                "Peak RSS: high-water mark (`VmHWM`) of a fresh subprocess per implementation (same data and "
                "weights set-up); growth = peak minus the RSS just before the timed run."
            )
        res["targets"] = targets
        res["notes"] = notes

    return Workload(
        NAME,
        f"W3 throughput float32: {BATCH} x 784 -> 1024 -> 1024 -> 10 ReLU, softmax + CE, {steps} SGD steps",
        impls,
        comps,
        steps=steps,
        meta={"batch": BATCH, "sizes": SIZES, "lr": LR, "dtype": DTYPE, "steps": steps, "gflop_per_step": flops_per_step() / 1e9},
        extra=extra,
        probes={"matmul_limit_step_s": lambda: matmul_limit(reps)["step_s"]},
    )


def build_all(s: Settings, rss: bool = True) -> list[Workload]:
    return [build(s, rss)]


def measure_rss(key: str, quick: bool, workload: str = NAME) -> dict[str, float]:
    """Peak RSS of one implementation of ``workload``, in a fresh interpreter."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "benchmarks.rss", workload, key] + (["--quick"] if quick else [])
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"RSS run of {key} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
