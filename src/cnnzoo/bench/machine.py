"""Where a figure was measured: the machine record, its CPU flags and its load.

`machine_record` is the one place the benchmarks read the machine from; when the project's shared
provenance record (`cnnzoo.provenance`) lands, it is the one function to point at it.

The load is measured two ways around a run (`LoadWatch`). The kernel's one-minute load average
(`os.getloadavg`) before and after is recorded, but it cannot tell the run's own work from
other people's: a benchmark's previous model still weighs on it. So the CPU time that processes
other than this one and its children used during the run is measured as well (/proc/stat's busy
time less this process tree's), in cores on average; a run counts for the targets when that is
at most `OTHERS_LIMIT`. Where /proc cannot be read, the load-average rule decides: at most
`LOAD_LIMIT` before, and at most `LOAD_LIMIT` plus the run's own threads after.
"""

from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "LOAD_LIMIT",
    "OTHERS_LIMIT",
    "Load",
    "LoadWatch",
    "cpu_flags",
    "load_average",
    "machine_csv",
    "machine_record",
]

LOAD_LIMIT = 1.5
OTHERS_LIMIT = 0.25  # cores that other processes may keep busy, on average, during a run
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
    """The load around a run, and whether the run counts.

    Attributes:
        before, after: the one-minute load average.
        threads: the run's own threads.
        others: cores that other processes kept busy during the run, on average (None: not
            measured).
    """

    before: float | None
    after: float | None
    threads: int
    others: float | None = None

    @property
    def counts(self) -> bool:
        """Whether the machine was quiet enough for the figures to count for the targets."""
        if self.others is not None:
            return self.others <= OTHERS_LIMIT
        if self.before is None or self.after is None:
            return False
        return self.before <= LOAD_LIMIT and self.after <= LOAD_LIMIT + self.threads

    def describe(self) -> str:
        def show(v: float | None) -> str:
            return "unknown" if v is None else f"{v:.2f}"

        if self.others is not None:
            rule = f"other processes kept {self.others:.2f} cores busy during it"
            limit = f"limit {OTHERS_LIMIT} cores"
        else:
            rule = "other processes' share not measured"
            limit = f"limit {LOAD_LIMIT} before, {LOAD_LIMIT} + {self.threads} own threads after"
        verdict = "counts" if self.counts else f"DOES NOT COUNT for the targets ({limit})"
        averages = f"load average {show(self.before)} before, {show(self.after)} after"
        return f"{averages}; {rule}: {verdict}"


class LoadWatch:
    """Watches a run from its creation to `stop()`: the load average before and after, and the
    CPU time other processes used meanwhile."""

    def __init__(self) -> None:
        self.before = load_average()
        self._start = _cpu_snapshot()

    def stop(self) -> Load:
        import torch

        others = None
        end = _cpu_snapshot()
        if self._start is not None and end is not None and end[0] > self._start[0]:
            wall, busy, own = (b - a for a, b in zip(self._start, end, strict=True))
            others = max(0.0, (busy - own) / wall)
        return Load(self.before, load_average(), torch.get_num_threads(), others)


def _cpu_snapshot() -> tuple[float, float, float] | None:
    """(now, CPU seconds all processes have used since boot, CPU seconds this process and its
    descendants have used), from /proc; None where it cannot be read."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        now = time.monotonic()
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = (sum(fields) - fields[3] - fields[4]) / tick  # all but idle and iowait
        parents, times = {}, {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # after the command name, in parentheses: state, ppid, ..., utime (14th field),
                # stime, cutime, cstime (the reaped children's)
                rest = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # ended meanwhile
            pid = int(stat.parent.name)
            parents[pid] = int(rest[1])
            times[pid] = sum(int(v) for v in rest[11:15]) / tick
    except (OSError, ValueError, IndexError):
        return None
    mine, found = set(), {os.getpid()}
    while found:  # this process, then its children, their children, ...
        mine |= found
        found = {pid for pid, parent in parents.items() if parent in found} - mine
    return now, busy, sum(times.get(pid, 0.0) for pid in mine)


def machine_csv(folder: str | Path, prefix: str) -> Path:
    """This machine's results file in `folder`: PREFIX-CPU.csv, CPU as /proc/cpuinfo names the
    model (`inference-amd-epyc.csv`), so that a run on another machine keeps this one's rows."""
    cpu = str(machine_record()["cpu"]).lower().replace("(r)", "").replace("(tm)", "")
    return Path(folder) / f"{prefix}-{'-'.join(re.findall(r'[a-z0-9]+', cpu))}.csv"


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
