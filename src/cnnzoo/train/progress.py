"""Per-epoch progress: a live bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn


class EpochProgress:
    """Shows loss, accuracy, images/s and the time left of one epoch.

    Args:
        enabled: False in processes other than the main one.
        log_every: steps between log lines when output is not a terminal.
        start: steps already done (a resumed epoch).
    """

    def __init__(
        self,
        epoch: int,
        epochs: int,
        steps: int,
        *,
        enabled: bool = True,
        log_every: int = 20,
        start: int = 0,
    ) -> None:
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.enabled = enabled
        self.log_every = max(1, log_every)
        self.done = start
        self.images = 0
        self.started = time.perf_counter()
        self.bar: Progress | None = None
        if enabled and sys.stdout.isatty():
            self.bar = Progress(
                TextColumn(f"epoch {epoch}/{epochs}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[stats]}"),
                TimeRemainingColumn(),
                transient=True,
            )
            self.task = self.bar.add_task("train", total=steps, completed=start, stats="")
            self.bar.start()

    def update(self, *, loss: float, acc: float, images: int, lr: float) -> None:
        if not self.enabled:
            return
        self.done += 1
        self.images += images
        rate = self.images / max(time.perf_counter() - self.started, 1e-9)
        stats = f"loss {loss:.4f}  acc {100 * acc:.2f}%  {rate:,.0f} img/s  lr {lr:.3g}"
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, stats=stats)
        elif self.done % self.log_every == 0 or self.done == self.steps:
            print(f"epoch {self.epoch}/{self.epochs} step {self.done}/{self.steps}  {stats}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
