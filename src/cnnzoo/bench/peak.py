"""The machine's peak arithmetic rate, to say what fraction of it a model achieves.

CPU: cores used x clock x FLOPs per cycle per core, the last from the instruction set:
- fp32 with AVX-512 on Intel server cores: two 512-bit FMA units, 2 x 16 lanes x 2 = 64.
- fp32 with AVX-512 on AMD Zen 4 (512-bit instructions run on 256-bit units; told apart from
  Zen 5, which has full-width units and AVX512-VP2INTERSECT): 2 x 8 x 2 = 32; with AVX2 + FMA:
  also 32.
- bf16 with AVX512-BF16 (VDPBF16PS: two bf16 products per fp32 lane): twice the fp32 rate.
- bf16 with AMX (TMUL): 1,024 bf16 FLOPs per cycle per core (Intel's published figure).
The clock is the maximum frequency the kernel reports (cpufreq), else /proc/cpuinfo's current
"cpu MHz" (virtual machines often show only the base clock, so turbo may make the real peak
higher and the fraction lower than shown).

CUDA: the vendor's dense datasheet figures for a few known GPUs (fp32 without tensor cores;
bf16 on tensor cores); unknown GPUs give None.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["Peak", "peak_flops"]

# name fragment -> (fp32 FLOP/s, bf16 dense tensor-core FLOP/s), NVIDIA datasheets.
_GPUS = {
    "H200": (67e12, 989e12),
    "H100 PCIe": (51e12, 756e12),
    "H100": (67e12, 989e12),  # SXM
    "A100": (19.5e12, 312e12),
    "L4": (30.3e12, 121e12),
}


@dataclass(frozen=True)
class Peak:
    """A peak rate and how it was derived."""

    flops_per_s: float
    derivation: str


def _cpuinfo() -> dict[str, str]:
    from cnnzoo.provenance import cpuinfo

    return cpuinfo()


def _clock_hz(info: dict[str, str]) -> tuple[float, str] | None:
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        return int(path.read_text()) * 1e3, "cpufreq max"
    except (OSError, ValueError):
        pass
    if "cpu MHz" in info:
        return float(info["cpu MHz"]) * 1e6, "/proc/cpuinfo cpu MHz"
    return None


def peak_flops(
    dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> Peak | None:
    """The peak FLOP/s for `dtype` (fp32 or bf16) on `device`, or None when unknown."""
    device = torch.device(device)
    bf16 = dtype == torch.bfloat16
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for fragment, (fp32_rate, bf16_rate) in _GPUS.items():
            if fragment in name:
                rate = bf16_rate if bf16 else fp32_rate
                kind = "bf16 dense tensor-core" if bf16 else "fp32 non-tensor-core"
                return Peak(rate, f"{name}: NVIDIA datasheet {kind} peak {rate / 1e12:g} TFLOP/s")
        return None
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    clock = _clock_hz(info)
    if clock is None:
        return None
    hz, clock_source = clock
    amd = info.get("vendor_id") == "AuthenticAMD"
    if "avx512f" in flags and amd and "avx512_vp2intersect" not in flags:
        fp32, isa = 32, "AVX-512 on 256-bit units, AMD Zen 4"
    elif "avx512f" in flags:
        fp32, isa = 64, "2 x 512-bit FMA"
    elif "avx2" in flags and "fma" in flags:
        fp32, isa = 32, "2 x AVX2 FMA"
    else:
        return None
    per_cycle, how = fp32, f"{fp32} fp32 FLOP/cycle ({isa})"
    if bf16:
        if "amx_bf16" in flags:
            per_cycle, how = 1024, "1024 bf16 FLOP/cycle (AMX)"
        elif "avx512_bf16" in flags:
            per_cycle, how = 2 * fp32, f"{2 * fp32} bf16 FLOP/cycle (AVX512-BF16, 2 x fp32)"
        else:
            return None
    cores = torch.get_num_threads()
    rate = cores * hz * per_cycle
    return Peak(
        rate,
        f"{cores} cores x {hz / 1e9:.2f} GHz ({clock_source}) x {how} = {rate / 1e9:.0f} GFLOP/s",
    )
