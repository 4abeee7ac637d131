"""The machine record: what produced a training run, a benchmark row or a reproduction.

One place reads /proc/cpuinfo and asks git for the commit, so a run's `config.json`, a benchmark's
CSV row and an experiment's results all describe the machine the same way. Reading never fails:
what cannot be found is None.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from cnnzoo._version import __version__

__all__ = ["CPU_FEATURES", "cpu_record", "cpuinfo", "environment", "git_commit", "parse_cpuinfo"]

# The instruction-set flags that decide which kernels run (and so the speed a figure reflects):
# AVX2/FMA, AVX-512 and its bf16 extension, and Intel's AMX tiles.
CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def parse_cpuinfo(text: str) -> dict[str, str]:
    """The first processor's fields of a /proc/cpuinfo text ("model name", "flags", ...)."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in info:
            info[key.strip()] = value.strip()
    return info


@functools.cache
def cpuinfo() -> dict[str, str]:
    """This machine's /proc/cpuinfo (`parse_cpuinfo`); empty where there is none (macOS,
    Windows)."""
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return {}


def cpu_record(info: dict[str, str]) -> dict[str, Any]:
    """The CPU model and its kernel-relevant flags (`CPU_FEATURES`, in that order)."""
    flags = set(info.get("flags", "").split())
    return {
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "cpu_flags": [f for f in CPU_FEATURES if f in flags],
    }


@functools.cache
def git_commit() -> str | None:
    """The commit of the cnnzoo checkout this code runs from (with "+dirty" when it has
    uncommitted changes), or None for an installed copy outside git."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=here, capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    if not git("ls-files", "--", "provenance.py"):  # an installed copy inside another repo
        return None
    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return commit + ("+dirty" if dirty else "")


def environment() -> dict[str, Any]:
    """What produced a result: cnnzoo (version and commit), torch, Python and the machine (CPU
    model, its kernel-relevant flags, logical cores, GPU)."""
    import torch

    return {
        "cnnzoo": __version__,
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        **cpu_record(cpuinfo()),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
