"""The machine's ceilings: measured (a large GEMM, a large copy) and derived from the datasheet.

`measure_ceilings` is what the benchmarks compare against: the rate the fastest large matrix
product reaches on this machine in this run (fp32, and bf16 where the device computes it
natively), and the memory bandwidth of a large tensor copy. Several dense products are timed,
since no one library or shape wins everywhere, and the fastest sets the roof: `torch.matmul`
(BLAS: MKL on x86), a 1x1 convolution in channels-last (oneDNN on the CPU, cuDNN on CUDA), which
is the same product, and two 3x3 convolutions in channels-last (oneDNN's direct kernels: an
implicit GEMM, FLOPs counted as 2 x MACs like every layer's). On an AMD Zen 4 the matmul reached
168-202 GFLOP/s fp32 while convolutions in a network reached 280-438; on an Intel Xeon with AMX
the matmul reached 180-190 fp32 and 520-740 bf16 while onnxruntime ran ResNet-50 at 197 and
VGG-16's bf16 convolutions ran at 617, and the 3x3 convolutions alone reached 254 and 927: a
roof from the matmul alone sat below layers measured above it. These are the roofs a network's
layers can reach at best; the datasheet peak below is the theoretical one, kept to say how far
the measured roof is from it.

Datasheet peak (`peak_flops`), CPU: cores used x clock x FLOPs per cycle per core, the last from
the instruction set:
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

import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnzoo.bench.timing import time_calls

__all__ = ["Ceilings", "Peak", "measure_ceilings", "peak_flops"]

GEMM_SIZE = 2048  # n of the n x n @ n x n product: 17 GFLOP, large enough to reach the roof
COPY_BYTES = 256 * 2**20  # the copied tensor: far beyond any CPU's last-level cache

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


@dataclass(frozen=True)
class Ceilings:
    """The measured roofs of this machine.

    Attributes:
        gemm: precision ("fp32", "bf16") -> FLOP/s of a large square matrix product; bf16
            only where the device computes it natively.
        bandwidth: bytes/s of a large tensor copy (read + write counted).
        derivation: how each was measured.
    """

    gemm: dict[str, float]
    bandwidth: float
    derivation: str
    kernels: dict[str, str] | None = None  # precision -> which GEMM set the roof

    def roof_kernel(self, precision: str) -> str | None:
        """The kernel whose rate is the `precision` roof (None: not measured or not known)."""
        kernel = (self.kernels or {}).get(precision)
        return kernel.split("; ")[0] if kernel else None

    @property
    def ridge(self) -> dict[str, float]:
        """Arithmetic intensity (FLOP/byte) where the compute roof meets the memory roof."""
        return {p: rate / self.bandwidth for p, rate in self.gemm.items()}

    def describe(self) -> str:
        kernels = self.kernels or {}
        rates = ", ".join(
            f"{p} GEMM {rate / 1e9:,.0f} GFLOP/s" + (f" ({kernels[p]})" if p in kernels else "")
            for p, rate in self.gemm.items()
        )
        return f"{rates}, copy {self.bandwidth / 1e9:,.1f} GB/s ({self.derivation})"


def measure_ceilings(
    device: torch.device | str = "cpu",
    gemm_size: int = GEMM_SIZE,
    copy_bytes: int = COPY_BYTES,
    repeat: int = 5,
    warmup: int = 1,
    bf16: bool | None = None,
) -> Ceilings:
    """Time a large GEMM (fp32, and bf16 if native) and a large copy on `device`, now.

    Args:
        device: where to measure.
        gemm_size: n of the n x n matrices (2 n^3 FLOPs per product).
        copy_bytes: size of the copied tensor (2 x copy_bytes moved per copy).
        repeat, warmup: timed and untimed calls; the median is kept.
        bf16: also time the bf16 GEMM; defaults to whether the device computes bf16 natively.
    """
    from cnnzoo.bench.optimize import bf16_support

    device = torch.device(device)
    if bf16 is None:
        bf16 = bf16_support(device) is not None
    gemm: dict[str, float] = {}
    kernels: dict[str, str] = {}
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        if precision == "bf16" and not bf16:
            continue
        rates = {}
        for name, flops, call in _gemm_kernels(gemm_size, dtype, device):
            with torch.inference_mode():
                seconds = time_calls(call, repeat, warmup, device)
            rates[name] = flops / statistics.median(seconds)
        kernels[precision] = max(rates, key=rates.__getitem__)
        gemm[precision] = rates[kernels[precision]]
        kernels[precision] += "".join(
            f"; {n}: {r / 1e9:,.0f} GFLOP/s" for n, r in rates.items() if n != kernels[precision]
        )
    src = torch.ones(copy_bytes // 4, device=device)
    dst = torch.empty_like(src)
    seconds = time_calls(lambda: dst.copy_(src), repeat, warmup, device)
    bandwidth = 2 * src.nbytes / statistics.median(seconds)
    derivation = (
        f"median of {repeat} after {warmup} warm-up: the fastest of a {gemm_size}x{gemm_size} "
        "matmul, a 1x1 convolution of the same size and two 3x3 convolutions of about its "
        f"FLOPs, copy of {copy_bytes / 2**20:.0f} MiB "
        f"counted as read + write, {torch.get_num_threads()} threads"
    )
    return Ceilings(gemm, bandwidth, derivation, kernels)


def _gemm_kernels(n: int, dtype: torch.dtype, device: torch.device):
    """The large matrix products timed for the compute roof: (name, FLOPs, call)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(device, dtype)
    b = torch.randn(n, n, generator=generator).to(device, dtype)
    yield f"{n}x{n} matmul", 2 * n**3, lambda: a @ b
    # The same product as a 1x1 convolution: (batch x 32 x 32 positions) x c by c x c, with
    # about the matmul's FLOPs.
    c = max(8, n // 2)
    batch = max(1, round(n**3 / (c * c * 1024)))
    x = torch.randn(batch, c, 32, 32, generator=generator).to(device, dtype)
    conv = torch.nn.Conv2d(c, c, 1, bias=False).to(device, dtype)
    x, conv = x.to(memory_format=torch.channels_last), conv.to(memory_format=torch.channels_last)
    yield f"1x1 conv {c}->{c} on {batch}x32x32, channels-last", 2 * batch * 1024 * c * c, (
        lambda: conv(x)
    )
    # 3x3 convolutions of VGG's early shapes (128 channels at 112x112, 64 at 224x224 for
    # n = 2048), the fastest dense kernels measured on the CPUs here, again with about the
    # matmul's FLOPs.
    for channels, side in ((max(8, n // 16), max(8, n * 7 // 128)),
                           (max(4, n // 32), max(16, n * 7 // 64))):  # fmt: skip
        per_image = 2 * side * side * channels * channels * 9
        images = max(1, round(2 * n**3 / per_image))
        x3 = torch.randn(images, channels, side, side, generator=generator).to(device, dtype)
        conv3 = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(device, dtype)
        x3 = x3.to(memory_format=torch.channels_last)
        conv3 = conv3.to(memory_format=torch.channels_last)
        yield (
            f"3x3 conv {channels}->{channels} on {images}x{side}x{side}, channels-last",
            images * per_image,
            lambda conv3=conv3, x3=x3: conv3(x3),
        )
