"""Elementwise update kernels: an optimizer's per-parameter rule, run pure,
fused, or in place into arrays its caller donates.

The math stays one code path. An optimizer writes its per-parameter update
once, as a :class:`Kernel` (a function of ``xp``, arrays and scalars using
operators and namespace functions), and :func:`update` runs it:

- **pure** (JAX, array-api-strict, read-only or borrowed arrays): the
  function itself, on the library's namespace; new arrays, nothing written.
- **fused** (CuPy, :mod:`xpnet._fused`): one generated ``ElementwiseKernel``
  per kernel and dtype, so a parameter's whole update is one launch instead
  of one per operation.
- **in place** (NumPy, torch, :mod:`xpnet._inplace`): when the caller *donates* the arrays (a
  :class:`Donated` list: "I will not read these again"), the traced
  operations run with ``out=`` into the donated arrays and a few scratch
  buffers, so a step allocates nothing and each operation is one pass.
- **all parameters at once** (torch on CUDA, eager, :mod:`xpnet._foreach`):
  each traced operation is one of torch's multi-tensor ``_foreach_*``
  operations over every parameter, as ``torch.optim`` does by default on
  CUDA: an SGD step is two launches instead of two per parameter. Pure (new tensors), the same
  operations as the per-tensor path (to the bit on the CPU), and not a
  compilation: ``fit(compile=False)`` keeps it.

This module traces kernels and picks the way; only :mod:`xpnet._inplace`
writes, and only into :class:`Donated` lists; which arrays a step may donate
is :class:`xpnet._trainstep.TrainStep`'s to say.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat as compat
import numpy as np

from ._foreach import _foreach, _foreach_applies
from ._fused import _cupy_call, _cupy_kernel
from ._inplace import _run_in_place, _same_layout, _writable

__all__ = ["Donated", "Kernel", "array_xp", "host_scalars", "update"]


# --------------------------------------------------------------------------
# Kernels: an elementwise update, traced once into a list of operations
# --------------------------------------------------------------------------


class Kernel:
    """An elementwise update ``fn(xp, *arrays, *scalars) -> tuple of arrays``.

    ``fn`` may use ``+ - * /``, unary ``-``, ``xp.sqrt``, ``xp.maximum`` and
    ``xp.minimum``, Python numbers and the scalars. Output ``0`` may be
    written over array ``0`` and output ``j >= 1`` over array ``j + 1`` (an
    optimizer's ``p, g, *state -> p', *state'``). ``name`` says which in
    messages and names the generated GPU kernel."""

    def __init__(self, fn: Callable[..., tuple[Any, ...]], n_arrays: int, n_scalars: int, name: str) -> None:
        self.fn, self.n_arrays, self.n_scalars, self.name = fn, n_arrays, n_scalars, name

    @functools.cached_property
    def tape(self) -> _Tape:
        return _trace(self)

    def home(self, j: int) -> int:
        """The input array whose buffer output ``j`` may take."""
        return 0 if j == 0 else j + 1

    def __repr__(self) -> str:
        return f"Kernel({self.name!r})"


class _Tape:
    """The traced operations: ``ops[k] = (name, operands)``, where an operand
    is ``("a", i)`` (input array), ``("s", i)`` (scalar), ``("c", value)``
    (constant) or ``("v", k)`` (the result of op ``k``); ``array[k]`` says
    whether op ``k`` yields an array (else a scalar, computed on the host)."""

    def __init__(self) -> None:
        self.ops: list[tuple[str, tuple[tuple[str, Any], ...]]] = []
        self.array: list[bool] = []
        self.outputs: list[tuple[str, Any]] = []


class _Sym:
    """A traced value."""

    __slots__ = ("ref", "tape", "is_array")

    def __init__(self, tape: _Tape, ref: tuple[str, Any], is_array: bool) -> None:
        self.tape, self.ref, self.is_array = tape, ref, is_array

    def _op(self, name: str, *args: Any) -> _Sym:
        refs, is_array = [], False
        for a in args:
            if isinstance(a, _Sym):
                refs.append(a.ref)
                is_array |= a.is_array
            elif isinstance(a, int | float) and not isinstance(a, bool):
                refs.append(("c", float(a)))
            else:
                raise TypeError(f"a kernel may combine arrays, its scalars and Python numbers, got {type(a).__name__}")
        self.tape.ops.append((name, tuple(refs)))
        self.tape.array.append(is_array)
        return _Sym(self.tape, ("v", len(self.tape.ops) - 1), is_array)

    def __add__(self, o): return self._op("add", self, o)  # noqa: E704
    def __radd__(self, o): return self._op("add", o, self)  # noqa: E704
    def __sub__(self, o): return self._op("sub", self, o)  # noqa: E704
    def __rsub__(self, o): return self._op("sub", o, self)  # noqa: E704
    def __mul__(self, o): return self._op("mul", self, o)  # noqa: E704
    def __rmul__(self, o): return self._op("mul", o, self)  # noqa: E704
    def __truediv__(self, o): return self._op("div", self, o)  # noqa: E704
    def __rtruediv__(self, o): return self._op("div", o, self)  # noqa: E704
    def __neg__(self): return self._op("neg", self)  # noqa: E704


class _SymNamespace:
    """The ``xp`` a kernel sees while it is traced."""

    @staticmethod
    def sqrt(x: _Sym) -> _Sym:
        return x._op("sqrt", x)

    @staticmethod
    def maximum(x: Any, y: Any) -> _Sym:
        return (x if isinstance(x, _Sym) else y)._op("maximum", x, y)

    @staticmethod
    def minimum(x: Any, y: Any) -> _Sym:
        return (x if isinstance(x, _Sym) else y)._op("minimum", x, y)


def _trace(kernel: Kernel) -> _Tape:
    tape = _Tape()
    arrays = [_Sym(tape, ("a", i), True) for i in range(kernel.n_arrays)]
    scalars = [_Sym(tape, ("s", i), False) for i in range(kernel.n_scalars)]
    outs = kernel.fn(_SymNamespace(), *arrays, *scalars)
    for out in outs:
        if not isinstance(out, _Sym) or out.ref[0] != "v" or not out.is_array:
            raise TypeError(f"{kernel!r}: every output must be an array computed by the kernel")
    tape.outputs = [o.ref for o in outs]
    if len(set(tape.outputs)) != len(tape.outputs):
        raise TypeError(f"{kernel!r}: two outputs are the same value")
    return tape


# --------------------------------------------------------------------------
# update: run a kernel for every parameter, the best way the arrays allow
# --------------------------------------------------------------------------


#: Arrays smaller than this (elements) are updated by new arrays even when
#: donated: allocating a few kilobytes costs less than the bookkeeping of
#: ``out=``, and fresh pages (the cost that in-place updates avoid) only
#: come with large arrays. A captured CUDA graph writes in place at any size.
IN_PLACE_MIN = 2**15


@dataclasses.dataclass(frozen=True)
class _Mode:
    """How :func:`update` runs in this context: ``fuse`` (CuPy kernels;
    ``fit(compile=False)`` turns it off) and ``scalars`` (a compiled step's
    dynamic scalars, or ``None``)."""

    fuse: bool = True
    scalars: _Scalars | None = None
    in_place_min: int = IN_PLACE_MIN
    #: All parameters per operation (torch's ``_foreach_*``): ``None`` on CUDA tensors, or forced on or off.
    foreach: bool | None = None


_MODE: contextvars.ContextVar[_Mode] = contextvars.ContextVar("xpnet_update_mode", default=_Mode())


class _mode:
    """A block with some of :class:`_Mode`'s settings changed. A class, and
    the changed modes without scalars remembered: an eager step enters one
    per update (``fit(compile=False)``), and ``contextmanager`` with
    ``dataclasses.replace`` cost 2 us of it, 1 us this way."""

    __slots__ = ("changes", "token")

    def __init__(self, **changes: Any) -> None:
        self.changes = changes

    def __enter__(self) -> None:
        mode = _MODE.get()
        if mode.scalars is None and "scalars" not in self.changes:  # a few combinations in all
            key = (mode, *self.changes.items())
            new = _CHANGED.get(key)
            if new is None:
                new = _CHANGED[key] = dataclasses.replace(mode, **self.changes)
        else:  # a compiled step's scalars: its own
            new = dataclasses.replace(mode, **self.changes)
        self.token = _MODE.set(new)

    def __exit__(self, *exc: Any) -> None:
        _MODE.reset(self.token)


_CHANGED: dict[tuple, _Mode] = {}


class _Scalars:
    """The scalars of a step's :func:`update` calls, in call order. With
    ``slots`` (a device vector, or a traced one), each call's scalars are
    replaced by its entries: a CUDA graph or a ``jax.jit`` trace then reads
    them from memory the next step refills, instead of baking in numbers."""

    def __init__(self, slots: Any = None) -> None:
        self.slots, self.seen = slots, []

    def take(self, scalars: Sequence[Any]) -> tuple[Any, ...]:
        start = len(self.seen)
        self.seen.extend(float(s) for s in scalars)
        if self.slots is None:
            return tuple(scalars)
        if len(self.seen) > self.slots.shape[0]:
            raise RuntimeError("the optimizer's scalars changed in number since the step was compiled")
        return tuple(self.slots[start + i] for i in range(len(scalars)))


def host_scalars(opt: Any, state: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
    """The next step's scalars (learning-rate corrections and the like) and
    the optimizer's next host state (Adam's step count), from one call of
    ``opt.step`` on no parameters: Python only, no array touched. This is
    how a compiled step keeps its host scalars exact without a sync."""
    recorder = _Scalars()
    empty = {k: ([] if isinstance(v, list) else v) for k, v in state.items()}
    with _mode(scalars=recorder):
        _, new_state = opt.step([], [], empty, decay=None)
    return recorder.seen, {k: v for k, v in new_state.items() if not isinstance(v, list)}


class Donated(list):
    """A list of arrays its holder gives up: an update may write its results
    over them. ``scratch`` is the holder's pool of temporary buffers, reused
    from step to step."""

    def __init__(self, items: Sequence[Any], scratch: dict | None = None) -> None:
        super().__init__(items)
        self.scratch = {} if scratch is None else scratch


def update(
    kernels: Sequence[Kernel], columns: Sequence[Sequence[Any]], scalars: Sequence[Any]
) -> tuple[list[Any], ...]:
    """Apply ``kernels[i]`` to ``[col[i] for col in columns]`` for every
    parameter ``i``; returns one list per kernel output.

    ``columns`` are ``params, grads, *state``; the outputs are ``params',
    *state'``. A column that is a :class:`Donated` list may receive its
    outputs in place (NumPy, torch); anything else is never written. Inside
    a compiled step the scalars are swapped for the step's dynamic ones
    (:class:`_Scalars`), so a captured or traced step serves every step."""
    mode = _MODE.get()
    if mode.scalars is not None:
        scalars = mode.scalars.take(scalars)
    n_out = len(columns) - 1
    _check_columns(columns)
    if not kernels:
        return tuple([] for _ in range(n_out))
    if kernels[0].n_arrays != len(columns):  # the variants of one rule take the same arrays
        raise TypeError(f"{kernels[0]!r} takes {kernels[0].n_arrays} arrays, got {len(columns)} columns")
    xp, on_cupy = _namespace(columns[0][0])  # one library for all parameters
    if mode.scalars is None and mode.foreach is not False and _foreach_applies(columns[0][0], mode.foreach, scalars):
        return _foreach(kernels, columns, scalars)
    donated = [type(col) is Donated for col in columns]
    if not (on_cupy and mode.fuse) and True not in donated:  # pure: the plain calls
        try:
            if n_out == 1:  # plain SGD: (params, grads) -> params' (small networks feel each call)
                return ([kernel.fn(xp, p, g, *scalars)[0] for kernel, p, g in zip(kernels, *columns)],)
            results = [kernel.fn(xp, *arrays, *scalars) for kernel, *arrays in zip(kernels, *columns)]
        except TypeError:
            _refuse_libraries(columns)
            raise
        return tuple(map(list, zip(*results)))
    scratch = next((col.scratch for col in columns if isinstance(col, Donated)), None)
    outs: list[list[Any]] = [[] for _ in range(n_out)]
    for i, kernel in enumerate(kernels):
        results = _run(kernel, [col[i] for col in columns], donated, scratch, scalars, mode, xp)
        for j, r in enumerate(results):
            outs[j].append(r)
    return tuple(outs)


def _check_columns(columns: Sequence[Sequence[Any]]) -> None:
    """Refuse gradients or state arrays that do not pair one for one, shape
    for shape, with the parameters: the kernels zip them, so one gradient
    too few returned one parameter fewer, and a gradient of another shape
    broadcast into a parameter of a new shape, silently (a hand-written
    loop's ``opt.step``; fit's gradients always fit). Shapes only: no value
    is read, so nothing syncs, and a traced step checks them once. The
    common case is one list comparison per column (each eager step pays it);
    an entry with no shape is looked for only once reading one failed."""
    try:
        shapes = [p.shape for p in columns[0]]
        for column in columns[1:]:
            if [a.shape for a in column] != shapes:
                _refuse_columns(columns)
    except AttributeError:
        _refuse_columns(columns)
        raise


def _refuse_columns(columns: Sequence[Sequence[Any]]) -> None:
    """The ``ValueError`` naming the first column that does not pair with the parameters."""
    _refuse_non_arrays(columns)
    params = columns[0]
    for k, column in enumerate(columns[1:], 1):
        what = "gradients" if k == 1 else f"optimizer state arrays (state list {k - 1})"
        if len(column) != len(params):
            raise ValueError(f"optimizer step: {len(params)} parameters but {len(column)} {what}; it takes one "
                             "per parameter, in the parameters' order")  # fmt: skip
        for i, (p, a) in enumerate(zip(params, column)):
            if a.shape != p.shape:
                raise ValueError(f"optimizer step: parameter {i} has shape {tuple(p.shape)} but its entry of the "
                                 f"{what} has shape {tuple(a.shape)}; each must have its parameter's shape")


def _refuse_non_arrays(columns: Sequence[Sequence[Any]]) -> None:
    """The ``ValueError`` naming the first entry that is no array: ``Network.gradients``'
    per-layer tuples, or the ``None`` it gives for a missing bias, passed to
    a hand-written loop's ``opt.step`` failed with "'tuple' object has no
    attribute 'shape'"."""
    names = ["parameter", "gradient"] + [f"optimizer state array (state list {k})" for k in range(1, len(columns) - 1)]
    for name, column in zip(names, columns):
        for i, a in enumerate(column):
            if not hasattr(a, "shape"):
                hint = ("; Network.gradients gives one tuple per layer ((dW, db), db None without a bias): pass "
                        "its arrays as one flat list in the parameters' order, leaving out the Nones"
                        if name == "gradient" and (a is None or isinstance(a, tuple)) else "")  # fmt: skip
                raise ValueError(f"optimizer step: {name} {i} is a {type(a).__name__}, not an array; step takes "
                                 f"lists of arrays, one per parameter{hint}")  # fmt: skip


def _refuse_libraries(columns: Sequence[Sequence[Any]]) -> None:
    """The ``ValueError`` for an entry of another library than its parameter
    (looked for once an update failed with a ``TypeError``): torch gradients
    for NumPy parameters failed in the libraries' words ("unsupported operand
    type(s) for -: 'numpy.ndarray' and 'Tensor'")."""
    names = ["gradient"] + [f"optimizer state array (state list {k})" for k in range(1, len(columns) - 1)]
    for name, column in zip(names, columns[1:]):
        for i, (p, a) in enumerate(zip(columns[0], column)):
            lib, plib = (type(x).__module__.split(".")[0].replace("jaxlib", "jax") for x in (a, p))
            if lib != plib:
                raise ValueError(f"optimizer step: {name} {i} is a {lib} {type(a).__name__}, parameter {i} a {plib} "
                                 f"{type(p).__name__}; step takes the parameters, gradients and state of one library "
                                 "(those of one network, or moved with its backend)")  # fmt: skip


def _run(kernel: Kernel, arrays: list[Any], donated: list[bool], scratch: Any, scalars: Sequence[Any], mode: _Mode,
         xp: Any):  # fmt: skip
    first = arrays[0]
    if mode.fuse and compat.is_cupy_array(first):
        fused = _cupy_kernel(kernel, first.dtype)
        if fused is not None:
            return _cupy_call(fused, kernel, arrays, scalars, xp)
    elif scratch is not None and math.prod(first.shape) >= mode.in_place_min and _same_layout(arrays):
        writable = [d and _writable(a) for d, a in zip(donated, arrays)]
        if any(writable):
            return _run_in_place(kernel, arrays, writable, scalars, scratch)
    return kernel.fn(xp, *arrays, *scalars)


def array_xp(a: Any) -> Any:
    """The namespace xpnet computes with on ``a``'s library (see :func:`_namespace`)."""
    return _namespace(a)[0]


def _namespace(a: Any) -> tuple[Any, bool]:
    """The namespace of a pure update (xpnet's own for torch: numbers as
    kernel arguments, no host-to-device copies; xpnet's for NumPy, with its
    fast sum; else array-api-compat's) and whether ``a`` is a CuPy array;
    remembered per array type (the lookups cost microseconds per call,
    which small networks feel)."""
    found = _NAMESPACES.get(type(a))
    if found is None:
        if compat.is_torch_array(a):
            from ._torch_namespace import xp
        elif type(a) is np.ndarray:
            from ._numpy_namespace import xp
        else:
            xp = compat.array_namespace(a)
        found = (xp, compat.is_cupy_array(a))
        if not compat.is_jax_array(a):  # JAX's tracers change type; they are looked up every time
            _NAMESPACES[type(a)] = found
    return found


_NAMESPACES: dict[type, tuple[Any, bool]] = {}
