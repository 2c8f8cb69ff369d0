"""What a training run records: its History, where it stands, and how it
stopped when interrupted.

A leaf module (it imports nothing of xpnet), so the loop, checkpoints and
distributed training can all share these records without importing each
other.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

__all__ = ["History", "Position", "RunRecord", "TrainingInterrupted", "check_figure"]


@dataclass
class History:
    """What ``fit`` recorded, one Python float per completed epoch.

    ``loss``: the mean of the epoch's minibatch losses, each from its step's
    forward pass (before that step's update), weighted when ``fit`` was given
    sample or class weights. ``val_loss``: the loss on the validation data
    after the epoch. ``metrics``: validation metrics by name
    (``"val_accuracy"``). ``stopped_early``: ``tol`` or a callback ended the
    run. ``lr``: each epoch's learning rate (the schedule's, else the
    optimizer's; empty for an optimizer without an ``lr``). ``best_epoch``:
    the index (from 0) of the best epoch, as :class:`xpnet.EarlyStopping`
    judged it, else the one of lowest ``val_loss`` (``loss`` without
    validation data).
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: bool = False
    lr: list[float] = field(default_factory=list)
    best_epoch: int | None = None

    @property
    def epochs(self) -> int:
        """The number of epochs recorded."""
        return len(self.loss)

    def __len__(self) -> int:
        return len(self.loss)

    def logs(self, epoch: int) -> dict[str, float]:
        """Epoch ``epoch``'s figures by name (what callbacks and schedules
        read): ``loss``, ``val_loss`` and the validation metrics when
        recorded, ``lr``."""
        n = len(self.loss)
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or not -n <= epoch < n:
            raise IndexError(f"History.logs: epoch must be one of the {n} recorded (0 to {n - 1}, or negative "
                             f"from the end), got {epoch!r}")  # fmt: skip
        epoch = int(epoch) % n  # from the start: the other lists may be shorter (no validation)
        out = {"loss": self.loss[epoch]}
        if len(self.val_loss) > epoch:
            out["val_loss"] = self.val_loss[epoch]
            out.update({name: values[epoch] for name, values in self.metrics.items()})
        if len(self.lr) > epoch:
            out["lr"] = self.lr[epoch]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain JSON values (:meth:`from_dict` reads them back)."""
        return {
            "loss": self.loss, "val_loss": self.val_loss, "metrics": self.metrics, "stopped_early": self.stopped_early,
            "lr": self.lr, "best_epoch": self.best_epoch,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        """A History from :meth:`to_dict`'s values (missing keys: empty)."""
        best = d.get("best_epoch")
        return cls(
            [float(v) for v in d.get("loss", [])],
            [float(v) for v in d.get("val_loss", [])],
            {k: [float(v) for v in vs] for k, vs in d.get("metrics", {}).items()},
            bool(d.get("stopped_early", False)),
            [float(v) for v in d.get("lr", [])],
            None if best is None else int(best),
        )


class TrainingInterrupted(KeyboardInterrupt):
    """``fit`` stopped because its ``interrupt`` was set.

    ``history`` holds the completed epochs, ``checkpoint`` the file written
    (``None`` without ``checkpoint=``). ``write_checkpoint(path)`` writes the
    checkpoint of the exact point where training stopped, for callers that
    passed no path (``None`` when the weights there were not finite)."""

    def __init__(self, message: str, history: History, checkpoint: str | None, write_checkpoint: Any = None) -> None:
        super().__init__(message)
        self.history = history
        self.checkpoint = checkpoint
        self.write_checkpoint = write_checkpoint

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its message, history and checkpoint path, so that it
        crosses a process boundary (a ``ProcessPoolExecutor`` or joblib
        worker sends its exception back that way): BaseException's own
        reduce calls the class with the message alone, and
        ``write_checkpoint`` is a closure over the live run, which means
        nothing in another process (it arrives as ``None``)."""
        return type(self), (str(self), self.history, self.checkpoint), {
            k: v for k, v in self.__dict__.items() if k not in ("history", "checkpoint", "write_checkpoint")
        }


@dataclass
class Position:
    """Where a run stands: the next epoch, the steps already done in it, the
    shuffling generator's state at that epoch's start and the partial loss."""

    epoch: int = 0
    step: int = 0
    rng_state: dict[str, Any] | None = None
    partial_loss: Any = None


@dataclass
class RunRecord:
    """What a checkpoint keeps of a run besides its model, optimizer state,
    position and History: the run's random key (its validation split, its
    Dropout masks), the share held out by ``validation_split``, the
    learning-rate schedule (its spec and state), each callback's state and
    arrays, and whether the rows were shuffled (``None``: not said, as in
    older checkpoints, or a callable ``shuffle``, which cannot resume)."""

    key: int | None = None
    validation_split: float | None = None
    schedule: dict[str, Any] | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    callback_arrays: list[list[Any]] = field(default_factory=list)
    shuffle: bool | None = None


def check_figure(value: Any, what: str) -> Any:
    """A loss's or metric's value: one number as a 0-d array (or NumPy
    scalar), which joins the epoch's figures in one transfer. Anything else
    failed only at the report, epochs later, in words of the backend's."""
    shape = getattr(value, "shape", None)
    if shape is None or tuple(shape) != ():
        got = f"an array of shape {tuple(shape)}" if shape is not None else f"a {type(value).__name__}"
        raise ValueError(f"{what} must return one number as a 0-d array of the outputs' library, got {got}")
    return value
