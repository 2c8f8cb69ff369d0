"""Fused updates on CuPy: one generated ``ElementwiseKernel`` per kernel
and dtype, so a parameter's whole update is one launch."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._warnings import caller_stacklevel

__all__ = ["_cupy_call", "_cupy_kernel", "cuda_source"]


#: C for each operation; maximum and minimum propagate NaN as NumPy's do
#: (``a != a`` is true only for NaN), with no math-library overloads needed.
_C_BINARY = {"add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
             "maximum": "({0} > {1} || {0} != {0}) ? {0} : {1}", "minimum": "({0} < {1} || {0} != {0}) ? {0} : {1}"}  # fmt: skip


def cuda_source(kernel: Any) -> tuple[str, str, str]:
    """``(in_params, out_params, body)`` of the ``ElementwiseKernel`` that
    computes ``kernel`` in one pass, for any floating type ``T``."""
    tape = kernel.tape
    ins = [f"T a{i}" for i in range(kernel.n_arrays)] + [f"T s{i}" for i in range(kernel.n_scalars)]
    outs = [f"T o{j}" for j in range(len(tape.outputs))]

    def operand(ref: tuple[str, Any]) -> str:
        kind, x = ref
        return {"a": f"a{x}", "s": f"s{x}", "v": f"t{x}"}.get(kind) or f"(T){_c_number(x)}"

    lines = []
    for k, (name, refs) in enumerate(tape.ops):
        args = [operand(r) for r in refs]
        if name == "neg":
            expr = f"-{args[0]}"
        elif name == "sqrt":
            expr = f"sqrt({args[0]})"
        else:
            expr = _C_BINARY[name].format(*args)
        lines.append(f"T t{k} = {expr};")
    lines += [f"o{j} = t{ref[1]};" for j, ref in enumerate(tape.outputs)]
    return ", ".join(ins), ", ".join(outs), "\n".join(lines)


def _c_number(x: Any) -> str:
    """A Python number as C: ``repr`` gives ``inf`` and ``nan``, which C spells
    ``INFINITY`` and ``NAN`` (CUDA and ``math.h`` define both)."""
    x = float(x)
    if math.isnan(x):
        return "NAN"
    if math.isinf(x):
        return "INFINITY" if x > 0 else "(-INFINITY)"
    return repr(x)


#: Kernels whose CuPy build or launch failed here: they run unfused.
_CUPY_FAILED: set[tuple[str, str]] = set()


@functools.cache
def _cupy_elementwise(kernel: Any) -> Any:
    import cupy

    ins, outs, body = cuda_source(kernel)
    return cupy.ElementwiseKernel(ins, outs, body, f"xpnet_{kernel.name}")


def _cupy_kernel(kernel: Any, dtype: Any) -> Any:
    if (kernel.name, str(dtype)) in _CUPY_FAILED:
        return None
    try:
        return _cupy_elementwise(kernel)
    except Exception as exc:  # pragma: no cover - needs CuPy
        _cupy_gave_up(kernel, dtype, exc)
        return None


def _cupy_call(fused: Any, kernel: Any, arrays: list[Any], scalars: Sequence[Any],
               xp: Any) -> tuple[Any, ...]:  # pragma: no cover - needs a GPU
    """The fused kernel on ``arrays``; the kernel's own operations on ``xp``
    (for good) when it fails to build or launch."""
    kind = np.dtype(str(arrays[0].dtype)).type
    try:
        with arrays[0].device:
            out = fused(*arrays, *(s if hasattr(s, "dtype") else kind(s) for s in scalars))
    except Exception as exc:
        if _device_failure(exc):  # out of memory, or an earlier launch's error: not the kernel's, and not hidden
            raise
        _cupy_gave_up(kernel, arrays[0].dtype, exc)
        return kernel.fn(xp, *arrays, *scalars)
    return out if isinstance(out, tuple) else (out,)


def _device_failure(exc: BaseException) -> bool:
    """An error of the device, not of the fused kernel (running it unfused
    would need more memory, or meet the same error). Without CuPy there is
    no CuPy device to fail."""
    try:
        import cupy
    except ImportError:
        return False
    return isinstance(exc, cupy.cuda.memory.OutOfMemoryError | cupy.cuda.runtime.CUDARuntimeError)


def _cupy_gave_up(kernel: Any, dtype: Any, exc: BaseException) -> None:  # pragma: no cover - needs CuPy
    _CUPY_FAILED.add((kernel.name, str(dtype)))
    warnings.warn(
        f"xpnet: the fused CuPy kernel of {kernel.name} ({dtype}) failed ({type(exc).__name__}: {exc}); "
        "running it as separate operations",
        RuntimeWarning,
        stacklevel=caller_stacklevel(),
    )
