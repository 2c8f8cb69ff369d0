"""A CUDA graph for NumPy: a training step recorded once as a list of NumPy
calls on fixed buffers, then replayed.

A small network's step on NumPy spends more time in Python (layer calls,
the loss, the optimizer's kernels, fresh arrays) than in arithmetic: the
2-2-1 XOR step runs about 40 operations of half a microsecond each, and
xpnet's layers around them cost as much again. A step is a pure function of
(parameters, buffers, optimizer state, minibatch, scalars), so its sequence
of NumPy calls is the same every step; this module records it, with every
result given a buffer of its own, and replays it as a flat loop of
``ufunc(..., out=buffer)`` calls: no layer code, no allocation.

Recording runs the step once for real on :class:`TapeArray` views (an
``ndarray`` subclass whose ufunc calls, NumPy functions, indexing and
copies are written down; views need no entry, they alias buffers that stay).
Anything a recording cannot replay raises :class:`Untraceable`, and the
step then stays eager: reading a value on the host (``float``, ``bool``,
``item``), or an array made outside the recorded calls.
:class:`~xpnet._graphstep.GraphStep` owns the buffers and the replay order,
exactly as for a CUDA graph; this module knows NumPy only.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["NumpyArrays", "Tape", "TapeArray", "Untraceable", "plain", "static_arrays", "traced"]


class Untraceable(RuntimeError):
    """The step did something a recording cannot replay."""


class _Recording(threading.local):
    def __init__(self) -> None:  # per thread
        self.ops: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] | None = None
        #: The buffers the recording made, by id: only the replay writes them.
        self.made: dict[int, np.ndarray] = {}


_REC = _Recording()


def _record(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if _REC.ops is None:
        raise Untraceable("a traced array was used outside a recording")
    _REC.ops.append((fn, args, kwargs))


def plain(x: Any) -> Any:
    """The ndarrays behind TapeArrays (the same memory), in nested lists,
    tuples and dicts; anything else as is."""
    if isinstance(x, TapeArray):
        return x.view(np.ndarray)
    if type(x) is tuple or type(x) is list:
        return type(x)(plain(v) for v in x)
    if type(x) is dict:
        return {k: plain(v) for k, v in x.items()}
    return x


def traced(x: Any) -> Any:
    """TapeArray views of the arrays in ``x`` (nested lists, tuples and
    dicts; anything else as is): the step runs on these while recording."""
    if isinstance(x, np.ndarray):
        return x if isinstance(x, TapeArray) else x.view(TapeArray)
    if type(x) is tuple or type(x) is list:
        return type(x)(traced(v) for v in x)
    if type(x) is dict:
        return {k: traced(v) for k, v in x.items()}
    return x


def static_arrays(static: dict[str, Any]) -> list[Any]:
    """A step's static arrays (:class:`~xpnet._graphstep.GraphStep`'s layout):
    parameters, buffers, then each optimizer-state list."""
    return [*static["params"], *static["buffers"], *(a for v in static["state"].values() for a in v)]


def _buffer(result: Any) -> np.ndarray:
    """A result as an array the replay can write into (0-d for a scalar)."""
    if isinstance(result, np.generic):
        result = np.asarray(result).copy()
    if type(result) is np.ndarray:
        _REC.made[id(result)] = result
        return result
    raise Untraceable(f"a NumPy call returned {type(result).__name__}, not an array")


def _escape(what: str) -> Callable[..., Any]:
    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise Untraceable(f"the step reads an array's value on the host ({what}); a recorded step cannot")

    return refuse


#: NumPy functions that answer from shapes and dtypes, not values: no entry.
_METADATA = {np.shape, np.ndim, np.size, np.result_type, np.can_cast, np.may_share_memory, np.shares_memory,
             np.iscomplexobj, np.isrealobj}  # fmt: skip


#: NumPy functions that copy their first argument (casting it): replayed as ``copyto``.
_COPIES = {f for f in (getattr(np, "astype", None), np.copy) if f is not None}  # numpy.astype: NumPy 2.1

#: NumPy functions whose result holds nothing yet: its buffer needs no refill.
_UNINITIALISED = {np.empty_like, np.empty}


class TapeArray(np.ndarray):
    """An ndarray whose computations are recorded (see the module)."""

    def __array_finalize__(self, obj: Any) -> None:
        # views (base set) alias a recorded buffer; a new array here came from no recorded call
        if obj is not None and self.base is None:
            raise Untraceable("an array was made by an ndarray method the recording does not follow")

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        fn = ufunc if method == "__call__" else getattr(ufunc, method)
        inputs = plain(inputs)
        if "out" in kwargs:
            kwargs["out"] = plain(kwargs["out"])
        if "out" in kwargs or method == "at":  # into given arrays
            result = fn(*inputs, **kwargs)
        else:
            result = fn(*inputs, **kwargs)
            outs = tuple(map(_buffer, result)) if isinstance(result, tuple) else (_buffer(result),)
            kwargs["out"] = outs if method == "__call__" else outs[0]
            result = outs if isinstance(result, tuple) else outs[0]
        _record(fn, inputs, kwargs)
        return traced(result)

    def __array_function__(self, func: Callable[..., Any], types: Any, args: Any, kwargs: Any) -> Any:
        args, kwargs = plain(args), plain(kwargs)
        result = func(*args, **kwargs)
        if func in _METADATA:
            return result
        if result is None:  # writes its arguments (copyto, put): replayed as is
            _record(func, args, kwargs)
            return None
        if isinstance(result, np.ndarray) and (func in _UNINITIALISED or _aliases(result, args)):
            return result.view(TapeArray)  # a view, or fresh memory nobody reads before writing: stays as is
        if func in _COPIES and isinstance(result, np.ndarray):  # a cast or copy: one pass, into the buffer
            return _copied(result, args[0])
        if func is np.dot and type(result) is np.ndarray and result.flags.c_contiguous and not kwargs:
            buf = _buffer(result)  # dot writes its own out (a C-contiguous array of its result type): no copy
            _record(np.dot, (*args, buf), {})
            return traced(buf)
        results = result if isinstance(result, tuple | list) else (result,)
        bufs = tuple(map(_buffer, results))
        _record(_into(func, len(bufs) if isinstance(result, tuple | list) else 0), (bufs, args), kwargs)
        return traced(type(result)(bufs) if isinstance(result, tuple | list) else bufs[0])

    def __getitem__(self, key: Any) -> Any:
        base, key = self.view(np.ndarray), plain(key)
        result = base[key]
        if isinstance(result, np.ndarray) and result.base is not None and np.may_share_memory(result, base):
            return result.view(TapeArray)
        if isinstance(result, np.generic) and _basic(key):  # a[i] of a vector: a 0-d view, not a copy
            return base[(*(key if isinstance(key, tuple) else (key,)), Ellipsis)].view(TapeArray)
        buf = _buffer(result)
        _record(_take_into, (buf, base, key), {})
        return buf.view(TapeArray)

    def __setitem__(self, key: Any, value: Any) -> None:
        base, key, value = self.view(np.ndarray), plain(key), plain(value)
        base[key] = value
        _record(base.__setitem__, (key, value), {})

    def astype(self, dtype: Any, *args: Any, **kwargs: Any) -> Any:
        base = self.view(np.ndarray)
        if not kwargs.get("copy", True) and base.dtype == np.dtype(dtype):
            return self
        return _copied(base.astype(dtype), base)

    def copy(self, order: str = "C") -> Any:
        return np.copy(self, order=order)

    __float__ = _escape("float")
    __int__ = _escape("int")
    __index__ = _escape("index")
    __bool__ = _escape("bool")
    __complex__ = _escape("complex")
    item = _escape("item")
    tolist = _escape("tolist")
    tobytes = _escape("tobytes")


def _copied(result: np.ndarray, src: Any) -> TapeArray:
    """``result``, a cast or copy of ``src`` just made, as a buffer the
    replay refills with one ``copyto``."""
    buf = _buffer(result)
    _record(np.copyto, (buf, src), {"casting": "unsafe"})
    return buf.view(TapeArray)


def _aliases(result: np.ndarray, args: Any) -> bool:
    """Is ``result`` a view of one of the arrays among ``args``?"""
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    arrays += [a for seq in args if isinstance(seq, tuple | list) for a in seq if isinstance(a, np.ndarray)]
    if any(result is a for a in arrays):  # the argument itself (astype to its own dtype without a copy)
        return True
    return result.base is not None and any(np.may_share_memory(result, a) for a in arrays)


def _basic(key: Any) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, int | slice) or k is Ellipsis or k is None for k in keys)


def _into(func: Callable[..., Any], n: int) -> Callable[..., None]:
    """Replay a NumPy function's result into its recorded buffer(s)."""

    def replay(bufs: tuple[np.ndarray, ...], args: Any, **kwargs: Any) -> None:
        result = func(*args, **kwargs)
        for buf, r in zip(bufs, result if n else (result,)):
            np.copyto(buf, r)

    return replay


def _take_into(buf: np.ndarray, base: np.ndarray, key: Any) -> None:
    np.copyto(buf, base[key])


class Tape:
    """The "graph" of :class:`~xpnet._graphstep.GraphStep` on NumPy:
    ``capture(fn, static)`` runs ``fn`` once, recording, then puts the
    static arrays back as they were (as a CUDA graph's capture changes
    nothing); ``replay()`` runs the recorded calls."""

    def capture(self, fn: Callable[[], None], static: dict[str, Any]) -> None:
        arrays = static_arrays(static)
        snapshot = [a.copy() for a in arrays]
        ops: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
        made: dict[int, np.ndarray] = {}
        _REC.ops, _REC.made = ops, made
        try:
            fn()
        finally:
            _REC.ops, _REC.made = None, {}
            for a, s in zip(arrays, snapshot):
                np.copyto(a, s)
        self.ops = [_positional(fn, args, kwargs) for fn, args, kwargs in ops]
        self.nbytes = sum(b.nbytes for b in made.values())  # the buffers the recording made

    def replay(self) -> None:
        for fn, args in self.ops:
            fn(*args)


def _positional(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """An entry as ``fn(*args)``: keywords cost a ufunc call about 10% on
    small arrays. A ufunc's ``out`` goes after its inputs, a reduction's
    keywords in their places, and a Python number becomes a 0-d array of
    the dtype it would be cast to anyway (NumPy casts a Python scalar to the
    array operand's dtype), so it is not converted again every call."""
    if isinstance(fn, np.ufunc) and set(kwargs) == {"out"} and fn not in _OUT_BY_KEYWORD:
        outs = kwargs["out"] if isinstance(kwargs["out"], tuple) else (kwargs["out"],)
        if fn is np.matmul and _dot_agrees(*args, *outs):
            return np.dot, (*args, *outs)
        return fn, (*_numbers_as_arrays(args, outs), *outs)
    if getattr(fn, "__name__", None) == "reduce" and set(kwargs) <= {"axis", "dtype", "out", "keepdims"}:
        return fn, (*args, kwargs.get("axis", 0), kwargs.get("dtype"), kwargs.get("out"), kwargs.get("keepdims", False))
    return (functools.partial(fn, **kwargs) if kwargs else fn), args


def _dot_agrees(a: Any, b: Any, out: Any) -> bool:
    """May ``numpy.dot`` replay this matrix product? On small matrices it
    costs half of ``matmul`` (0.4 against 0.75 us for (4, 2) @ (2, 2)).
    Both hand 2-D floating-point products to BLAS; the recording takes it
    only where ``dot`` gives this product's recorded result to the bit."""
    ok = (
        isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.ndim == b.ndim == 2
        and a.dtype == b.dtype == out.dtype and a.dtype.kind == "f" and out.flags.c_contiguous
    )  # fmt: skip
    return ok and np.array_equal(np.dot(a, b), out)


#: Ufuncs whose positional ``out`` NumPy deprecates.
_OUT_BY_KEYWORD = {np.maximum, np.minimum, np.fmax, np.fmin}


def _numbers_as_arrays(args: tuple[Any, ...], outs: tuple[Any, ...]) -> tuple[Any, ...]:
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    dtypes = {a.dtype for a in arrays} | {o.dtype for o in outs}
    if len(dtypes) != 1 or next(iter(dtypes)).kind != "f":
        return args
    dtype = next(iter(dtypes))
    return tuple(np.asarray(a, dtype=dtype) if type(a) is float or type(a) is int else a for a in args)


class NumpyArrays:
    """How :class:`~xpnet._graphstep.GraphStep` copies NumPy arrays."""

    @staticmethod
    def own(arrays: list[Any], held: set[int]) -> bool:
        """Are these distinct buffers the recording made itself (whole, not
        slices), which nothing but the replay reads after the step? Then an
        update may write over them (``held``: the step's inputs, unused here)."""
        bases = [a.base for a in arrays if isinstance(a, TapeArray)]
        return (
            len(bases) == len(arrays)
            and len({id(b) for b in bases}) == len(bases)
            and all(_REC.made.get(id(b)) is b and a.shape == b.shape and a.strides == b.strides
                    for a, b in zip(arrays, bases))
        )  # fmt: skip

    @staticmethod
    def clone(a: Any) -> np.ndarray:
        return a.copy() if type(a) is np.ndarray else np.array(plain(a), copy=True)

    @staticmethod
    def copy(dst: Any, src: Any) -> None:
        np.copyto(dst, src)

    @staticmethod
    def slots(like: Any, n: int) -> np.ndarray:
        return np.zeros((n,), dtype=like.dtype)

    @staticmethod
    def fill(slots: np.ndarray, values: list[float]) -> None:
        slots[...] = values

    @staticmethod
    def words(like: Any, words: np.ndarray) -> np.ndarray:
        """A static array for a step's random key words (uint32, as hashed)."""
        return np.zeros(words.shape, dtype=np.uint32)

    @staticmethod
    def put_words(dst: np.ndarray, words: np.ndarray) -> None:
        np.copyto(dst, words)
