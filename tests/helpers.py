"""Shared test helpers: where an array lives, host copies, finite differences."""

from __future__ import annotations

import collections
import contextlib
import os
from pathlib import Path
from typing import Any

import array_api_compat
import numpy as np

import xpnet


def import_benchmarks(*names: str) -> list[Any]:
    """Modules of the checkout's ``benchmarks`` package, loaded from its
    folder: the ``pytest`` command (CI's) does not put the repository root
    on ``sys.path`` (``python -m pytest`` does), and adding it would shadow
    the installed xpnet with the checkout's."""
    import importlib
    import importlib.util
    import sys

    if "benchmarks" not in sys.modules:
        folder = Path(__file__).resolve().parent.parent / "benchmarks"
        spec = importlib.util.spec_from_file_location("benchmarks", folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])  # fmt: skip
        module = importlib.util.module_from_spec(spec)
        sys.modules["benchmarks"] = module
        spec.loader.exec_module(module)
    return [importlib.import_module(f"benchmarks.{name}") for name in names]


def child_env(*front: str | Path) -> dict[str, str]:
    """This process's environment for a child Python, with ``front`` put
    ahead of the PYTHONPATH it already has. Replacing PYTHONPATH would drop
    packages that reach this process that way (the GPU machine's carried
    wheels), so every test that starts a Python builds its environment here."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, front), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    return env


#: Float64 NumPy references for the activations (the textbook formulas).
REF_ACTIVATIONS = {
    "identity": lambda v: v,
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "tanh": np.tanh,
    "relu": lambda v: np.maximum(v, 0.0),
    "leaky_relu": lambda v: np.where(v > 0, v, 0.01 * v),
    "softmax": lambda v: np.exp(v - v.max(-1, keepdims=True)) / np.exp(v - v.max(-1, keepdims=True)).sum(-1, keepdims=True),
    "gelu": lambda v: 0.5 * v * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (v + 0.044715 * v**3))),
    "elu": lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0.0))),
    "softplus": lambda v: np.where(v > 20.0, v, np.log1p(np.exp(np.minimum(v, 20.0)))),
    "silu": lambda v: v / (1.0 + np.exp(-v)),
}


def ref_loss(name: str, t: np.ndarray, y: np.ndarray) -> float:
    """Float NumPy references for the losses, as xpnet.losses defines them."""
    eps = np.finfo(y.dtype).eps
    if name == "mse":
        return np.mean((y - t) ** 2)
    if name == "sse":
        return np.sum((y - t) ** 2)
    if name == "binary_cross_entropy":
        yc = np.clip(y, eps, 1 - eps)
        return np.mean(-(t * np.log(yc) + (1 - t) * np.log(1 - yc)))
    if name == "cross_entropy":
        return np.mean(-np.sum(t * np.log(np.clip(y, eps, 1.0)), axis=1))
    if name == "mae":
        return np.mean(np.abs(y - t))
    if name == "huber":  # delta 1
        d = np.abs(y - t)
        return np.mean(np.where(d <= 1.0, 0.5 * d**2, d - 0.5))
    raise AssertionError(name)


def host(a) -> np.ndarray:
    return xpnet.to_numpy(a)


def assert_on(a, backend, dtype=None, shape=None) -> None:
    """``a`` is an array of ``backend``'s library, on its device, of ``dtype``/``shape``."""
    assert backend.owns(a), f"expected a {backend.name} array, got {type(a).__module__}.{type(a).__name__}"
    assert array_api_compat.device(a) == backend.device, f"array on {array_api_compat.device(a)}, expected {backend.device}"
    if dtype is not None:
        assert a.dtype == backend.dtype(dtype), f"dtype {a.dtype}, expected {dtype}"
    if shape is not None:
        assert tuple(a.shape) == tuple(shape), f"shape {tuple(a.shape)}, expected {tuple(shape)}"


def central_diff(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d x for a scalar ``f`` of a float64 array, by central differences
    that build a new array per probe (nothing is modified in place)."""
    x = np.asarray(x, dtype=np.float64)
    grad = np.empty_like(x)
    flat = grad.reshape(-1)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        e = e.reshape(x.shape)
        flat[i] = (f(x + e) - f(x - e)) / (2 * h)
    return grad


def elementwise_diff(f, v: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """The elementwise derivative of an elementwise ``f``, by central differences."""
    v = np.asarray(v, dtype=np.float64)
    return (f(v + h) - f(v - h)) / (2 * h)


def try_import(name):
    try:
        return __import__(name)
    except Exception:
        return None


def subprocess_env(**extra) -> dict:
    """The environment for a child Python: this checkout importable first
    (whether or not xpnet is installed), plus ``extra``."""
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


@contextlib.contextmanager
def torch_dispatched(skip: frozenset[str] = frozenset()):
    """A Counter of the operations torch dispatches inside the block, by
    name, ``skip`` left out. On CUDA each is a kernel launch, so counting
    them on the CPU checks what a GPU would launch."""
    from torch.utils._python_dispatch import TorchDispatchMode

    ops: collections.Counter[str] = collections.Counter()

    class Counting(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name not in skip:
                ops[name] += 1
            return func(*args, **(kwargs or {}))

    with Counting():
        yield ops


class StopAfter:
    """An ``interrupt`` for ``fit`` that becomes set after ``n`` looks (the
    loop looks once per step, or per program on JAX)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def is_set(self) -> bool:
        self.n -= 1
        return self.n < 0


def jax_x64(on: bool):
    """``jax.enable_x64(on)``, a context manager; JAX before 0.5 spelled it
    ``jax.experimental.enable_x64`` (pyproject allows jax>=0.4.33)."""
    import jax

    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(on)
    from jax.experimental import enable_x64

    return enable_x64(on)


def traced_peak(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` and the peak of the memory Python and NumPy
    allocated during it (tracemalloc), in bytes."""
    import tracemalloc

    tracemalloc.start()
    try:
        out = fn(*args, **kwargs)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def compiled_names(fn) -> list[str]:
    """The names of the programs ``fn()`` compiled, from JAX's compile log."""
    import logging
    import re

    import jax

    names: list[str] = []

    class Names(logging.Handler):
        def emit(self, record):
            names.extend(re.findall(r"Finished XLA compilation of jit\((\w+)\)", record.getMessage()))

    handler, logger = Names(), logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            fn()
    finally:
        logger.removeHandler(handler)
    return names
