"""Where a figure was measured: the machine record, its CPU flags and its load.

`machine_record` is the one place the benchmarks read the machine from; when the project's shared
provenance record (`cnnzoo.provenance`) lands, it is the one function to point at it.

The load is the kernel's one-minute load average (`os.getloadavg`). A run counts for the targets
only when the machine was quiet: at most `LOAD_LIMIT` before the run, and at most `LOAD_LIMIT`
plus the run's own threads after it (the average after a run includes the run's own busy
threads, which are not other people's load).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["LOAD_LIMIT", "Load", "cpu_flags", "load_average", "machine_record"]

LOAD_LIMIT = 1.5
# The /proc/cpuinfo flags that decide which inference path is fast on a CPU.
_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def _cpuinfo_first(key: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return None


def cpu_flags() -> tuple[str, ...]:
    """The CPU's vector and matrix extensions that matter here (AVX2, AVX-512, AVX512-BF16,
    AMX), as /proc/cpuinfo names them; empty where it cannot be read."""
    flags = set((_cpuinfo_first("flags") or "").split())
    return tuple(f for f in _FLAGS_OF_INTEREST if f in flags)


def load_average() -> float | None:
    """The one-minute load average, or None where the OS does not report one."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class Load:
    """The load average around a run, and whether the run counts."""

    before: float | None
    after: float | None
    threads: int

    @property
    def counts(self) -> bool:
        """Whether the machine was quiet enough for the figures to count for the targets."""
        if self.before is None or self.after is None:
            return False
        return self.before <= LOAD_LIMIT and self.after <= LOAD_LIMIT + self.threads

    def describe(self) -> str:
        def show(v: float | None) -> str:
            return "unknown" if v is None else f"{v:.2f}"

        verdict = (
            "counts"
            if self.counts
            else f"DOES NOT COUNT for the targets (limit {LOAD_LIMIT} before, "
            f"{LOAD_LIMIT} + {self.threads} own threads after)"
        )
        return f"load average {show(self.before)} before, {show(self.after)} after: {verdict}"


def machine_record(device: torch.device | str = "cpu") -> dict[str, object]:
    """The CSV columns that say where a figure was measured."""
    from cnnzoo._version import __version__

    device = torch.device(device)
    return {
        "cpu": _cpuinfo_first("model name") or platform.processor() or platform.machine(),
        "cpu_flags": " ".join(cpu_flags()),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "cnnzoo": __version__,
    }
