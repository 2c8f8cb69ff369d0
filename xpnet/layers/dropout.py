"""Dropout: inverted dropout, drawn on the device.

In ``fit`` each element is kept with probability ``1 - rate`` and scaled by
``1 / (1 - rate)``, so the expected output equals the input and inference
needs no rescaling: outside training (``predict``, ``evaluate``) and without
a random source (``Network.gradients``, ``gradcheck``) the layer is the
identity. The mask comes from the step's counter-based random source
(:mod:`xpnet._device_random`), hashed from the run's seed, the step, this
layer's stream and each element's position: computed on the device, the same
on every backend, and the same again when a run is resumed.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import array_api_compat as compat

from ..registry import register
from .base import Layer

__all__ = ["Dropout", "check_rate"]


def check_rate(rate: Any) -> float:
    """A dropout rate in ``[0, 1)``, else a ``TypeError``/``ValueError`` saying what came."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"Dropout rate must be a number in [0, 1), got {rate!r}")
    value = float(rate)
    if not math.isfinite(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"Dropout rate must be in [0, 1) (the share of elements set to zero), got {rate!r}")
    return value


@register
class Dropout(Layer):
    """Sets each element to zero with probability ``rate`` while training and
    scales the rest by ``1 / (1 - rate)``; the identity otherwise."""

    name = "Dropout"
    uses_rng = True
    _setting_checks = {"rate": check_rate}

    def __init__(self, rate: float = 0.5) -> None:
        super().__init__()
        self.rate = check_rate(rate)

    def config(self) -> dict[str, Any]:
        return {"rate": self.rate}

    def forward(self, xp: Any, params: Any, buffers: Any, X: Any, ctx: Any) -> tuple[Any, Any, Any]:
        if not ctx.training or ctx.rng is None or self.rate == 0.0:
            return X, None, buffers
        keep = ctx.rng.keep(xp, tuple(X.shape), 1.0 - self.rate, self.stream, compat.device(X))
        scale = xp.astype(keep, X.dtype) * (1.0 / (1.0 - self.rate))
        return X * scale, scale, buffers

    def backward(self, xp: Any, params: Any, cache: Any, dY: Any, need_dx: bool) -> tuple[Any, list[Any]]:
        if not need_dx:
            return None, []
        return (dY if cache is None else dY * cache), []

    def __repr__(self) -> str:
        return f"Dropout({self.rate!r})"
