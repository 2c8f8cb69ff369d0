"""Callbacks: code of yours that ``fit`` runs at every epoch's report.

``fit(..., callbacks=[...])`` calls, for each callback in order:

``on_train_begin(network)``
    once, before the first epoch (also when resuming);
``on_epoch_end(epoch, logs) -> bool``
    after each epoch (``epoch`` counts from 0), with that epoch's figures:
    ``logs["loss"]``, ``"val_loss"`` and the validation metrics
    (``"val_accuracy"``) when there are validation data, and ``"lr"``.
    Return ``True`` to stop training after this epoch;
``on_train_end(history)``
    once, when training ends normally (not on an error or an interrupt);
    callbacks that put other weights in the network (a ``restores_weights``
    attribute, as :class:`EarlyStopping` has) go first, so the others see
    the network ``fit`` returns, whatever the list's order.

Callbacks need the epoch's figures on the host, so with callbacks ``fit``
reports every epoch (one small transfer each). A callback with state that
must survive a checkpoint defines ``get_state()`` (JSON values) and
``set_state(state)``, which checks what a checkpoint gives it; arrays go
through ``get_arrays()``/``set_arrays(arrays)``. A callback with a
``best_epoch`` attribute sets ``History.best_epoch``.
"""

from __future__ import annotations

import inspect
import math
import numbers
import types
from typing import Any

from .schedules import resolve_mode

__all__ = ["Callback", "EarlyStopping", "as_callback", "callback_name"]


class Callback:
    """Base class of callbacks; every hook does nothing by default."""

    #: Does ``on_train_end`` put other weights in the network? Those run first.
    restores_weights = False

    def on_train_begin(self, network: Any) -> None:
        """Before the first epoch; ``network`` is the one being trained, and
        the weights and optimizer settings set here are the run's start.
        When resuming, it runs before the checkpoint is restored (then the
        callback's :meth:`set_state`, and the network's weights become the
        checkpoint's): reset here, and read the weights at an epoch's end."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        """After epoch ``epoch`` (from 0); ``True`` stops training."""
        return False

    def on_train_end(self, history: Any) -> None:
        """After the last epoch (a normal end)."""

    def get_state(self) -> dict[str, Any]:
        """What a checkpoint keeps of this callback, as JSON values."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Take a state from a checkpoint; ``ValueError`` if it cannot be this callback's."""
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, the checkpoint holds {sorted(state)}")

    def get_arrays(self) -> list[Any]:
        """Arrays a checkpoint keeps of this callback (device arrays)."""
        return []

    def set_arrays(self, arrays: list[Any]) -> None:
        """Take arrays (host NumPy) from a checkpoint."""
        if arrays:
            raise ValueError(f"{type(self).__name__} keeps no arrays, the checkpoint holds {len(arrays)}")


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs in a row (as Keras's ``EarlyStopping``).

    ``monitor``: ``"val_loss"`` (the default; needs ``validation_data`` or
    ``validation_split``), ``"loss"`` or a validation metric such as
    ``"val_accuracy"``. ``mode="auto"`` maximises a metric that declares
    ``greater_is_better = True`` (decided again by the object ``fit`` is
    given), and any other whose name contains ``"acc"`` (Keras's rule); it minimises the rest. ``best_epoch`` is the
    best epoch so far (from 0), and so ``History.best_epoch``. With
    ``restore_best`` the network ends training
    with that epoch's weights (a copy on the device, taken when this callback
    runs: a later one may write the weights in place; a reference on JAX),
    whether the run stopped early or used all its epochs."""

    def __init__(
        self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0, restore_best: bool = True,
        mode: str = "auto",
    ) -> None:  # fmt: skip
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"EarlyStopping monitor must be the name of a History figure such as 'val_loss', got {monitor!r}")
        if not isinstance(patience, numbers.Integral) or isinstance(patience, bool) or patience < 0:
            raise ValueError(f"EarlyStopping patience must be a non-negative int, got {patience!r}")
        if not isinstance(min_delta, numbers.Real) or isinstance(min_delta, bool) or not 0 <= min_delta < math.inf:
            raise ValueError(f"EarlyStopping min_delta must be a non-negative number, got {min_delta!r}")
        if not isinstance(restore_best, bool):
            raise TypeError(f"EarlyStopping restore_best must be True or False, got {restore_best!r}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.restore_best = restore_best
        self.mode, self._mode_given = resolve_mode(mode, monitor, "EarlyStopping"), mode
        self.network: Any = None
        self._reset()

    def _reset(self) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self._best_state: tuple[list[Any], list[Any]] | None = None

    def on_train_begin(self, network: Any) -> None:
        self.network = network
        self._reset()  # a callback used again starts afresh (a resumed run then sets its state)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        current = logs[self.monitor]
        if self._improves(current):  # an improving epoch never stops the run (Keras 3; patience=0 stopped it)
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best:
                self._best_state = (self._kept(self.network._params()), self._kept(self.network._buffers()))
            return False
        self.wait += 1
        return self.wait >= self.patience and epoch > 0

    def _kept(self, arrays: list[Any]) -> list[Any]:
        """The best epoch's arrays as they are now: a callback after this one
        may write the network's weights in place (``w *= 0.9``), which would
        reach references. JAX's arrays cannot be written: references, free."""
        if not arrays or self.network.backend.name == "jax":
            return list(arrays)
        return [self.network.backend.xp.asarray(a, copy=True) for a in arrays]

    def _improves(self, current: float) -> bool:
        if not math.isfinite(current):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    restores_weights = True

    def on_train_end(self, history: Any) -> None:
        if self.restore_best and self._best_state is not None:
            self.network._commit(*self._best_state)

    # -- checkpoints -------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "settings": self._settings()}

    def _settings(self) -> dict[str, Any]:
        """What the state means: a best val_loss is no best loss, a wait counts against one patience."""
        return {"monitor": self.monitor, "patience": self.patience, "min_delta": self.min_delta,
                "restore_best": self.restore_best, "mode": self.mode}  # fmt: skip

    def set_state(self, state: dict[str, Any]) -> None:
        keys = {"best", "best_epoch", "wait"}
        if not isinstance(state, dict) or not keys <= set(state) <= keys | {"settings"}:
            raise ValueError(f"EarlyStopping state must hold best, best_epoch and wait, got {state!r}")
        self._check_settings(state.get("settings", self._settings()))  # older checkpoints did not say them
        best, epoch, wait = state["best"], state["best_epoch"], state["wait"]
        if (best is None) != (epoch is None):
            raise ValueError("EarlyStopping state: best and best_epoch must both be set or both be null")
        if best is not None and (isinstance(best, bool) or not isinstance(best, int | float) or not math.isfinite(best)):
            raise ValueError(f"EarlyStopping state: best must be a finite number, got {best!r}")
        for name, v in (("best_epoch", epoch), ("wait", wait)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 2**53):
                raise ValueError(f"EarlyStopping state: {name} must be a non-negative int, got {v!r}")
        self.best, self.best_epoch, self.wait = best, epoch, wait
        self._best_state = None

    def _check_settings(self, saved: Any) -> None:
        """Resume with the settings the state was made under, as a schedule must."""
        mine = self._settings()
        if not isinstance(saved, dict) or set(saved) != set(mine):
            raise ValueError(f"EarlyStopping state: settings must hold {sorted(mine)}, got {saved!r}")
        changed = [f"{k} {saved[k]!r} there, {v!r} here" for k, v in mine.items() if saved[k] != v]
        if changed:
            raise ValueError(f"the checkpoint's run stopped early by other settings ({'; '.join(changed)}): "
                             "resume with the same EarlyStopping")  # fmt: skip

    def _check_epochs_run(self, epochs: int) -> None:
        """A resumed state must fit the ``epochs`` run: the best among them,
        and no longer a wait than they allow."""
        if self.best_epoch is not None and self.best_epoch >= epochs:
            raise ValueError(f"EarlyStopping state: best_epoch {self.best_epoch} is not one of the {epochs} epochs run")
        if self.wait is not None and self.wait > epochs:
            raise ValueError(f"EarlyStopping state: wait {self.wait} is longer than the {epochs} epochs run")

    def get_arrays(self) -> list[Any]:
        return [] if self._best_state is None else [*self._best_state[0], *self._best_state[1]]

    def set_arrays(self, arrays: list[Any]) -> None:
        if not arrays:
            if self.restore_best and self.best is not None:
                raise ValueError("EarlyStopping state: the best epoch's weights are missing")
            return
        net = self.network
        params, buffers = net._params(), net._buffers()
        if not self.restore_best or len(arrays) != len(params) + len(buffers):
            raise ValueError(
                f"EarlyStopping arrays: expected {len(params) + len(buffers) if self.restore_best else 0} "
                f"(the best epoch's parameters and buffers), got {len(arrays)}"
            )
        for i, (a, like) in enumerate(zip(arrays, [*params, *buffers])):
            if tuple(a.shape) != tuple(like.shape):
                raise ValueError(f"EarlyStopping arrays: array {i} has shape {tuple(a.shape)}, expected {tuple(like.shape)}")
        moved = [net.backend.asarray(a, net.dtype) for a in arrays]
        self._best_state = (moved[: len(params)], moved[len(params) :])

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, min_delta={self.min_delta}, "
            f"restore_best={self.restore_best}, mode={self.mode!r})"
        )


def as_callback(cb: Any) -> Callback:
    """``cb`` as a :class:`Callback`: any object with ``on_epoch_end`` is
    one, its missing hooks doing nothing."""
    if isinstance(cb, Callback):
        return cb
    if isinstance(cb, type) and isinstance(inspect.getattr_static(cb, "on_epoch_end", None), types.FunctionType):
        # its hooks need an instance: on_train_begin(network) took the network as self (static ones are fine)
        raise TypeError(f"a callback is an object, got the class {cb.__name__}, not an instance: pass "
                        f"{cb.__name__}() (with its settings)")  # fmt: skip
    if not callable(getattr(cb, "on_epoch_end", None)):
        raise TypeError(f"a callback needs an on_epoch_end(epoch, logs) method (see xpnet.callbacks), got {cb!r}")
    return _Duck(cb)


def callback_name(cb: Any) -> str:
    """The name checkpoints record a callback by: its class's."""
    return type(cb.wrapped if isinstance(cb, _Duck) else cb).__name__


class _Duck(Callback):
    """A callback that is not a :class:`Callback`: its own hooks where it has
    them, the base class's elsewhere; its attributes (``best_epoch``,
    ``monitor``) show through."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    @property
    def restores_weights(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.wrapped, "restores_weights", False))

    def __getattr__(self, name: str) -> Any:
        if name == "wrapped":
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    def _hook(self, name: str) -> Any:
        own = getattr(self.wrapped, name, None)
        return own if callable(own) else getattr(Callback, name).__get__(self)

    def on_train_begin(self, network: Any) -> None:
        self._hook("on_train_begin")(network)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        return self.wrapped.on_epoch_end(epoch, logs)

    def on_train_end(self, history: Any) -> None:
        self._hook("on_train_end")(history)

    def get_state(self) -> dict[str, Any]:
        return self._hook("get_state")()

    def set_state(self, state: dict[str, Any]) -> None:
        self._hook("set_state")(state)

    def get_arrays(self) -> list[Any]:
        return self._hook("get_arrays")()

    def set_arrays(self, arrays: list[Any]) -> None:
        self._hook("set_arrays")(arrays)
