"""Per-epoch progress: a live bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

# A plain log line at least this often (seconds), however slow the steps are.
LINE_INTERVAL = 5.0


class EpochProgress:
    """Shows loss, error, images/s and the time left of one epoch.

    A line is logged after the first step of the run (with that step's time), every `log_every`
    steps, at least every `LINE_INTERVAL` seconds, and after the epoch's last step. The numbers
    are read (a host sync) only for those lines.

    Args:
        enabled: False in processes other than the main one.
        log_every: steps between log lines when output is not a terminal.
        start: steps already done (a resumed epoch).
        first: this is the first epoch the process trains (its first step is timed).
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
        first: bool = False,
    ) -> None:
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.enabled = enabled
        self.log_every = max(1, log_every)
        self.done = start
        self.images = 0
        self.started = self.last_line = time.perf_counter()
        self.first = first
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

    def update(self, images: int, stats: Callable[[], tuple[float, float, float]]) -> None:
        """One step of `images` images done; `stats()` gives (loss, error, lr) when a line is
        due (calling it reads numbers from the device)."""
        if not self.enabled:
            return
        self.done += 1
        self.images += images
        now = time.perf_counter()
        due = (
            self.first
            or self.done % self.log_every == 0
            or self.done == self.steps
            or now - self.last_line >= LINE_INTERVAL
        )
        if not due:
            if self.bar is not None:
                self.bar.update(self.task, completed=self.done)
            return
        loss, error, lr = stats()
        now = time.perf_counter()  # after the sync: the step has really finished
        rate = self.images / max(now - self.started, 1e-9)
        line = f"loss {loss:.4f}  error {100 * error:.2f}%  {rate:,.0f} img/s  lr {lr:.3g}"
        if self.first:
            line += f"  (first step {now - self.started:.2f} s)"
            self.first = False
        self.last_line = now
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, stats=line)
            if "first step" in line:  # kept above the bar: the run has really started
                self.bar.console.print(f"epoch {self.epoch}/{self.epochs} step 1  {line}")
        else:
            print(f"epoch {self.epoch}/{self.epochs} step {self.done}/{self.steps}  {line}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
