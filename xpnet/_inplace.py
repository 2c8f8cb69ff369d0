"""Updates written in place: a kernel's traced operations run with
``out=`` into the arrays a step donates and a few scratch buffers (NumPy,
torch), so a step allocates nothing and each operation is one pass.
:func:`xpnet._kernels.update` decides when; this module only writes into
what it is handed."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat as compat
import numpy as np

__all__ = ["SPARES_MAX", "_layout_key", "_run_in_place", "_same_layout", "_writable"]


def _same_layout(arrays: list[Any]) -> bool:
    """All NumPy arrays or all torch tensors, one shape, dtype and device."""
    a0 = arrays[0]
    if isinstance(a0, np.ndarray):
        return all(type(a) is type(a0) and a.shape == a0.shape and a.dtype == a0.dtype for a in arrays)
    if compat.is_torch_array(a0):
        return all(
            compat.is_torch_array(a) and a.shape == a0.shape and a.dtype == a0.dtype and a.device == a0.device
            for a in arrays
        )
    return False


def _writable(a: Any) -> bool:
    """May ``out=`` write ``a``: a writeable NumPy array, or a torch tensor
    that no autograd graph tracks, each laid out without overlap."""
    if isinstance(a, np.ndarray):
        return bool(a.flags.writeable) and (a.flags.c_contiguous or a.flags.f_contiguous)
    return not a.requires_grad and a.is_contiguous()


# -- in place: the tape with out= into donated arrays and scratch buffers -------


def _schedule(kernel: Any, writable: tuple[bool, ...], spares: bool = False) -> list[tuple[str, tuple, Any]]:
    """Assign each array operation a buffer: ``("in", i)`` (a donated input,
    once its value is dead), ``("out", j)`` (an output array: a spare one
    when ``spares``, else fresh), ``("tmp", k)`` (scratch ``k``). Outputs
    land in their home input when it is donated, else in a spare array, else
    in the step's gradient. Memoised per kernel and donation pattern."""
    return _schedules(kernel, writable, spares)


@functools.cache
def _schedules(kernel: Any, writable: tuple[bool, ...], spares: bool):
    tape = kernel.tape
    last: dict[tuple[str, Any], int] = {}
    for k, (_, refs) in enumerate(tape.ops):
        for r in refs:
            last[r] = k
    end = len(tape.ops)
    for r in tape.outputs:
        last[r] = end
    out_index = {ref[1]: j for j, ref in enumerate(tape.outputs)}
    homes = {kernel.home(j) for j in range(len(tape.outputs))}
    holder: dict[tuple[str, int], tuple[str, Any] | None] = {("in", i): ("a", i) for i in range(kernel.n_arrays)}
    plan = []
    n_tmp = 0
    for k, (name, refs) in enumerate(tape.ops):
        if not tape.array[k]:
            plan.append((name, refs, None))
            continue

        def free(buf: tuple[str, int]) -> bool:
            held = holder.get(buf)
            return held is None or last.get(held, -1) <= k

        j = out_index.get(k)
        if j is not None:
            home = ("in", kernel.home(j))
            # its home when donated, else a spare array, else a donated input that is not a home (the
            # step's gradient), else fresh
            spare = [("in", i) for i in range(kernel.n_arrays) if writable[i] and i not in homes and free(("in", i))]
            spare = [] if spares else spare
            target = home if writable[kernel.home(j)] and free(home) else spare[0] if spare else ("out", j)
        else:
            spare = [("in", i) for i in range(kernel.n_arrays) if writable[i] and i not in homes and free(("in", i))]
            spare += [("tmp", t) for t in range(n_tmp) if free(("tmp", t))]
            if spare:
                target = spare[0]
            else:
                target, n_tmp = ("tmp", n_tmp), n_tmp + 1
        holder[target] = ("v", k)
        plan.append((name, refs, target))
    return plan


_NUMPY_OPS = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "neg": np.negative,
    "sqrt": np.sqrt, "maximum": np.maximum, "minimum": np.minimum,
}  # fmt: skip


def _torch_op(name: str, args: list[Any], out: Any) -> Any:
    import torch

    x = args[0]
    if name in ("add", "mul") and not isinstance(x, torch.Tensor):
        args = args[::-1]
    elif name == "sub" and not isinstance(x, torch.Tensor):  # s - t == -(t - s), exactly
        torch.sub(args[1], x, out=out)
        return torch.neg(out, out=out)
    elif name in ("maximum", "minimum") and not all(isinstance(a, torch.Tensor) for a in args):
        t, s = (args[0], args[1]) if isinstance(args[0], torch.Tensor) else (args[1], args[0])
        bound = {"min": s} if name == "maximum" else {"max": s}
        return torch.clamp(t, out=out, **bound)
    fn = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "neg": torch.neg,
          "sqrt": torch.sqrt, "maximum": torch.maximum, "minimum": torch.minimum}[name]  # fmt: skip
    return fn(*args, out=out)


_HOST_OPS: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "neg": lambda a: -a, "sqrt": lambda a: a**0.5, "maximum": max, "minimum": min,
}  # fmt: skip


def _run_in_place(kernel: Any, arrays: list[Any], writable: list[bool], scalars: Sequence[Any], scratch: dict):
    a0 = arrays[0]
    torch_like = not isinstance(a0, np.ndarray)
    key = _layout_key(a0)
    pool = scratch.setdefault(key, [])
    spares = scratch.get(("spare", key))
    plan = _schedule(kernel, tuple(writable), bool(spares))
    outs: dict[int, Any] = {}
    values: dict[int, Any] = {}

    def buffer(target: tuple[str, int]) -> Any:
        kind, i = target
        if kind == "in":
            return arrays[i]
        if kind == "out":
            if i not in outs:
                outs[i] = spares.pop() if spares else _empty_like(a0)
            return outs[i]
        while len(pool) <= i:
            pool.append(_empty_like(a0))
        return pool[i]

    def value(ref: tuple[str, Any]) -> Any:
        kind, x = ref
        return arrays[x] if kind == "a" else scalars[x] if kind == "s" else x if kind == "c" else values[x]

    for k, (name, refs, target) in enumerate(plan):
        args = [value(r) for r in refs]
        if target is None:
            values[k] = _HOST_OPS[name](*args)
            continue
        out = buffer(target)
        if torch_like:
            _torch_op(name, args, out)
        else:
            _NUMPY_OPS[name](*args, out=out)
        values[k] = out
    return tuple(values[ref[1]] for ref in kernel.tape.outputs)


def _empty_like(a: Any) -> Any:
    return compat.array_namespace(a).empty_like(a)


def _layout_key(a: Any) -> tuple:
    return (type(a), tuple(a.shape), a.dtype, getattr(a, "device", None))


#: Spare arrays kept per shape and dtype (:meth:`xpnet._trainstep.TrainStep.reuse`).
SPARES_MAX = 4
