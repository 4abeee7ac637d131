"""The throughput runner: warm-up, then timed repetitions, median with min and max.

Every case in one measurement takes turns (repetition 1 of each case, then repetition 2 of each,
...), so that a peer measured in the same run sees the same machine load. Peak memory is taken
during the warm-up calls, not the timed ones: on a GPU `torch.cuda.max_memory_allocated`, on a
CPU the growth of the process's resident set (sampled from /proc/self/statm every millisecond)
over its size before the calls.

Results are rows of a CSV that record the machine (CPU model, cores, threads, device), torch and
cnnzoo versions, dtype, memory format, batch size and the date.
"""

from __future__ import annotations

import csv
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from cnnzoo.bench.optimize import Precision, bf16_support, optimize_for_inference
from cnnzoo.errors import UsageError
from cnnzoo.registry import create_model, get_spec

__all__ = ["Case", "Timing", "append_csv", "bench", "inference_case", "measure", "train_case"]

Mode = Literal["inference", "train"]


@dataclass(frozen=True)
class Case:
    """One thing to time: `step()` processes one batch of `batch_size` images.

    Attributes:
        label: how the case is named in tables ("cnnzoo", "torchvision", ...).
        model: the architecture.
        step: runs one batch (a forward in inference, a forward-backward-update in training).
        settings: what was measured (mode, precision, memory format, ...); goes into the CSV.
    """

    label: str
    model: str
    batch_size: int
    step: Callable[[], object]
    device: torch.device
    settings: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Timing:
    """The timed repetitions of one case (seconds per batch)."""

    label: str
    model: str
    batch_size: int
    device: str
    seconds: tuple[float, ...]
    peak_memory_bytes: int | None
    settings: dict[str, object]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def fastest(self) -> float:
        return min(self.seconds)

    @property
    def slowest(self) -> float:
        return max(self.seconds)

    @property
    def images_per_s(self) -> float:
        return self.batch_size / self.median

    def row(self) -> dict[str, object]:
        """One CSV row: the result, the settings and the machine."""
        return {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": self.model,
            "label": self.label,
            **self.settings,
            "batch_size": self.batch_size,
            "device": self.device,
            "repeat": len(self.seconds),
            "median_ms": round(1e3 * self.median, 3),
            "min_ms": round(1e3 * self.fastest, 3),
            "max_ms": round(1e3 * self.slowest, 3),
            "images_per_s": round(self.images_per_s, 2),
            "peak_memory_mib": (
                None if self.peak_memory_bytes is None else round(self.peak_memory_bytes / 2**20, 1)
            ),
            **machine(torch.device(self.device)),
        }

    def describe(self) -> str:
        mem = (
            ""
            if self.peak_memory_bytes is None
            else f", peak +{self.peak_memory_bytes / 2**20:.0f} MiB"
        )
        return (
            f"{self.label:>12} {self.model} batch {self.batch_size}: median "
            f"{1e3 * self.median:.2f} ms (min {1e3 * self.fastest:.2f}, max "
            f"{1e3 * self.slowest:.2f}), {self.images_per_s:.1f} images/s{mem}"
        )


def machine(device: torch.device | str = "cpu") -> dict[str, object]:
    """The CSV columns that say where a figure was measured."""
    from cnnzoo.provenance import environment

    env = environment()
    device = torch.device(device)
    return {
        "cpu": env["cpu"],
        "cpu_count": env["cpu_count"],
        "threads": torch.get_num_threads(),
        "gpu": env["cuda"] if device.type == "cuda" else None,
        "bf16_native": bf16_support(device),
        "torch": env["torch"],
        "cnnzoo": env["cnnzoo"],
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_memory(step: Callable[[], object], device: torch.device, calls: int) -> int | None:
    """Run `step` `calls` times; return the peak memory growth it caused."""
    if device.type == "cuda":
        _sync(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(calls):
            step()
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    if not Path("/proc/self/statm").exists():
        for _ in range(calls):
            step()
        return None
    before = peak = _rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for _ in range(calls):
            step()
    finally:
        done.set()
        sampler.join()
    return max(0, max(peak, _rss_bytes()) - before)


def measure(cases: Sequence[Case], repeat: int = 10, warmup: int = 2) -> list[Timing]:
    """Warm every case up (measuring its peak memory), then time `repeat` turns of all cases.

    Returns:
        One `Timing` per case, in the order given.
    """
    peaks = [_peak_memory(c.step, c.device, max(1, warmup)) for c in cases]
    seconds: list[list[float]] = [[] for _ in cases]
    for _ in range(repeat):
        for case, times in zip(cases, seconds, strict=True):
            _sync(case.device)
            start = time.perf_counter()
            case.step()
            _sync(case.device)
            times.append(time.perf_counter() - start)
    return [
        Timing(c.label, c.model, c.batch_size, str(c.device), tuple(t), peak, dict(c.settings))
        for c, t, peak in zip(cases, seconds, peaks, strict=True)
    ]


def _input(batch_size: int, input_size: Sequence[int], device: torch.device) -> Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch_size, *input_size, generator=generator).to(device)


def inference_case(
    label: str,
    model: nn.Module,
    model_name: str,
    batch_size: int,
    input_size: Sequence[int],
    device: torch.device | str = "cpu",
    optimize: bool = True,
    precision: Precision = "fp32",
    channels_last: bool = False,
    compile: bool = False,
) -> Case:
    """A forward pass under `torch.inference_mode`.

    With `optimize`, the model goes through `optimize_for_inference` (batch norm folded,
    `precision`, `channels_last`, `compile`); without it, it runs as given (eager fp32, the
    way a plain PyTorch user runs a model).
    """
    device = torch.device(device)
    x = _input(batch_size, input_size, device)
    if optimize:
        net = optimize_for_inference(model, precision, compile, channels_last, device)
        folded = len(net.folded)
    else:
        if precision != "fp32" or channels_last or compile:
            raise ValueError("an unoptimized case runs eager fp32 contiguous")
        net, folded = model.eval().to(device), 0

    def step() -> Tensor:
        with torch.inference_mode():
            return net(x)

    settings = _settings("inference", precision, channels_last, compile, optimize)
    settings["bn_folded"] = folded
    return Case(label, model_name, batch_size, step, device, settings)


def train_case(
    label: str,
    model: nn.Module,
    model_name: str,
    batch_size: int,
    input_size: Sequence[int],
    num_classes: int,
    device: torch.device | str = "cpu",
    precision: Precision = "fp32",
    channels_last: bool = False,
    compile: bool = False,
) -> Case:
    """One training step: zero grads, forward (bf16 autocast if asked), cross-entropy, backward,
    SGD with momentum. The model is trained in place (the caller passes a fresh one)."""
    device = torch.device(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.train().to(device, memory_format=memory_format)
    x = _input(batch_size, input_size, device).contiguous(memory_format=memory_format)
    y = torch.randint(0, num_classes, (batch_size,), generator=torch.Generator().manual_seed(0))
    y = y.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    net = torch.compile(model) if compile else model
    autocast = precision == "bf16"

    def step() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
        return loss

    settings = _settings("train", precision, channels_last, compile, optimize=False)
    return Case(label, model_name, batch_size, step, device, settings)


def _settings(
    mode: str, precision: str, channels_last: bool, compile: bool, optimize: bool
) -> dict[str, object]:
    return {
        "mode": mode,
        "precision": precision,
        "dtype": str(torch.bfloat16 if precision == "bf16" else torch.float32),
        "memory_format": "channels_last" if channels_last else "contiguous",
        "compiled": compile,
        "optimized": optimize,
    }


def torchvision_model(name: str) -> nn.Module:
    """torchvision's build of a registered architecture (random weights)."""
    spec = get_spec(name)
    if spec.torchvision_name is None:
        raise UsageError(f"torchvision has no {name!r}")
    import torchvision

    return torchvision.models.get_model(
        spec.torchvision_name, weights=None, num_classes=spec.num_classes
    )


def bench(
    name: str,
    batch_sizes: Sequence[int] = (1, 16),
    mode: Mode = "inference",
    precision: Precision = "fp32",
    channels_last: bool = False,
    compile: bool = False,
    against: str | None = None,
    repeat: int = 10,
    warmup: int = 2,
    input_size: Sequence[int] | None = None,
    device: torch.device | str | None = None,
) -> list[Timing]:
    """Time a registered model, and optionally its torchvision twin in the same run.

    Args:
        name: registered model name.
        batch_sizes: one measurement per batch size.
        mode: "inference" (forward of `optimize_for_inference(model, ...)`) or "train" (one
            SGD step, bf16 by autocast).
        precision, channels_last, compile: how cnnzoo's model runs.
        against: "torchvision" to time torchvision's same architecture as the peer, the way
            its users run it: eager fp32, contiguous (with `torch.inference_mode` for
            inference, a plain fp32 step for training).
        repeat, warmup: timed repetitions and untimed warm-up calls per case.
        input_size: (C, H, W); defaults to the spec's.
        device: defaults to CUDA when available, else CPU.

    Returns:
        The timings, cnnzoo's first and the peer's after it, per batch size.
    """
    if mode not in ("inference", "train"):
        raise UsageError(f"mode must be 'inference' or 'train', got {mode!r}")
    if against not in (None, "torchvision"):
        raise UsageError(f"--against takes 'torchvision', got {against!r}")
    spec = get_spec(name)
    size = tuple(input_size or spec.input_size)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    timings: list[Timing] = []
    for batch in batch_sizes:
        torch.manual_seed(0)
        ours = create_model(name)
        peer = torchvision_model(name) if against else None
        if mode == "inference":
            cases = [
                inference_case(
                    "cnnzoo",
                    ours,
                    name,
                    batch,
                    size,
                    device,
                    True,
                    precision,
                    channels_last,
                    compile,
                )
            ]
            if peer is not None:
                cases.append(
                    inference_case("torchvision", peer, name, batch, size, device, optimize=False)
                )
        else:
            cases = [
                train_case(
                    "cnnzoo",
                    ours,
                    name,
                    batch,
                    size,
                    spec.num_classes,
                    device,
                    precision,
                    channels_last,
                    compile,
                )
            ]
            if peer is not None:
                cases.append(
                    train_case("torchvision", peer, name, batch, size, spec.num_classes, device)
                )
        timings += measure(cases, repeat, warmup)
    return timings


def append_csv(timings: Sequence[Timing], path: str | Path) -> Path:
    """Append one row per timing to a CSV (writing the header when the file is new)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [t.row() for t in timings]
    if not rows:
        return path
    fields = list(rows[0])
    for row in rows[1:]:
        fields += [k for k in row if k not in fields]
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with path.open(newline="") as f:
            header = next(csv.reader(f), [])
        fields = header + [k for k in fields if k not in header]
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)
    return path
