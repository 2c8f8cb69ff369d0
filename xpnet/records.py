"""What a training run records: its History, where it stands, and how it
stopped when interrupted.

A leaf module (it imports nothing of xpnet), so the loop, checkpoints and
distributed training can all share these records without importing each
other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["History", "Position", "TrainingInterrupted"]


@dataclass
class History:
    """What ``fit`` recorded, one Python float per completed epoch.

    ``loss``: the mean of the epoch's minibatch losses, each from its step's
    forward pass (before that step's update). ``val_loss``: the loss on
    ``validation_data`` after the epoch. ``metrics``: validation metrics by
    name (``"val_accuracy"``). ``stopped_early``: ``tol`` ended the run.
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def __len__(self) -> int:
        return len(self.loss)

    def to_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "val_loss": self.val_loss, "metrics": self.metrics, "stopped_early": self.stopped_early}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(
            [float(v) for v in d.get("loss", [])],
            [float(v) for v in d.get("val_loss", [])],
            {k: [float(v) for v in vs] for k, vs in d.get("metrics", {}).items()},
            bool(d.get("stopped_early", False)),
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


@dataclass
class Position:
    """Where a run stands: the next epoch, the steps already done in it, the
    shuffling generator's state at that epoch's start and the partial loss."""

    epoch: int = 0
    step: int = 0
    rng_state: dict[str, Any] | None = None
    partial_loss: Any = None
