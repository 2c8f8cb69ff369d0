"""Central-difference gradient check in float64.

``gradcheck(net, X, y, loss)`` compares ``Network.gradients`` with central
differences of ``Network.evaluate`` for every parameter entry. Both run on a
float64 copy of the network (a float64 network as it is: nothing is
written, and its own classes run) on its own backend (on JAX in its 64-bit
mode, switched on for the check where it is off), so the check covers the
backend's arithmetic, not a NumPy stand-in. Each perturbed evaluation builds
new parameter arrays (nothing is written in place), which is slow but exact
about what is being differentiated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._backend import float64_scope, own_broadcasting, quiet_float_errors
from .losses import get_loss

__all__ = ["gradcheck"]

STEP = 1e-6


@own_broadcasting
def gradcheck(net: Any, X: Any, y: Any, loss: Any, *, step: float = STEP) -> float:
    """The largest ``|g - fd| / max(|g|, |fd|, floor)`` over all parameter
    entries; NaN if any gradient or difference is NaN (it fails any ``< tol``).

    ``floor`` is ``1e-3`` of the largest gradient entry (at least ``1e-8``):
    central differences carry an absolute rounding error of about
    ``1e-16 * |loss| / step``, which would swamp the relative error of
    entries that are zero or nearly so (a pixel that is always 0 gives its
    weights a zero gradient), as ``torch.autograd.gradcheck``'s ``atol`` also
    allows for.

    The gradients are those of :meth:`Network.gradients`: for a sigmoid
    output with binary_cross_entropy, or softmax with cross_entropy, the
    fused ``(y - t)`` delta, which is not the derivative of ``evaluate``
    where the loss clips a saturated output (flat there). There a correct
    network reports an error near 1: check it on inputs that do not
    saturate its outputs."""
    with quiet_float_errors(), float64_scope(net.backend):  # an exp that overflows to its limit is not news
        return _gradcheck(net, X, y, loss, step)


def _float64_copy(net: Any) -> Any:
    """``net`` in float64 (itself if it is). A device without float64 is
    refused naming gradcheck's need: the backend's own message would tell
    the caller to use float32, which the network already is."""
    if net.dtype == "float64":
        return net
    try:
        net.backend.dtype("float64")
    except ValueError:
        raise ValueError(
            f"gradcheck computes in float64, which {net.backend} cannot hold; check a copy on a device "
            f"that can: gradcheck(net.to({net.backend.name!r}, device=...), X, y, loss)"
        ) from None
    return net._astype("float64")


def _gradcheck(net: Any, X: Any, y: Any, loss: Any, step: float) -> float:
    """The work of :func:`gradcheck`. A NaN anywhere (a gradient, a
    difference) makes the answer NaN, which fails every ``< tol`` test:
    ``max(0.0, nan)`` is 0.0, and a broken derivative passed."""
    if isinstance(step, bool) or not isinstance(step, int | float) or not (0 < step < math.inf):
        raise ValueError(f"gradcheck: step must be a finite number > 0, got {step!r}")
    loss = get_loss(loss)
    net64 = _float64_copy(net)  # read only: nothing is committed
    X, T, loss = net64._weighted_inputs(X, y, loss)
    backend = net64.backend
    params = net64._params()
    if not params:  # max() of no errors failed with "max() arg is an empty sequence"
        raise ValueError("gradcheck: the network has no parameters, and it compares parameter gradients with finite "
                         "differences; a layer without parameters is checked through a layer with parameters before "
                         "it (its backward gives that layer's gradients)")
    analytic = [backend.to_numpy(g) for g in net64._loss_and_grads(params, X, T, loss)[1]]
    host = [backend.to_numpy(p) for p in params]

    def loss_at(k: int, flat_index: int, delta: float) -> float:
        changed = host[k].copy()
        changed.reshape(-1)[flat_index] += delta
        trial = list(params)
        trial[k] = backend.asarray(changed)
        return float(backend.to_numpy(net64._loss_value(trial, X, T, loss)))

    floor = max(1e-8, 1e-3 * max(float(np.max(np.abs(g), initial=0.0)) for g in analytic))
    worst = 0.0
    for k, g in enumerate(analytic):
        g = g.reshape(-1)
        for i in range(g.size):
            fd = (loss_at(k, i, step) - loss_at(k, i, -step)) / (2 * step)
            err = abs(g[i] - fd) / max(abs(g[i]), abs(fd), floor)
            if math.isnan(err):
                return math.nan
            worst = max(worst, float(err))
    return worst
