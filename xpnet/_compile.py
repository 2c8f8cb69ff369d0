"""The switch: which training step ``fit`` runs, by backend and ``compile``.

``jax.jit`` of the whole step on JAX (:mod:`xpnet._programs`); a CUDA graph
of it on torch with CUDA, or of a CuPy network's step through torch, and a
recorded step for small NumPy networks (:mod:`xpnet._graphstep`); the eager
:class:`xpnet._trainstep.TrainStep` elsewhere, with fused or in-place
update kernels (:mod:`xpnet._kernels`). Those modules are the only places
that know a library by name for execution; this one only picks among them.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

from ._graphstep import GraphStep, _CudaGraph, bridged_step, tape_step
from ._kernels import host_scalars
from ._programs import _JaxStep
from ._trainstep import TrainStep
from ._warnings import caller_stacklevel

__all__ = ["COMPILE_CHOICES", "GRAPH_MAX_PARAMS", "check_compile", "compiled_kind", "training_step"]


COMPILE_CHOICES = ("auto", True, False)


def check_compile(value: Any) -> Any:
    if not any(value is c or (isinstance(c, str) and value == c) for c in COMPILE_CHOICES):
        raise ValueError(f"compile must be 'auto', True or False, got {value!r}")
    return value


def training_step(net: Any, loss: Any, opt: Any, decay: Sequence[bool] | None, ctx: Any, state: dict | None = None,
                  compile: Any = "auto") -> TrainStep:  # fmt: skip
    """The step ``fit`` runs, by backend: ``jax.jit`` of the whole step on
    JAX, a CUDA graph of it on torch with CUDA, fused update kernels on CuPy,
    eager elsewhere. ``"auto"`` compiles where that is known to pay (those
    three); ``False`` runs every operation as written (no fused kernels
    either; torch's multi-tensor updates on CUDA stay: they are eager
    operations, not compiled ones); ``True`` is ``"auto"``. A step that cannot be compiled (an
    optimizer whose scalars cannot be replayed) runs eagerly. ``"auto"``
    leaves large networks on torch CUDA eager (:data:`GRAPH_MAX_PARAMS`)."""
    check_compile(compile)
    eager = TrainStep(net, loss, opt, decay, ctx, state, fuse=compile is not False)
    warn = compile is True  # asked for by name: a step that runs eagerly says why
    kinds = {"jax": functools.partial(_JaxStep, warn=warn), "bridge": functools.partial(bridged_step, warn=warn),
             "graph": functools.partial(GraphStep, graph=_CudaGraph, warn=warn),
             "tape": functools.partial(tape_step, compile=compile), None: None}  # fmt: skip
    name = compiled_kind(net.backend, compile, sum(math.prod(p.shape) for p in net._params()))
    kind = kinds[name]
    # Dropout's random source, new every step, enters each compiled step as its key words; a source
    # the step is built with would be frozen into a graph or recording
    draws = name != "jax" and getattr(ctx, "rng", None) is not None
    if kind is None or compile is False or (name != "jax" and not net._params()):  # a graph's scalars sit by params[0]
        return eager
    if draws or not _replayable(opt, state or {}):
        if compile is True:  # asked for by name: say why it is not
            why = "the step is built with a random source of its own, which it would freeze" if draws else (
                _not_replayed(opt))  # fmt: skip
            warnings.warn(f"xpnet: compile=True cannot compile this step ({why}); it runs eagerly", RuntimeWarning,
                          stacklevel=caller_stacklevel())  # fmt: skip
        return eager
    return kind(eager)


#: ``compile="auto"`` replays a CUDA graph of the step only for networks of
#: at most this many parameters. Above, a step's arithmetic hides its
#: launches and the graph's copies in and out cost more than they save
#: (784-4096x3-10, batch 8192, on an H100: 45.3 ms per step with the graph,
#: 37.0 ms eager; 64-128-10, batch 32: 0.088 ms against 0.399 ms).
GRAPH_MAX_PARAMS = 2**22


def compiled_kind(backend: Any, compile: Any, n_params: int, torch_cuda: bool | None = None) -> str | None:
    """How ``fit`` compiles a step on ``backend``: ``"jax"`` (jax.jit),
    ``"graph"`` (a CUDA graph on torch), ``"bridge"`` (a torch CUDA graph
    of a CuPy network's step, where torch with CUDA is installed), or None
    (eager, with fused update kernels on CuPy unless ``compile=False``).
    ``torch_cuda``: is torch with CUDA usable (None: find out)."""
    if compile is False:
        return None
    if backend.name == "jax":
        return "jax"
    small = compile is True or n_params <= GRAPH_MAX_PARAMS
    if backend.name == "torch" and getattr(backend.device, "type", None) == "cuda":
        return "graph" if small else None
    if backend.name == "cupy" and small and (_torch_cuda() if torch_cuda is None else torch_cuda):
        return "bridge"
    return "tape" if backend.name == "numpy" else None


@functools.cache
def _torch_cuda() -> bool:  # pragma: no cover - a GPU answers yes
    """Is torch with a CUDA device importable here (for CuPy's graphs)?"""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken install: CuPy runs its own kernels
        return False


def _replayable(opt: Any, state: dict[str, Any]) -> bool:
    """Can a compiled step refill this optimizer's scalars every step? Only
    if every number that may change between steps goes through
    :func:`xpnet._kernels.update`, as the optimizer's own class declares with
    ``compilable = True`` (the built-in optimizers; a subclass must say so
    again), and its host state advances by :func:`xpnet._kernels.host_scalars`.
    Any other optimizer runs eagerly: a traced step would keep its numbers,
    and its Python would run once, not every step."""
    if vars(type(opt)).get("compilable") is not True:  # the class itself vouches; a subclass may change anything
        return False
    try:
        seen, _ = host_scalars(opt, state)
    except Exception:
        return False
    if _rate_is_baked(opt, state, seen):
        warnings.warn(f"{type(opt).__name__} declares compilable = True, but its lr never reaches "
                      "xpnet._kernels.update as a scalar: a compiled step would keep one rate (a schedule's "
                      "would be ignored), so it trains eagerly", RuntimeWarning,
                      stacklevel=caller_stacklevel())  # fmt: skip
        return False
    return True


def _not_replayed(opt: Any) -> str:
    """Why ``opt``'s scalars cannot be replayed, for compile=True's warning:
    one that declares ``compilable`` was told it did not."""
    name = type(opt).__name__
    if vars(type(opt)).get("compilable") is not True:
        return f"{name} does not declare compilable = True: its scalars could not be replayed"
    return (f"{name} declares compilable = True, but not every number its step uses reaches "
            "xpnet._kernels.update as a scalar: its scalars could not be replayed")


def _rate_is_baked(opt: Any, state: dict[str, Any], seen: list[float]) -> bool:
    """Does another ``lr`` leave the step's scalars as they were, though the
    step keeps the rate it is given? Then it computes with the rate directly
    (no scalar through :func:`xpnet._kernels.update`, or ``g * self.lr`` in
    Python), and a traced step would keep one rate. An optimizer that sets
    its own rate from its state (a warm-up) is not baked: eager runs ignore
    a schedule's rate as well."""
    lr = getattr(opt, "lr", None)
    if not isinstance(lr, int | float) or isinstance(lr, bool):
        return False
    other, asked = copy.copy(opt), 2.0 * lr + 1.0
    try:
        other.lr = asked
        again, _ = host_scalars(other, state)
    except Exception:  # an lr that cannot be set: no schedule can change it either
        return False
    if not all(math.isfinite(v) for v in (*seen, *again)):  # a rate near float64's limit: lr / (1 - beta1) is inf
        return False  # for both rates, equal though the rate reaches the step: nothing to tell from them
    return getattr(other, "lr", asked) == asked and again == seen
