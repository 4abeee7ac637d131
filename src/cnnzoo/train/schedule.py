"""Learning-rate schedules as a function of the optimizer step, plus the state that some need
(plateau, warm-up) so that a resumed run continues exactly."""

from __future__ import annotations

import bisect
import math
from typing import Any

from cnnzoo.train.config import TrainConfig


class LearningRate:
    """The learning rate of every step of a run.

    Args:
        config: supplies the schedule kind and its parameters.
        steps_per_epoch: optimizer steps in one epoch.
    """

    def __init__(self, config: TrainConfig, steps_per_epoch: int) -> None:
        self.config = config
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = max(1, config.epochs * steps_per_epoch)
        self.milestones = [round(f * self.total_steps) for f in sorted(config.milestones)]
        # mutable state, saved in checkpoints
        self.plateau_scale = 1.0
        self.best_val_loss = math.inf
        self.bad_epochs = 0
        self.warmup_done = config.warmup_steps <= 0 or config.warmup_lr <= 0
        self.error_average = 1.0  # moving average of the training error, for the warm-up rule

    def at(self, step: int) -> float:
        """The learning rate for optimizer step `step` (0-based)."""
        c = self.config
        if not self.warmup_done and step < c.warmup_steps:
            return c.warmup_lr
        if c.schedule == "multistep":
            return c.lr * c.gamma ** bisect.bisect_right(self.milestones, step)
        if c.schedule == "every":
            return c.lr * c.gamma ** (step // (c.step_epochs * self.steps_per_epoch))
        if c.schedule == "cosine":
            return (
                0.5
                * c.lr
                * (1 + math.cos(math.pi * min(step, self.total_steps) / self.total_steps))
            )
        if c.schedule == "plateau":
            return c.lr * self.plateau_scale
        if c.schedule == "constant":
            return c.lr
        raise ValueError(f"unknown schedule {c.schedule!r}")

    def observe_train_error(self, step: int, batch_error: float) -> None:
        """Ends the warm-up once the training error, averaged over recent batches (a single
        batch is too noisy), is below the recipe's threshold."""
        self.error_average = 0.9 * self.error_average + 0.1 * batch_error
        if not self.warmup_done and (
            self.error_average < self.config.warmup_until_error
            or step + 1 >= self.config.warmup_steps
        ):
            self.warmup_done = True

    def end_epoch(self, val_loss: float | None) -> None:
        """Plateau schedule: decay when validation loss has not improved for `patience` epochs."""
        if self.config.schedule != "plateau" or val_loss is None:
            return
        if val_loss < self.best_val_loss - 1e-12:
            self.best_val_loss, self.bad_epochs = val_loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.config.plateau_patience:
            self.plateau_scale *= self.config.gamma
            self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "plateau_scale": self.plateau_scale,
            "best_val_loss": self.best_val_loss,
            "bad_epochs": self.bad_epochs,
            "warmup_done": self.warmup_done,
            "error_average": self.error_average,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau_scale = float(state["plateau_scale"])
        self.best_val_loss = float(state["best_val_loss"])
        self.bad_epochs = int(state["bad_epochs"])
        self.warmup_done = bool(state["warmup_done"])
        self.error_average = float(state["error_average"])
