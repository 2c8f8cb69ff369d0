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
to ``torch.matmul``. One name is xpnet's own: :func:`affine`, a layer's
``x @ w + b`` as one ``addmm``. Everything else is array-api-compat's.
"""

from __future__ import annotations

import types
from typing import Any

import array_api_compat.torch as _compat
import torch

_NUMBER = (int, float)


def _number(x: Any) -> bool:
    return isinstance(x, _NUMBER) and not isinstance(x, bool)


def _float_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _clamping(bound: str, general: Any) -> Any:
    """``maximum`` (``bound="min"``) or ``minimum`` (``"max"``): a float
    tensor against a Python number as ``torch.clamp``, anything else as
    array-api-compat's ``general``."""

    def elementwise(x1: Any, x2: Any, /) -> Any:
        if _float_tensor(x1) and _number(x2):
            return torch.clamp(x1, **{bound: x2})
        if _float_tensor(x2) and _number(x1):
            return torch.clamp(x2, **{bound: x1})
        return general(x1, x2)

    elementwise.__name__ = general.__name__
    return elementwise


maximum = _clamping("min", _compat.maximum)
minimum = _clamping("max", _compat.minimum)


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


def affine(x: Any, w: Any, b: Any, /) -> Any:
    """``x @ w + b`` (xpnet's own, not the standard's; see
    :func:`xpnet._xp.affine`): for a 2-D ``x`` and a bias row of one dtype,
    ``torch.addmm``, which adds the bias in the product's epilogue (on CUDA
    one launch and one pass over the output fewer, as ``nn.Linear``)."""
    if (
        isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor) and isinstance(b, torch.Tensor)
        and x.ndim == 2 and w.ndim == 2 and b.ndim == 1 and x.dtype == w.dtype == b.dtype
    ):  # fmt: skip
        return torch.addmm(b, x, w)
    return matmul(x, w) + b


def namespace() -> types.ModuleType:
    """A module with every name of ``array_api_compat.torch``, those four
    replaced, and :func:`affine`. It keeps that module's name, so that
    array-api-compat's ``is_torch_namespace`` (how xpnet recognises
    libraries) still says torch."""
    ns = types.ModuleType(_compat.__name__, _compat.__doc__)
    ns.__dict__.update({k: v for k, v in vars(_compat).items() if not k.startswith("__")})
    ns.maximum, ns.minimum, ns.logaddexp, ns.matmul = maximum, minimum, logaddexp, matmul
    ns.affine = affine
    return ns


xp = namespace()
