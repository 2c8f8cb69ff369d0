"""Predict: inference on 1 000 000 rows x 50 features through a 50 -> 256 ->
256 -> 10 network (ReLU, softmax), float32, from one call.

``net.predict(X)`` (chunks of rows chosen from the widest layer, no backprop
caches) against PyTorch's ``model(X)`` under ``torch.no_grad()`` on the whole
array, and a hand-written NumPy loop over 16 384-row chunks. Time, and peak
RSS growth of each CPU implementation in a fresh process (``python -m
benchmarks.rss Predict KEY``; the data is made before the RSS baseline).
Targets (issue 14): xpnet within 1.2x torch's time and 0.25x its memory.

With a usable GPU (and without ``--no-gpu``), xpnet on CuPy and on CUDA torch
and torch ``no_grad`` on CUDA time the same call, data already on the device.
On a CPU the warm-up call predicts 2048 rows; on a GPU it predicts all of
them, so that what the first full-size call sets up (memory pool blocks
of the chunks' size; the kernels CuPy compiles on first use, reductions
configured by size among them) is not timed: after a 2048-row warm-up the
H100's CuPy row ranged from 1.8x to 12.3x torch's time between its two
rounds (the likely cause; not re-measured).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import Settings, backend_of, host_params, relu_softmax_mlp, torch_sequential
from .harness import Comparison, Impl, Workload, cupy_sync, cupy_usable, torch_devices

NAME = "Predict"
ROWS = 1_000_000
SIZES = [50, 256, 256, 10]
SEED = 14
HAND_CHUNK = 16384
#: The targets: xpnet's time and memory against torch no_grad's.
TIME_TARGET, MEMORY_TARGET = 1.2, 0.25


def data(rows: int) -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal((rows, SIZES[0]), dtype=np.float32)


def xpnet_network(backend: Any = "numpy") -> Any:
    return relu_softmax_mlp(SIZES, SEED, backend)


def numpy_predict(X: np.ndarray, params: list[tuple[np.ndarray, np.ndarray]], chunk: int = HAND_CHUNK) -> np.ndarray:
    """Hand-written inference in chunks of rows, into one preallocated output."""
    out = np.empty((X.shape[0], params[-1][0].shape[1]), dtype=X.dtype)
    for i in range(0, X.shape[0], chunk):
        a = X[i : i + chunk]
        for k, (w, b) in enumerate(params):
            a = a @ w
            a += b
            if k < len(params) - 1:
                np.maximum(a, 0, out=a)
        a -= a.max(axis=1, keepdims=True)
        np.exp(a, out=a)
        a /= a.sum(axis=1, keepdims=True)
        out[i : i + chunk] = a
    return out


def checksum(Y: Any) -> dict[str, float]:
    """What every implementation must agree on: the outputs' mean row maximum."""
    from xpnet import to_numpy

    return {"mean_max_prob": float(np.mean(np.max(to_numpy(Y), axis=1)))}


def build(s: Settings, rss: bool = True) -> Workload:
    rows = 20_000 if s.quick else ROWS
    X = data(rows)
    params = host_params(xpnet_network())
    impls: list[Impl] = []

    def xpnet_impl(key, label, backend, sync=None, device="cpu"):
        def prepare(warmup: bool):
            net = xpnet_network(backend_of(backend))
            Xd = X[:2048] if warmup and device == "cpu" else X  # a GPU warms up at full size: see the docstring
            Xd = Xd if backend == "numpy" else net.backend.asarray(Xd)  # on the device before the clock

            def run():
                Y = net.predict(Xd)
                return lambda: checksum(Y)

            return run

        return Impl(key, label, prepare, sync or (lambda: None), device)

    impls.append(xpnet_impl("xpnet-numpy", "xpnet (numpy), predict", "numpy"))

    def hand_prepare(warmup: bool):
        Xd = X[:2048] if warmup else X

        def run():
            Y = numpy_predict(Xd, params)
            return lambda: checksum(Y)

        return run

    impls.append(Impl("numpy-hand", f"hand-written NumPy, {HAND_CHUNK}-row chunks", hand_prepare))

    for dev, sfx, sync in torch_devices(s.gpu):

        def torch_prepare(warmup: bool, dev=dev):
            import torch

            model = torch_sequential(params, ["relu", "relu", "identity"], "float32", dev)
            Xd = X[:2048] if warmup and dev == "cpu" else X
            Xt = torch.from_numpy(Xd).to(dev)

            def run():
                with torch.no_grad():
                    Y = torch.softmax(model(Xt), dim=1)
                return lambda: checksum(Y)

            return run

        impls.append(Impl(f"torch-nograd{sfx}", f"PyTorch no_grad, whole array ({dev})", torch_prepare, sync, dev))
        impls.append(xpnet_impl(f"xpnet-torch{sfx}", f"xpnet (torch {dev}), predict", ("torch", dev), sync, dev))
    if s.gpu and cupy_usable():
        impls.append(xpnet_impl("xpnet-cupy", "xpnet (cupy), predict", "cupy", cupy_sync, "cuda"))

    comps = [
        Comparison("xpnet-numpy", "torch-nograd", TIME_TARGET, "xpnet predict / PyTorch no_grad"),
        Comparison("xpnet-numpy", "numpy-hand", None, "xpnet predict / hand-written NumPy chunks"),
        Comparison("xpnet-torch", "torch-nograd", None, "xpnet on torch / PyTorch no_grad"),
        Comparison("xpnet-torch-cuda", "torch-nograd-cuda", None, "xpnet on torch / PyTorch no_grad (CUDA)"),
        Comparison("xpnet-cupy", "torch-nograd-cuda", None, "xpnet on CuPy / PyTorch no_grad (CUDA)"),
    ]

    def extra(res: dict[str, Any]) -> None:
        for imp in res["impls"].values():
            imp["extra"] = {"rows_per_s": rows / imp["median_s"]}
        if not rss:
            return
        from .w3 import measure_rss

        peaks = {}
        for key, imp in res["impls"].items():
            if imp["device"] == "cpu":
                peaks[key] = measure_rss(key, s.quick, NAME)
                imp["extra"].update(peaks[key])
        res["notes"] = [
            "Peak RSS: high-water mark (`VmHWM`) of a fresh subprocess per implementation, the data made "
            "first; growth = peak minus the RSS just before the call."
        ]
        if "xpnet-numpy" in peaks and "torch-nograd" in peaks:
            ratio = peaks["xpnet-numpy"]["rss_growth_mib"] / max(peaks["torch-nograd"]["rss_growth_mib"], 1e-9)
            res["targets"] = [
                {
                    "what": f"memory growth xpnet predict / PyTorch no_grad <= {MEMORY_TARGET}",
                    "value": f"{ratio:.3f}",
                    "range": f"{peaks['xpnet-numpy']['rss_growth_mib']:.0f} vs "
                    f"{peaks['torch-nograd']['rss_growth_mib']:.0f} MiB",
                    "met": ratio <= MEMORY_TARGET,
                    "distance": f"{(ratio / MEMORY_TARGET - 1) * 100:.0f}% over",
                }
            ]

    return Workload(
        NAME,
        f"Predict: {rows} x {SIZES[0]} -> {' -> '.join(map(str, SIZES[1:]))} (ReLU, softmax), float32, one call",
        impls,
        comps,
        steps=1,
        meta={"rows": rows, "sizes": SIZES, "dtype": "float32"},
        extra=extra,
    )
