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
words, which are exact on every library (:class:`_Words`): ``uint32``
wraps modulo 2**32 by definition. Torch's ``uint32`` has no shifts or
comparisons, so torch computes in ``int32`` (two's complement, products
wrapping modulo 2**32 as on every library the tests run); an ``int64`` form
that never overflows (values below 2**32, products masked, multipliers taken
as ``c - 2**32`` when ``c >= 2**31`` so no product reaches 2**63) is there
too. All give the same words; the tests compare them on every backend.

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

__all__ = ["KINDS", "DeviceRandom", "TracedRandom", "UnknownStream", "default_kind", "key_from_state", "mix",
           "step_words"]

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


#: How a namespace's integers hold 32-bit words; see :class:`_Words`.
KINDS = ("uint32", "int32", "int64")


def default_kind(xp: Any) -> str:
    """``uint32``, except on torch, whose ``uint32`` has no shifts or
    comparisons: ``int32`` there (half the memory of ``int64``, and on the
    CPU far fewer page faults for fresh buffers)."""
    return "int32" if compat.is_torch_namespace(xp) else "uint32"


class _Words:
    """Exact 32-bit word arithmetic in one integer dtype of ``xp``:

    - ``uint32``: wraps modulo 2**32 by definition. Constants are Python
      ints (every word fits a uint32, so the array's dtype holds it), except
      on JAX, whose ints without its 64-bit mode are int32: 0-d arrays
      there. An array per constant elsewhere is a host-to-device copy each
      (seven a Dropout step, on CuPy a copy through pinned memory each).
    - ``int32``: the word's two's complement; right shifts are made logical
      by masking, products wrap modulo 2**32 (checked on every backend by
      the tests), and the unsigned order is the signed one with the sign bit
      flipped.
    - ``int64``: values kept in ``[0, 2**32)``, each product masked to 32
      bits; a multiplier ``c >= 2**31`` is taken as ``c - 2**32`` (same low
      32 bits), so no product reaches 2**63 and nothing overflows.
    """

    def __init__(self, xp: Any, kind: str, device: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"word kind must be one of {KINDS}, got {kind!r}")
        self.xp, self.kind, self.device = xp, kind, device
        self.dtype = getattr(xp, kind)

    def const(self, v: int) -> Any:
        if self.kind == "int32":
            return v - 2**32 if v >= 2**31 else v
        if self.kind == "int64" or not compat.is_jax_namespace(self.xp):
            return v
        return self.xp.asarray(v, dtype=self.dtype, device=self.device)

    def arange(self, start: int, stop: int) -> Any:
        xp = self.xp
        if compat.is_cupy_namespace(xp):
            with self.device:
                return xp.arange(start, stop, dtype=self.dtype)
        return xp.arange(start, stop, dtype=self.dtype, device=self.device)

    def shr(self, x: Any, k: int) -> Any:
        return (x >> k) & ((1 << (32 - k)) - 1) if self.kind == "int32" else x >> k

    def mul(self, x: Any, c: int, c_word: Any) -> Any:
        if self.kind == "int64":
            return (x * (c - 2**32 if c >= 2**31 else c)) & _M32  # |product| < 2**63
        return x * c_word  # modulo 2**32

    def at_least(self, x: Any, t: int) -> Any:
        """``x >= t`` as unsigned 32-bit numbers."""
        if self.kind == "int32":
            return (x ^ -(2**31)) >= t - 2**31
        return x >= self.const(t)


def fmix32(x: Any, w: _Words, c: tuple[Any, Any]) -> Any:
    """MurmurHash3's finaliser on 32-bit words (a bijection with full
    avalanche); ``c`` its multipliers as :meth:`_Words.const` gives them."""
    x = x ^ w.shr(x, 16)
    x = w.mul(x, _FMIX[0], c[0])
    x = x ^ w.shr(x, 13)
    x = w.mul(x, _FMIX[1], c[1])
    return x ^ w.shr(x, 16)


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

    def words(self, xp: Any, shape: tuple[int, ...], stream: int, device: Any, kind: str | None = None) -> Any:
        """32-bit random words of ``shape`` (rows first) for ``stream``, on
        ``device``, in the integer dtype ``kind`` (default :func:`default_kind`)."""
        return self._words(_Words(xp, kind or default_kind(xp), device), shape, stream)

    def stream_words(self, stream: int) -> tuple[int, int, int, int]:
        """The four 32-bit words that key ``stream``'s rows and columns at this
        step (hashed on the host from key, step and stream)."""
        h1, h2 = mix(self.key, self.step, stream), mix(self.key, self.step, stream, 1)
        return h1 & _M32, h1 >> 32, h2 & _M32, h2 >> 32

    def _words(self, w: _Words, shape: tuple[int, ...], stream: int) -> Any:
        return _hashed(w, shape, self.row, tuple(map(w.const, self.stream_words(stream))))

    def keep(self, xp: Any, shape: tuple[int, ...], keep_prob: float, stream: int, device: Any, kind: str | None = None) -> Any:
        """A boolean array of ``shape``, each element True with probability
        ``keep_prob`` (to within 2**-32): its word is at least ``(1 -
        keep_prob) * 2**32``, the same rule in every ``kind``."""
        w = _Words(xp, kind or default_kind(xp), device)
        return _kept(w, self._words(w, shape, stream), keep_prob)

    def __repr__(self) -> str:
        return f"DeviceRandom(key={self.key}, step={self.step}, row={self.row})"


def _hashed(w: _Words, shape: tuple[int, ...], row: int, keys: tuple[Any, ...]) -> Any:
    """The words of ``shape`` from a stream's four key words ``keys`` (as
    :meth:`_Words.const` gives them, or 0-d arrays of ``w``'s dtype), rows
    numbered from ``row``."""
    xp, (a1, a2, b1, b2) = w.xp, keys
    n, m = int(shape[0]), math.prod(int(s) for s in shape[1:])
    c = tuple(map(w.const, _FMIX))
    rows = fmix32(fmix32(w.arange(row, row + n) ^ a1, w, c) ^ a2, w, c)
    cols = fmix32(fmix32(w.arange(0, m) ^ b1, w, c) ^ b2, w, c)
    out = fmix32(xp.reshape(rows, (n, 1)) ^ xp.reshape(cols, (1, m)), w, c)
    return xp.reshape(out, tuple(shape))


def _kept(w: _Words, words: Any, keep_prob: float) -> Any:
    return w.at_least(words, min(round((1.0 - keep_prob) * 2**32), _M32))


class TracedRandom:
    """A step's random source inside a compiled program (``jax.jit``): the
    same bits as :class:`DeviceRandom`, its streams' key words taken from
    ``table`` (``(len(streams), 4)`` uint32 words, an input of the program,
    :meth:`DeviceRandom.stream_words` of each of ``streams``), so that one
    program serves every step. A stream not in ``streams``, and the
    source's ``key`` and ``step``, are refused with :class:`UnknownStream`:
    the step then runs eagerly."""

    __slots__ = ("row", "streams", "table")

    def __init__(self, table: Any, streams: tuple[int, ...], row: int = 0) -> None:
        self.table, self.streams, self.row = table, streams, int(row)

    def at_row(self, row: int) -> TracedRandom:
        return TracedRandom(self.table, self.streams, self.row + row)

    @property
    def key(self) -> int:
        raise UnknownStream("a compiled step's random source holds its streams' key words, not the run's key")

    @property
    def step(self) -> int:
        raise UnknownStream("a compiled step's random source holds its streams' key words, not the step index")

    def words(self, xp: Any, shape: tuple[int, ...], stream: int, device: Any, kind: str | None = None) -> Any:
        w = _Words(xp, kind or default_kind(xp), device)
        return _hashed(w, shape, self.row, self._keys(w, stream))

    def keep(self, xp: Any, shape: tuple[int, ...], keep_prob: float, stream: int, device: Any,
             kind: str | None = None) -> Any:  # fmt: skip
        w = _Words(xp, kind or default_kind(xp), device)
        return _kept(w, _hashed(w, shape, self.row, self._keys(w, stream)), keep_prob)

    def _keys(self, w: _Words, stream: int) -> tuple[Any, ...]:
        if stream not in self.streams:
            raise UnknownStream(f"stream {stream} is not one of the table's {self.streams}")
        xp, words = w.xp, self.table[self.streams.index(stream)]
        if w.kind == "int64":
            words = xp.astype(words, xp.int64)
        elif w.kind == "int32":  # the same 32 bits in two's complement, products wrapping modulo 2**32
            words = xp.astype(words >> 16, xp.int32) * 65536 + xp.astype(words & 0xFFFF, xp.int32)
        return tuple(words[i] for i in range(4))


def step_words(ctx: Any, base: Any, streams: tuple[int, ...]) -> tuple[Any, Any]:
    """``ctx`` as a compiled step takes it: a training step's device random
    source (Dropout's, new every step) becomes ``base``, the context the step
    was built with, and its streams' key words (``(len(streams), 4)`` uint32
    on the host, hashed there), one input of the one program or recording
    (:class:`TracedRandom` reads them); ``(ctx, None)`` for any other context."""
    rng = getattr(ctx, "rng", None)
    if type(rng) is not DeviceRandom or rng.row or ctx._replace(rng=None) != base:
        return ctx, None
    import numpy as np

    words = np.array([rng.stream_words(s) for s in streams], dtype=np.uint32).reshape(len(streams), 4)
    return None, words


class UnknownStream(LookupError):
    """A layer asked a traced source for what the program's table does not
    hold: another stream's words, or :class:`DeviceRandom`'s ``key`` or
    ``step`` (read by a custom layer): the step then runs eagerly."""
