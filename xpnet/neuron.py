"""The single artificial neuron of the seed documents.

weights ``w`` (one per input), bias ``b``, activation potential
``v = x . w + b``, activation ``f`` and output ``y = f(v)``. After each
``forward`` the neuron keeps that pass's ``activation_potential`` and
``output``, as the seeds' neuron dictionary does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backend import (
    Backend,
    backend_for_unpickling,
    device_spec,
    get_backend,
    own_broadcasting,
    quiet_float_errors,
    to_numpy,
)  # fmt: skip
from ._random import draw_weights, host_rng, initial_bias, resolve_init
from ._xp import affine
from .activations import Activation, get_activation
from .network import check_dtype
from .validation import (
    DeferredChecks,
    as_numeric,
    checked_param,
    positive_int,
    queue_output_check,
    refuse_traced,
    true_or_false,
)

__all__ = ["Neuron"]


class Neuron:
    """One neuron over ``n_inputs`` inputs.

    ``forward(x)`` takes one sample ``x`` of shape ``(n_inputs,)`` (giving a
    0-d output) or a batch ``(n_samples, n_inputs)`` (giving ``(n_samples,)``).
    Initial weights follow the same rules as a ``Dense`` layer with one output.
    """

    def __init__(
        self,
        n_inputs: int,
        activation: str | Activation = "sigmoid",
        bias: bool = True,
        *,
        backend: str | Backend | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        init: Any = None,
    ) -> None:
        self.n_inputs = positive_int(n_inputs, "n_inputs")
        self.activation = get_activation(activation)
        if not self.activation.elementwise:
            raise ValueError(f"a single neuron cannot use {self.activation.name}: it normalises over several outputs")
        self.use_bias = true_or_false(bias, "bias")
        self.backend = get_backend(backend)
        self.dtype = check_dtype(dtype)
        self.backend.dtype(self.dtype)  # float64 where the backend cannot hold it: refused here, not at forward
        rng = host_rng(seed)
        w = draw_weights(resolve_init(init, self.activation.name), rng, self.n_inputs, 1, self.dtype)
        if not np.isfinite(w).all():  # as Dense's (check_host_arrays): not a forward's "changed in place" later
            raise ValueError(f"Neuron: init returned NaN or infinite weights in {self.dtype}; check its initialiser")
        self._weights = self.backend.asarray(w[:, 0])
        self._bias = self.backend.asarray(initial_bias(1, self.dtype)[0]) if self.use_bias else None
        self.activation_potential: Any = None
        self.output: Any = None

    @property
    def weights(self) -> Any:
        """The ``(n_inputs,)`` weights, a device array; assigning checks shape and values."""
        return self._weights

    @weights.setter
    def weights(self, value: Any) -> None:
        self._weights = checked_param(self.backend, value, self.dtype, (self.n_inputs,), "Neuron.weights")

    @property
    def bias(self) -> Any:
        """The 0-d bias, a device array (``None`` with ``bias=False``); assigning checks it."""
        return self._bias

    @bias.setter
    def bias(self, value: Any) -> None:
        if not self.use_bias:
            if value is None:
                return
            raise ValueError("this neuron was built with bias=False; its bias can only be None")
        self._bias = checked_param(self.backend, value, self.dtype, (), "Neuron.bias")

    def _named_weights(self) -> dict[str, Any]:
        """The arrays by name, for the message of a non-finite output."""
        return {"weights": self._weights, **({"bias": self._bias} if self._bias is not None else {})}

    @own_broadcasting
    def forward(self, x: Any) -> Any:
        """``f(x . w + b)`` for one sample or a batch of samples."""
        refuse_traced("Neuron.forward", x)
        x = as_numeric(self.backend, x, self.dtype, "x")
        if x.ndim not in (1, 2) or x.shape[-1] != self.n_inputs or x.shape[0] == 0:
            raise ValueError(
                f"x must have shape ({self.n_inputs},) for one sample or (n_samples, {self.n_inputs}), "
                f"got {tuple(x.shape)}"
            )
        checks = DeferredChecks(self.backend)
        checks.finite(x, "x")
        xp = self.backend.xp
        with quiet_float_errors():  # exp(1000) is inf, and sigmoid's limit is right: as Activation.forward
            v = affine(xp, x, self._weights, self._bias)  # through the namespace: its precision (JAX: full float32)
            v = xp.asarray(v)  # NumPy gives a scalar for one sample; keep a 0-d array
            y = xp.asarray(self.activation._forward(xp, v))
        queue_output_check(checks, y, self.dtype, self._named_weights)  # an overflow is an error, as in Network.forward
        checks.run()  # one transfer for the input's and the output's checks
        self.activation_potential, self.output = v, y
        return y

    __call__ = forward

    # -- pickling: through the state, never module objects, as Network ---------

    _ARRAYS = ("_weights", "_bias", "activation_potential", "output")

    def __getstate__(self) -> dict[str, Any]:
        """Host copies of the arrays (the host data a pickle holds) and the
        backend's name and device, so that ``pickle``, ``copy.deepcopy`` and
        joblib work on every backend."""
        state = dict(self.__dict__, backend=(self.backend.name, device_spec(self.backend)))
        for key in self._ARRAYS:
            if state[key] is not None:
                state[key] = np.array(to_numpy(state[key]))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        backend = backend_for_unpickling(*state["backend"])
        arrays = {key: backend.asarray(state[key]) for key in self._ARRAYS if state[key] is not None}
        self.__dict__.update(state, backend=backend, **arrays)

    def __repr__(self) -> str:
        return (
            f"Neuron({self.n_inputs}, activation={self.activation.name!r}, bias={self.use_bias}, "
            f"backend={self.backend.name!r}, dtype={self.dtype!r})"
        )
