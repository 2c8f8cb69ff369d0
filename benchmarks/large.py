"""Large: 784 -> 4096 -> 4096 -> 4096 -> 10 (ReLU, softmax + cross-entropy),
batch 8192, SGD lr 0.01, float32, 10 full-batch steps: a GPU workload.

At this size the matrix products are everything: the target (issue 14) is
xpnet at >= 95% of the GEMM-only time, the step's matrix products alone in
the same library, timed on the same GPU in the same rounds. Skipped without
a GPU (one step is 0.8 TFLOP: minutes on a CPU).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from .common import Settings, backend_of, host_params, random_classes, relu_softmax_mlp, torch_full_batch_steps
from .common import torch_tensor, torch_training
from .harness import Comparison, Impl, Skip, Workload, cupy_sync, cupy_usable, have, torch_cuda_usable, torch_sync_for
from .w3 import flops_per_step, gemms

NAME = "Large"
SEED = 4096
SIZES = [784, 4096, 4096, 4096, 10]
BATCH = 8192
LR = 0.01
STEPS = 10
TARGET = 0.95


def xpnet_network(backend: Any = "numpy") -> Any:
    return relu_softmax_mlp(SIZES, SEED, backend)


def gemm_only(xp: Any, sync: Any, reps: int = 3) -> float:
    """Seconds of one step's matrix products alone (best of ``reps``), in ``xp``."""
    rng = np.random.default_rng(0)
    mats = []
    for what, m, k, n in gemms(BATCH, SIZES):
        if what.startswith("dW"):
            a, b = xp.asarray(rng.random((k, m), dtype=np.float32)).T, xp.asarray(rng.random((k, n), dtype=np.float32))
        elif what.startswith("dX"):
            a, b = xp.asarray(rng.random((m, k), dtype=np.float32)), xp.asarray(rng.random((n, k), dtype=np.float32)).T
        else:
            a, b = xp.asarray(rng.random((m, k), dtype=np.float32)), xp.asarray(rng.random((k, n), dtype=np.float32))
        mats.append((a, b))
    best = float("inf")
    for _ in range(reps + 1):
        sync()
        t0 = time.perf_counter()
        for a, b in mats:
            a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def build(s: Settings, rss: bool = True) -> Workload:
    cupy_ok = s.gpu and cupy_usable()
    torch_ok = s.gpu and have("torch") and torch_cuda_usable()
    if not (cupy_ok or torch_ok):
        raise Skip("GPU only (one step is 0.8 TFLOP); no usable CuPy or CUDA torch here")
    steps = s.steps(STEPS, 2)
    X, y = random_classes(SEED, BATCH, SIZES)
    params = host_params(xpnet_network())
    impls: list[Impl] = []
    probes: dict[str, Any] = {}

    def xpnet_impl(key, label, backend, sync, compile):
        def prepare(warmup: bool):
            net = xpnet_network(backend_of(backend))
            Xb, yb = net.backend.asarray(X), net.backend.asarray(y)
            k = 1 if warmup else steps

            def run():
                net.fit(Xb, yb, loss="cross_entropy", optimizer="sgd", lr=LR, epochs=k, compile=compile)
                return lambda: {}

            return run

        return Impl(key, label, prepare, sync, "cuda")

    if cupy_ok:
        impls += [xpnet_impl("xpnet-cupy", "xpnet (cupy), eager", "cupy", cupy_sync, False),
                  xpnet_impl("xpnet-cupy-auto", "xpnet (cupy), compile='auto' (eager, fused updates)", "cupy",
                             cupy_sync, "auto"),
                  xpnet_impl("xpnet-cupy-compiled", "xpnet (cupy), compiled", "cupy", cupy_sync, True)]  # fmt: skip

        def cupy_gemms() -> float:
            import cupy

            return gemm_only(cupy, cupy_sync)

        probes["gemm_cupy_s"] = cupy_gemms
    if torch_ok:
        sync = torch_sync_for("cuda")
        impls += [xpnet_impl("xpnet-torch-cuda", "xpnet (torch cuda), eager", ("torch", "cuda"), sync, False),
                  xpnet_impl("xpnet-torch-cuda-compiled", "xpnet (torch cuda), CUDA graph", ("torch", "cuda"), sync,
                             True)]  # fmt: skip

        def autograd_prepare(warmup: bool):
            model, opt, loss_fn = torch_training(params, ["relu"] * 3 + ["identity"], "float32", "cuda", "SGD", LR)
            Xt, yt = torch_tensor(X, "cuda"), torch_tensor(y, "cuda")
            k = 1 if warmup else steps

            def run():
                torch_full_batch_steps(model, opt, loss_fn, Xt, yt, k)
                return lambda: {}

            return run

        impls.append(Impl("torch-autograd-cuda", "PyTorch autograd + optim.SGD (cuda)", autograd_prepare, sync, "cuda"))

        def torch_gemms() -> float:
            import torch

            return gemm_only(_TorchXp(), sync)

        probes["gemm_torch_s"] = torch_gemms

    def extra(res: dict[str, Any]) -> None:
        targets = []
        for key, imp in res["impls"].items():
            probe = "gemm_cupy_s" if "cupy" in key else "gemm_torch_s"
            if probe not in res["probes"]:
                continue
            fracs = [g / (t / res["steps"]) for g, t in zip(res["probes"][probe], imp["times_s"])]
            imp["extra"] = {"frac_gemm_only": statistics.median(fracs)}
            if key.startswith("xpnet"):
                frac = imp["extra"]["frac_gemm_only"]
                targets.append({"what": f"{imp['label']} at >= {TARGET:.0%} of the GEMM-only time",
                                "value": f"{frac * 100:.1f}%", "met": frac >= TARGET,
                                "distance": f"{(TARGET - frac) * 100:.1f} points short"})  # fmt: skip
        res["targets"] = targets

    return Workload(
        NAME,
        f"Large: {BATCH} x {' -> '.join(map(str, SIZES))} ReLU, softmax + CE, {steps} SGD steps, float32 (GPU)",
        impls,
        [Comparison("xpnet-torch-cuda-compiled", "torch-autograd-cuda", None, "xpnet on torch / PyTorch autograd")],
        steps=steps,
        meta={"batch": BATCH, "sizes": SIZES, "gflop_per_step": flops_per_step(BATCH, SIZES) / 1e9},
        extra=extra,
        probes=probes,
    )


class _TorchXp:
    """``asarray`` onto the CUDA device, for :func:`gemm_only`."""

    @staticmethod
    def asarray(a: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(np.ascontiguousarray(a)).to("cuda")
