"""Counter-based random bits on the device: the same bits on every backend.

Dropout needs fresh random numbers every step, on the device, without a host
transfer and without any library's own random state (``torch.manual_seed``,
``cupy.random``), which would give other numbers on every backend. Here the
bits are a hash of counters, as in JAX's threefry (a key and a counter in,
bits out, no hidden state): a step's :class:`DeviceRandom` holds a key and
the global step index; a layer asks it for an array of bits with its stream
number (``Layer.stream``), and each element's bits are a hash of (key, step,
stream, row, column).

The hash is MurmurHash3's 32-bit finaliser (``fmix32``: shifts, xors and two
multiplications), written with the namespace's integer operations on 32-bit
words. They are exact on every library: ``uint32`` wraps modulo 2**32 by
definition; torch, whose ``uint32`` lacks arithmetic, computes in ``int64``
with every value kept below 2**32 and each product masked to 32 bits, the
multiplier taken as ``c - 2**32`` when ``c >= 2**31`` so that no product
reaches 2**63 (the low 32 bits of ``x * c`` and ``x * (c - 2**32)`` are the
same). Both paths give the same words; the tests compare them.

To keep the work per element small, rows and columns are hashed apart (short
vectors, two rounds each, keyed by four 32-bit words that the host derives
from (key, step, stream) with SplitMix64), and each element is one more round
over its row's and its column's words: ``fmix32(row_i ^ col_j)``. The global
row index is ``row + i``, so a process of a distributed fit that holds rows
``lo..hi`` of the global minibatch draws exactly those rows' bits
(:meth:`DeviceRandom.at_row`).
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat as compat

__all__ = ["DeviceRandom", "key_from_state", "mix"]

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_FMIX = (0x85EBCA6B, 0xC2B2AE35)


# --------------------------------------------------------------------------
# Host side: Python ints, exact
# --------------------------------------------------------------------------


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def mix(*words: int) -> int:
    """A 64-bit hash of non-negative ints of any size (SplitMix64, chained)."""
    h = 0
    for w in words:
        if w < 0:
            raise ValueError(f"mix takes non-negative ints, got {w}")
        while True:  # 64 bits at a time, and at least once
            h = _splitmix64(h ^ (w & _M64))
            w >>= 64
            if not w:
                break
    return h


def key_from_state(state: Any) -> int:
    """A 64-bit key from a NumPy bit generator's state dict (its ints in key
    order): the same state gives the same key on every machine."""
    return mix(*_ints(state))


def _ints(value: Any):
    if isinstance(value, dict):
        for k in sorted(value):
            yield from _ints(value[k])
    elif isinstance(value, bool):
        yield int(value)
    elif isinstance(value, int):
        yield value if value >= 0 else value & _M64


# --------------------------------------------------------------------------
# Device side: the namespace's integer operations
# --------------------------------------------------------------------------


def word_dtype(xp: Any) -> Any:
    """``uint32`` where the library computes with it; ``int64`` on torch."""
    return xp.int64 if compat.is_torch_namespace(xp) else xp.uint32


def _mul(x: Any, c: Any, wide: bool) -> Any:
    if not wide:
        return x * c  # uint32: modulo 2**32
    return (x * (c - 2**32 if c >= 2**31 else c)) & _M32  # |product| < 2**63


def fmix32(x: Any, wide: bool, c: tuple[Any, Any] = _FMIX) -> Any:
    """MurmurHash3's finaliser on 32-bit words (a bijection with full
    avalanche); ``c`` its multipliers (as arrays on the ``uint32`` path)."""
    x = x ^ (x >> 16)
    x = _mul(x, c[0], wide)
    x = x ^ (x >> 13)
    x = _mul(x, c[1], wide)
    return x ^ (x >> 16)


def _arange(xp: Any, start: int, stop: int, dtype: Any, device: Any) -> Any:
    if compat.is_cupy_namespace(xp):
        with device:  # some CuPy versions ignore device= (array-api-compat#337)
            return xp.arange(start, stop, dtype=dtype)
    return xp.arange(start, stop, dtype=dtype, device=device)


def _word(xp: Any, value: int, device: Any) -> Any:
    if compat.is_cupy_namespace(xp):
        with device:
            return xp.asarray(value, dtype=xp.uint32)
    return xp.asarray(value, dtype=xp.uint32, device=device)


class DeviceRandom:
    """One training step's random source: ``key`` (an int from the run's
    seed), ``step`` (the global step index) and ``row`` (the global index of
    the first row this process holds; 0 outside distributed fits).

    Pure: it holds three ints and draws nothing until asked, and the same
    request gives the same bits."""

    __slots__ = ("key", "row", "step")

    def __init__(self, key: int, step: int, row: int = 0) -> None:
        self.key, self.step, self.row = int(key), int(step), int(row)

    def at_row(self, row: int) -> DeviceRandom:
        """This source for a share of the rows that starts at global row ``row``."""
        return DeviceRandom(self.key, self.step, self.row + row)

    def words(self, xp: Any, shape: tuple[int, ...], stream: int, device: Any, wide: bool | None = None) -> Any:
        """32-bit random words of ``shape`` (rows first) for ``stream``, on
        ``device``: ``uint32`` (``int64`` on torch, or when ``wide``)."""
        wide = compat.is_torch_namespace(xp) if wide is None else wide
        dtype = xp.int64 if wide else xp.uint32
        n, m = int(shape[0]), math.prod(int(s) for s in shape[1:])
        h1, h2 = mix(self.key, self.step, stream), mix(self.key, self.step, stream, 1)
        # uint32 constants as arrays: JAX reads a Python int as int32 without its 64-bit mode
        a1, a2, b1, b2, *c = (v if wide else _word(xp, v, device) for v in (h1 & _M32, h1 >> 32, h2 & _M32, h2 >> 32, *_FMIX))
        rows = fmix32(fmix32(_arange(xp, self.row, self.row + n, dtype, device) ^ a1, wide, c) ^ a2, wide, c)
        cols = fmix32(fmix32(_arange(xp, 0, m, dtype, device) ^ b1, wide, c) ^ b2, wide, c)
        out = fmix32(xp.reshape(rows, (n, 1)) ^ xp.reshape(cols, (1, m)), wide, c)
        return xp.reshape(out, tuple(shape))

    def keep(self, xp: Any, shape: tuple[int, ...], keep_prob: float, stream: int, device: Any) -> Any:
        """A boolean array of ``shape``, each element True with probability
        ``keep_prob`` (to within 2**-32)."""
        threshold = min(round((1.0 - keep_prob) * 2**32), _M32)
        words = self.words(xp, shape, stream, device)
        return words >= (threshold if words.dtype == xp.int64 else _word(xp, threshold, device))

    def __repr__(self) -> str:
        return f"DeviceRandom(key={self.key}, step={self.step}, row={self.row})"
