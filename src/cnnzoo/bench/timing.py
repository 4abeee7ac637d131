"""The timing primitive every measurement here uses: warm-up calls, then timed ones."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

__all__ = ["median_seconds", "sync", "time_calls"]


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # note: this is a CPU-GPU sync point


def time_calls(
    step: Callable[[], object], repeat: int, warmup: int, device: torch.device
) -> list[float]:
    """Seconds of each of `repeat` calls of `step`, after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def median_seconds(
    step: Callable[[], object], repeat: int, warmup: int, device: torch.device
) -> float:
    """The median of `time_calls`."""
    return statistics.median(time_calls(step, repeat, warmup, device))
