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
    for s in scalars:  # a loop over a tuple of types: a union made per call and a generator cost 0.4 us a step
        if not isinstance(s, _HOST_NUMBER):
            return False
    return True


_HOST_NUMBER = (int, float)


def _foreach(kernels: Sequence[Any], columns: Sequence[Sequence[Any]], scalars: Sequence[Any]):
    """:func:`update` with each traced operation run over every parameter
    that shares the kernel (one group for weights, one for biases when only
    the weights decay)."""
    if kernels.count(kernels[0]) == len(kernels):  # one kernel for all (no decay mask): the columns as they are
        return tuple(map(list, _foreach_tape(kernels[0], columns, scalars)))
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


def _foreach_tape(kernel: Any, arrays: Sequence[Sequence[Any]], scalars: Sequence[Any]) -> list[Sequence[Any]]:
    """The tape over lists, run from its :func:`_plan`: each intermediate
    list dropped after its last use (a list holds one array per parameter:
    Adam's dozen would otherwise all be alive at the end)."""
    plan = kernel.__dict__.get("_foreach_plan")  # kept on the kernel, as its tape is: no cache outlives it
    if plan is None:
        plan = kernel.__dict__["_foreach_plan"] = _plan(kernel)
    ops, constants, outputs = plan
    env = [*arrays, *scalars, *constants]  # then each op's result, in order
    for fn, operands, dead in ops:
        if len(operands) == 2:  # most ops: no list made per op
            env.append(fn(env[operands[0]], env[operands[1]]))
        else:
            env.append(fn(*[env[i] for i in operands]))
        for j in dead:
            env[j] = None
    return [env[i] for i in outputs]


def _plan(kernel: Any) -> tuple[list[tuple[Any, tuple[int, ...], tuple[int, ...]]], list[float], list[int]]:
    """The tape as ``(ops, constants, outputs)`` over one list of values:
    the kernel's arrays (one list each), its scalars, its constants, then
    op ``k``'s result. Each op is ``(function, operand positions, positions
    dead after it)``, its torch function chosen here, once per kernel: which
    operands are numbers is known from the tape (an update step on a small
    network feels a dict made and a choice taken per op per step)."""
    tape = kernel.tape
    inputs = kernel.n_arrays + kernel.n_scalars
    constants = [ref[1] for _, refs in tape.ops for ref in refs if ref[0] == "c"]  # a position each, in tape order
    first = inputs + len(constants)
    next_constant = iter(range(inputs, first)).__next__

    def position(ref: tuple[str, Any]) -> int:
        kind, x = ref
        if kind == "v":
            return first + x
        return x if kind == "a" else kernel.n_arrays + x if kind == "s" else next_constant()

    def is_list(ref: tuple[str, Any]) -> bool:
        return ref[0] == "a" or (ref[0] == "v" and tape.array[ref[1]])

    dead = _dead_after(kernel)
    ops = []
    for k, (name, refs) in enumerate(tape.ops):
        operands = [position(r) for r in refs]
        if not tape.array[k]:
            fn = _HOST_OPS[name]
        else:
            fn, swap = _foreach_fn(name, [is_list(r) for r in refs])
            if swap:
                operands.reverse()
        ops.append((fn, tuple(operands), tuple(first + j for j in dead[k])))
    return ops, constants, [position(ref) for ref in tape.outputs]


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


def _foreach_fn(name: str, lists: list[bool]) -> tuple[Any, bool]:
    """The multi-tensor operation for ``name`` whose operands are lists of
    tensors where ``lists`` says (else a number), each element as the
    per-tensor operation computes it, and whether it takes the operands
    swapped (torch's take the number second)."""
    import torch

    if len(lists) == 1:
        return {"neg": torch._foreach_neg, "sqrt": torch._foreach_sqrt}[name], False
    swap = not lists[0]
    if swap:  # a number first
        if name == "sub":  # s - t == -(t - s), exactly
            return (lambda s, t: torch._foreach_neg(torch._foreach_sub(t, s))), False
        if name == "div":
            return (lambda s, t: [s / x for x in t]), False
    if not lists[1 - swap] and name in ("maximum", "minimum"):  # clamp propagates NaN as maximum does
        return (torch._foreach_clamp_min if name == "maximum" else torch._foreach_clamp_max), swap
    fn = {"add": torch._foreach_add, "sub": torch._foreach_sub, "mul": torch._foreach_mul, "div": torch._foreach_div,
          "maximum": torch._foreach_maximum, "minimum": torch._foreach_minimum}[name]  # fmt: skip
    return fn, swap  # add, mul, maximum and minimum are symmetric
