"""Where a run stands: what a checkpoint restores besides the weights and the optimizer."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from cnnzoo.train import distributed
from cnnzoo.train.schedule import LearningRate


@dataclass
class TrainState:
    """Progress, this epoch's running sums, the best validation error, the random streams and
    the schedule's own state.

    The running sums stay on the device (float64, so they add exactly as Python floats did) and
    are read only when a line is logged, an epoch ends or a checkpoint is written.
    """

    schedule: LearningRate
    augment_rng: torch.Generator  # the batch augmentation's stream (the model's is torch's)
    device: torch.device = torch.device("cpu")
    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # steps done in the current epoch
    global_step: int = 0  # optimizer steps done
    loss_sum: Tensor = field(init=False)  # sum over this epoch's images of the training loss
    correct: Tensor = field(init=False)  # this epoch's correctly classified training images
    seen: int = 0  # this epoch's training images
    best_val_error: float = math.inf

    def __post_init__(self) -> None:
        self.reset_sums()

    def reset_sums(self, loss_sum: float = 0.0, correct: float = 0.0, seen: int = 0) -> None:
        self.loss_sum = torch.tensor(loss_sum, dtype=torch.float64, device=self.device)
        self.correct = torch.tensor(correct, dtype=torch.float64, device=self.device)
        self.seen = int(seen)

    def add_batch(self, loss: Tensor, logits: Tensor, labels: Tensor) -> Tensor:
        """Count one step's batch; returns its number of correct predictions (on the device)."""
        correct = (logits.argmax(1) == labels).sum()
        self.loss_sum += loss.detach().double() * len(labels)
        self.correct += correct
        self.seen += len(labels)
        self.step_in_epoch += 1
        self.global_step += 1
        return correct

    def running(self) -> tuple[float, float]:
        """This process's mean loss and error so far this epoch (for the step lines)."""
        # note: a CPU-GPU sync point, taken only when a line is logged
        loss_sum, correct = self.loss_sum.item(), self.correct.item()
        return loss_sum / max(self.seen, 1), 1.0 - correct / max(self.seen, 1)

    def epoch_means(self, ctx: distributed.DistContext) -> tuple[float, float]:
        """Training loss and error of the epoch over every process."""
        # note: a CPU-GPU sync point (once an epoch), and an all-reduce under torchrun
        loss_sum, correct, count = distributed.sum_across(ctx, self._sums())
        return loss_sum / max(count, 1), 1 - correct / max(count, 1)

    def finish_epoch(self, val_error: float | None) -> bool:
        """Move to the next epoch; returns whether `val_error` is the best so far."""
        self.epoch += 1
        self.step_in_epoch = 0
        self.reset_sums()
        improved = val_error is not None and val_error < self.best_val_error
        if improved:
            self.best_val_error = val_error
        return improved

    def _sums(self) -> list[float]:
        return [self.loss_sum.item(), self.correct.item(), float(self.seen)]

    def state_dict(self, ctx: distributed.DistContext) -> dict[str, Any]:
        """The checkpoint's `state.pt` entries (optimizer and scaler are added by the loop).
        Every process takes part: each one's random streams are gathered."""
        # note: a CPU-GPU sync point (the sums), once per checkpoint
        return {
            "schedule": self.schedule.state_dict(),
            "rng": _gather_rng(ctx, self.augment_rng),
            "progress": {
                "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step,
                "sums": self._sums(),  # loss sum, correct, count: the layout of format 1
            },
            "best_val_error": self.best_val_error,
        }

    def load_state_dict(self, state: dict[str, Any], rank: int) -> None:
        self.schedule.load_state_dict(state["schedule"])
        rng = state["rng"]
        _set_rng_state(rng[rank] if rank < len(rng) else rng[0], self.augment_rng)
        progress = state["progress"]
        self.epoch = int(progress["epoch"])
        self.step_in_epoch = int(progress["step_in_epoch"])
        self.global_step = int(progress["global_step"])
        self.reset_sums(*progress["sums"])
        self.best_val_error = float(state["best_val_error"])

    @property
    def best(self) -> float | None:
        return None if math.isinf(self.best_val_error) else self.best_val_error


def _rng_state(generator: torch.Generator) -> dict[str, Tensor | list[Tensor]]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "augment": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["augment"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _gather_rng(ctx: distributed.DistContext, generator: torch.Generator) -> list[dict]:
    """Every process's RNG state, so each continues its own random stream after a resume."""
    mine = _rng_state(generator)
    if not ctx.enabled:
        return [mine]
    gathered: list[Any] = [None] * ctx.world_size
    torch.distributed.all_gather_object(gathered, mine)
    return gathered
