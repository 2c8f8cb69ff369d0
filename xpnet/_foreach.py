"""Updates over all parameters at once: each traced operation of a kernel
as one of torch's multi-tensor ``_foreach_*`` operations (eager torch on
CUDA, where every per-tensor operation is a launch of its own)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ._inplace import _HOST_OPS

__all__ = ["_foreach", "_foreach_applies"]


def _foreach_applies(first: Any, forced: bool | None, scalars: Sequence[Any]) -> bool:
    """Eager torch on CUDA (where each per-tensor operation is a launch of
    its own), unless ``forced`` says otherwise; only with host scalars."""
    if forced is False or type(first).__module__ != "torch":  # torch.Tensor itself
        return False
    if not (forced or first.is_cuda):
        return False
    return all(isinstance(s, int | float) for s in scalars)


def _foreach(kernels: Sequence[Any], columns: Sequence[Sequence[Any]], scalars: Sequence[Any]):
    """:func:`update` with each traced operation run over every parameter
    that shares the kernel (one group for weights, one for biases when only
    the weights decay)."""
    groups: dict[Any, list[int]] = {}
    for i, kernel in enumerate(kernels):
        groups.setdefault(kernel, []).append(i)
    outs: list[list[Any]] = [[None] * len(kernels) for _ in range(len(columns) - 1)]
    for kernel, rows in groups.items():
        results = _foreach_tape(kernel, [[col[i] for i in rows] for col in columns], scalars)
        for out, result in zip(outs, results):
            for i, a in zip(rows, result):
                out[i] = a
    return tuple(outs)


def _foreach_tape(kernel: Any, arrays: list[list[Any]], scalars: Sequence[Any]) -> list[list[Any]]:
    """The tape over lists, each intermediate list dropped after its last use
    (a list holds one array per parameter: Adam's dozen would otherwise all
    be alive at the end)."""
    tape = kernel.tape
    values: dict[int, Any] = {}

    def value(ref: tuple[str, Any]) -> Any:
        kind, x = ref
        return arrays[x] if kind == "a" else scalars[x] if kind == "s" else x if kind == "c" else values[x]

    dead = _dead_after(kernel)
    for k, (name, refs) in enumerate(tape.ops):
        args = [value(r) for r in refs]
        values[k] = _foreach_op(name, args) if tape.array[k] else _HOST_OPS[name](*args)
        for j in dead[k]:
            del values[j]
    return [values[ref[1]] for ref in tape.outputs]


@functools.cache
def _dead_after(kernel: Any) -> list[list[int]]:
    """``dead[k]``: the results no operation after op ``k`` reads (outputs never)."""
    tape = kernel.tape
    last = {ref[1]: k for k, (_, refs) in enumerate(tape.ops) for ref in refs if ref[0] == "v"}
    kept = {ref[1] for ref in tape.outputs}
    dead: list[list[int]] = [[] for _ in tape.ops]
    for j, k in last.items():
        if j not in kept:
            dead[k].append(j)
    return dead


def _foreach_op(name: str, args: list[Any]) -> Sequence[Any]:
    """One operation over lists of tensors (torch returns them as lists or
    tuples) and at most one number, each element as the per-tensor operation
    computes it."""
    import torch

    if len(args) == 1:
        return {"neg": torch._foreach_neg, "sqrt": torch._foreach_sqrt}[name](args[0])
    a, b = args
    if not isinstance(a, list | tuple):  # a number first
        if name == "sub":  # s - t == -(t - s), exactly
            return torch._foreach_neg(torch._foreach_sub(b, a))
        if name == "div":
            return [a / t for t in b]
        a, b = b, a  # add, mul, maximum and minimum are symmetric
    if not isinstance(b, list | tuple) and name in ("maximum", "minimum"):  # clamp propagates NaN as maximum does
        return (torch._foreach_clamp_min if name == "maximum" else torch._foreach_clamp_max)(a, b)
    fn = {"add": torch._foreach_add, "sub": torch._foreach_sub, "mul": torch._foreach_mul, "div": torch._foreach_div,
          "maximum": torch._foreach_maximum, "minimum": torch._foreach_minimum}[name]  # fmt: skip
    return fn(a, b)
