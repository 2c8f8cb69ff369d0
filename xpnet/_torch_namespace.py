"""The torch namespace xpnet computes with: array-api-compat's, with
``maximum``, ``minimum`` and ``logaddexp`` taking a Python number without
first copying it to the device, and ``matmul`` without its dtype checks.

array-api-compat turns the number in ``maximum(v, 0.0)`` into a tensor with
``torch.asarray(0.0, device=v.device)``: on a GPU that is a host-to-device
copy from pageable memory, which waits for the stream (a hidden sync per
ReLU layer per step) and cannot be captured in a CUDA graph. ``torch.clamp``
takes the number as a kernel argument instead, and ``logaddexp`` gets a
0-d tensor filled on the device. Same values (``clamp`` propagates NaN as
``maximum`` does). array-api-compat's ``matmul`` first checks the two dtypes
for promotion, 2.8 us per call on the CPU (a (4, 2) @ (2, 2) product costs
1 us), three times per layer per step; two tensors of one dtype go straight
to ``torch.matmul``. ``sum`` with one axis (or all), and ``max`` with one, go straight to
``torch.sum`` and ``torch.amax``, and ``finfo`` is remembered per dtype: their wrappers cost
per step what a small network's operations do. Two names are xpnet's own: :func:`affine`, a layer's
``x @ w + b`` as one ``addmm``, and :func:`keep_positive`, ReLU's backward
as one kernel. Everything else is array-api-compat's.
"""

from __future__ import annotations

import types
from typing import Any

import array_api_compat.torch as _compat
import torch

from ._derived_namespace import derived

_NUMBER = (int, float)
#: ReLU's backward kernel: the overload's own builtin where it has one (the packet's lookup costs a
#: microsecond a call, the overload's Python ``__call__`` a third of one).
_THRESHOLD_OVERLOAD = torch.ops.aten.threshold_backward.default
_THRESHOLD_BACKWARD = getattr(_THRESHOLD_OVERLOAD, "_op", _THRESHOLD_OVERLOAD)


def _number(x: Any) -> bool:
    return isinstance(x, _NUMBER) and not isinstance(x, bool)


def _float_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _clamping(clamp: Any, general: Any) -> Any:
    """``maximum`` (``clamp=torch.clamp_min``) or ``minimum``
    (``torch.clamp_max``): a float tensor against a Python number as one
    clamp (a ReLU per layer per step), anything else as array-api-compat's
    ``general``."""

    def elementwise(x1: Any, x2: Any, /) -> Any:
        if type(x2) is float and type(x1) is torch.Tensor and x1.is_floating_point():  # ReLU's: no calls to check
            return clamp(x1, x2)
        if _float_tensor(x1) and _number(x2):
            return clamp(x1, x2)
        if _float_tensor(x2) and _number(x1):
            return clamp(x2, x1)
        return general(x1, x2)

    elementwise.__name__ = general.__name__
    return elementwise


maximum = _clamping(torch.clamp_min, _compat.maximum)
minimum = _clamping(torch.clamp_max, _compat.minimum)


def logaddexp(x1: Any, x2: Any, /) -> Any:
    if _float_tensor(x1) and _number(x2):
        return torch.logaddexp(x1, x1.new_full((), x2))
    if _float_tensor(x2) and _number(x1):
        return torch.logaddexp(x2.new_full((), x1), x2)
    return _compat.logaddexp(x1, x2)


def matmul(x1: Any, x2: Any, /) -> Any:
    if isinstance(x1, torch.Tensor) and isinstance(x2, torch.Tensor) and x1.dtype == x2.dtype:
        return torch.matmul(x1, x2)
    return _compat.matmul(x1, x2)


def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False, **kwargs: Any) -> Any:
    """array-api-compat's, with its common calls (one axis, or all axes
    without ``keepdims``, no dtype) straight to ``torch.sum``, the call it
    makes: its own wrapper costs 0.5 us, five times per step."""
    if dtype is None and not kwargs and isinstance(x, torch.Tensor):
        if type(axis) is int:
            return torch.sum(x, axis, keepdims)
        if axis is None and not keepdims:
            return torch.sum(x)
    return _compat.sum(x, axis=axis, dtype=dtype, keepdims=keepdims, **kwargs)


def max(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
    """array-api-compat's, with one axis straight to ``torch.amax``, the call
    it makes (softmax's row maximum, every step)."""
    if type(axis) is int and isinstance(x, torch.Tensor):
        return torch.amax(x, axis, keepdims)
    return _compat.max(x, axis=axis, keepdims=keepdims)


def finfo(type_: Any, /) -> Any:
    """array-api-compat's, remembered per dtype (a loss asks for its dtype's
    ``eps`` every step; the lookup through its wrapper costs 0.6 us)."""
    if isinstance(type_, torch.dtype):
        found = _FINFO.get(type_)
        if found is None:
            found = _FINFO[type_] = _compat.finfo(type_)
        return found
    return _compat.finfo(type_)


_FINFO: dict[Any, Any] = {}


def affine(x: Any, w: Any, b: Any, /) -> Any:
    """``x @ w + b`` (xpnet's own, not the standard's; see
    :func:`xpnet._xp.affine`): for a 2-D ``x`` and a bias row of one dtype,
    ``torch.addmm``, which adds the bias in the product's epilogue (on CUDA
    one launch and one pass over the output fewer, as ``nn.Linear``);
    None otherwise."""
    if (
        isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor) and isinstance(b, torch.Tensor)
        and x.ndim == 2 and w.ndim == 2 and b.ndim == 1 and x.dtype == w.dtype == b.dtype
    ):  # fmt: skip
        return torch.addmm(b, x, w)
    return None


def keep_positive(v: Any, dy: Any, /) -> Any:
    """``dy`` where ``v > 0``, else 0 (xpnet's own; see
    :func:`xpnet._xp.keep_positive`): for two tensors of one shape and
    dtype, the kernel torch's autograd runs for ReLU (``threshold_backward``),
    one pass instead of the mask's three (compare, cast, multiply): 1024x1024
    float32 on one CPU core 0.15 ms against 1.3 ms. A select, so a NaN in
    ``v`` lets ``dy`` through (the forward output there is NaN already).
    None otherwise."""
    if isinstance(v, torch.Tensor) and isinstance(dy, torch.Tensor) and v.shape == dy.shape and v.dtype == dy.dtype:
        return _THRESHOLD_BACKWARD(dy, v, 0)
    return None


def namespace() -> types.ModuleType:
    """A module with every name of ``array_api_compat.torch``, those seven
    replaced, and ``xpnet_extensions``: :func:`affine` and
    :func:`keep_positive` by name (a name no other library's namespace has,
    so :mod:`xpnet._xp` never mistakes one of theirs for ours). It keeps
    that module's name, so that array-api-compat's ``is_torch_namespace``
    (how xpnet recognises libraries) still says torch."""
    return derived(_compat, _compat.__name__, maximum=maximum, minimum=minimum, logaddexp=logaddexp, matmul=matmul,
                   sum=sum, max=max, finfo=finfo,
                   xpnet_extensions={"affine": affine, "keep_positive": keep_positive})  # fmt: skip


xp = namespace()
