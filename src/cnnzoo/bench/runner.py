"""The throughput runner: warm-up, then timed repetitions, median with min and max.

Every case in one measurement takes turns (repetition 1 of each case, then repetition 2 of each,
...), so that a peer measured in the same run sees the same machine load. Peak memory is taken
during the warm-up calls, not the timed ones: on a GPU `torch.cuda.max_memory_allocated`, on a
CPU the growth of the process's resident set (sampled from /proc/self/statm every millisecond)
over its size before the calls.

Like for like: `bench` runs cnnzoo's model and every peer the same way unless asked otherwise
(eager, fp32, contiguous, batch norms kept), and every row says what its case was (dtype, memory
format, batch norms folded, compiled, backend). The peers a user would pick instead of cnnzoo:

- ``torchvision``: torchvision's build of the same architecture, run exactly as cnnzoo's case
  (with ``optimize``, through the same `optimize_for_inference`);
- ``channels-last``: torchvision's model (cnnzoo's where torchvision has none), eager fp32,
  channels-last;
- ``compile``: the same model under `torch.compile` (Inductor, weights frozen), fp32;
- ``onnxruntime``: cnnzoo's own ONNX export (`cnnzoo.export.export_model`) in onnxruntime's CPU
  provider, as many intra-op threads as torch uses.

Achieved GFLOP/s count 2 x the analyzer's MACs per image (the convolutions and matrix products,
the work a GEMM does), so that they compare with the GEMM rate of `peak.measure_ceilings`,
timed in the same run. Results are rows of a CSV that record the machine (`machine_record`), the
load around the run, torch and cnnzoo versions, the case and the batch size.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from cnnzoo.bench.machine import Load, LoadWatch, machine_record
from cnnzoo.bench.optimize import bf16_support, optimize_for_inference, prepare
from cnnzoo.bench.peak import Ceilings, measure_ceilings
from cnnzoo.bench.timing import sync
from cnnzoo.errors import UsageError
from cnnzoo.fileio import atomic_write_text
from cnnzoo.registry import create_model, get_spec, list_models

__all__ = [
    "PEERS",
    "BenchRun",
    "Case",
    "Timing",
    "append_csv",
    "bench",
    "batch_flops",
    "case_description",
    "export_onnx",
    "inference_case",
    "measure",
    "onnxruntime_case",
    "parse_peers",
    "peer_cases",
    "speedups",
    "torchvision_model",
    "train_case",
]

Mode = Literal["inference", "train"]
Optimize = Literal["fp32", "bf16", "auto"]
PEERS = ("torchvision", "channels-last", "compile", "onnxruntime")


@dataclass(frozen=True)
class Case:
    """One thing to time: `step()` processes one batch of `batch_size` images.

    Attributes:
        label: how the case is named in tables ("cnnzoo", "torchvision", ...).
        model: the architecture.
        step: runs one batch (a forward in inference, a forward-backward-update in training).
        settings: what was measured (mode, precision, memory format, ...); goes into the CSV.
        flops: the FLOPs of one batch (2 x MACs x batch), when known.
    """

    label: str
    model: str
    batch_size: int
    step: Callable[[], object]
    device: torch.device
    settings: dict[str, object] = field(default_factory=dict)
    flops: int | None = None


def case_description(settings: dict[str, object]) -> str:
    """What a case is, in one phrase: dtype, memory format, batch norms, compilation, backend."""
    parts = [
        str(settings.get("precision", "fp32")),
        str(settings.get("memory_format", "contiguous")),
    ]
    if "graph_optimization" in settings:  # onnxruntime rewrites the graph itself
        after = settings.get("threads_after_run")
        return ", ".join(
            [*parts, str(settings["graph_optimization"]), str(settings["backend"])]
            + ([f"threads {after} after each run"] if after else [])
        )
    if settings.get("mode", "inference") == "inference":
        parts.append(f"BN folded {settings.get('bn_folded', 0)}")
    parts.append("compiled (inductor, frozen)" if settings.get("compiled") else "eager")
    parts.append(str(settings.get("backend", "torch")))
    return ", ".join(parts)


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
    flops: int | None = None

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

    @property
    def flops_per_s(self) -> float | None:
        return None if self.flops is None else self.flops / self.median

    @property
    def case(self) -> str:
        return case_description(self.settings)

    def row(self) -> dict[str, object]:
        """One CSV row: the result, the settings and the machine."""
        rate = self.flops_per_s
        return {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": self.model,
            "label": self.label,
            "case": self.case,
            **self.settings,
            "batch_size": self.batch_size,
            "device": self.device,
            "repeat": len(self.seconds),
            "median_ms": round(1e3 * self.median, 3),
            "min_ms": round(1e3 * self.fastest, 3),
            "max_ms": round(1e3 * self.slowest, 3),
            "images_per_s": round(self.images_per_s, 2),
            "gflops_per_s": None if rate is None else round(rate / 1e9, 2),
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
        rate = "" if self.flops_per_s is None else f", {self.flops_per_s / 1e9:.1f} GFLOP/s"
        return (
            f"{self.label:>24} [{self.case}] {self.model} batch {self.batch_size}: median "
            f"{1e3 * self.median:.2f} ms (min {1e3 * self.fastest:.2f}, max "
            f"{1e3 * self.slowest:.2f}), {self.images_per_s:.1f} images/s{rate}{mem}"
        )


def machine(device: torch.device | str = "cpu") -> dict[str, object]:
    """The CSV columns that say where a figure was measured (with native bf16 support)."""
    return {**machine_record(device), "bf16_native": bf16_support(device)}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_memory(step: Callable[[], object], device: torch.device, calls: int) -> int | None:
    """Run `step` `calls` times; return the peak memory growth it caused."""
    if device.type == "cuda":
        sync(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(calls):
            step()
        sync(device)
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
            sync(case.device)
            start = time.perf_counter()
            case.step()
            sync(case.device)
            times.append(time.perf_counter() - start)
    return [
        Timing(
            c.label, c.model, c.batch_size, str(c.device), tuple(t), peak, dict(c.settings), c.flops
        )
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
    optimize: Optimize | None = None,
    precision: str = "fp32",
    channels_last: bool = False,
    compile: bool = False,
    source: str = "cnnzoo",
    flops: int | None = None,
) -> Case:
    """A forward pass under `torch.inference_mode`.

    Without `optimize`, the model runs as asked and nothing else: `precision`, `channels_last`
    and `compile` (eager fp32 contiguous by default, the way a plain PyTorch user runs a model).
    With `optimize`, it goes through `optimize_for_inference(model, optimize, ...)`: batch norms
    folded, channels-last, and for "auto" whatever the measured choice was; `precision` and
    `channels_last` are then ignored.
    """
    device = torch.device(device)
    x = _input(batch_size, input_size, device)
    if optimize is None:
        net = prepare(model, precision, compile, channels_last, device, fold=False)
    else:
        net = optimize_for_inference(
            model, optimize, compile, True, device, example=x if optimize == "auto" else None
        )

    def step() -> Tensor:
        with torch.inference_mode():
            return net(x)

    settings = _settings("inference", net.precision, net.channels_last, compile, optimize)
    settings["bn_folded"] = len(net.folded)
    settings["source"] = source
    if net.choice is not None:
        settings["auto_choice"] = net.choice.candidates[net.choice.chosen].name
    return Case(label, model_name, batch_size, step, device, settings, flops)


def onnxruntime_case(
    label: str,
    onnx_path: str | Path,
    model_name: str,
    batch_size: int,
    input_size: Sequence[int],
    device: torch.device | str = "cpu",
    flops: int | None = None,
) -> Case:
    """A forward pass of an ONNX file in onnxruntime: its CPU provider (CUDA's on a GPU), full
    graph optimization, as many intra-op threads as torch uses.

    Its worker threads stop spinning when a run ends (`session.force_spinning_stop`). By
    default they spin on for some 20 ms, a whole core each, waiting for the next run, and take
    the cores from whatever is timed next: measured here (resnet50_tv, batch 1, 2 threads), the
    case after onnxruntime's in each round took 1.6x as long as the same model before it."""
    import numpy as np
    import onnxruntime as ort

    device = torch.device(device)
    provider = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        raise UsageError(f"onnxruntime has no {provider} here; pip install onnxruntime-gpu")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.force_spinning_stop", "1")
    session = ort.InferenceSession(str(onnx_path), options, providers=[provider])
    name = session.get_inputs()[0].name
    x = np.ascontiguousarray(_input(batch_size, input_size, torch.device("cpu")).numpy())
    x = x.astype(np.float32)

    def step() -> object:
        return session.run(None, {name: x})

    settings = _settings("inference", "fp32", False, False, None)
    settings["bn_folded"] = 0
    settings["graph_optimization"] = "graph optimized by onnxruntime (ORT_ENABLE_ALL)"
    settings["backend"] = f"onnxruntime {ort.__version__} {provider}"
    settings["threads_after_run"] = "stop spinning"
    settings["source"] = "cnnzoo ONNX export"
    return Case(label, model_name, batch_size, step, device, settings, flops)


def train_case(
    label: str,
    model: nn.Module,
    model_name: str,
    batch_size: int,
    input_size: Sequence[int],
    num_classes: int,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    channels_last: bool = False,
    compile: bool = False,
    flops: int | None = None,
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

    settings = _settings("train", precision, channels_last, compile, None)
    settings["source"] = "cnnzoo" if label.startswith("cnnzoo") else label
    return Case(label, model_name, batch_size, step, device, settings, flops)


def _settings(
    mode: str, precision: str, channels_last: bool, compile: bool, optimize: str | None
) -> dict[str, object]:
    return {
        "mode": mode,
        "precision": precision,
        "dtype": str(torch.bfloat16 if precision == "bf16" else torch.float32),
        "memory_format": "channels_last" if channels_last else "contiguous",
        "compiled": compile,
        "optimized": optimize or False,
        "backend": "torch",
    }


def torchvision_twin(name: str) -> str | None:
    """The cnnzoo model that is torchvision's `name`, when cnnzoo's `name` is not it.

    cnnzoo's `resnet50` is the paper's (stride on the first 1x1 of a bottleneck); torchvision's
    resnet50 is the 'v1.5' form, registered as `resnet50_tv`.
    """
    if get_spec(name).torchvision_name is not None:
        return None
    for other in list_models():
        if get_spec(other).torchvision_name == name:
            return other
    return None


def torchvision_model(name: str) -> nn.Module:
    """torchvision's build of a registered architecture (random weights).

    Raises:
        UsageError: torchvision has no such network; when torchvision's model of that name is
            another registered form, the message names it.
    """
    spec = get_spec(name)
    if spec.torchvision_name is None:
        twin = torchvision_twin(name)
        if twin is not None:
            raise UsageError(
                f"torchvision's {name} is not cnnzoo's {name}: it is cnnzoo's {twin} "
                f"({get_spec(twin).summary}); compare like with like: "
                f"cnnzoo bench {twin} --against torchvision"
            )
        raise UsageError(f"torchvision has no {name!r}; leave torchvision out of --against")
    import torchvision

    return torchvision.models.get_model(
        spec.torchvision_name, weights=None, num_classes=spec.num_classes
    )


def parse_peers(against: str | Sequence[str] | None) -> tuple[str, ...]:
    """'torchvision,compile' -> ('torchvision', 'compile'), each one of `PEERS`."""
    if against is None:
        return ()
    items = against.split(",") if isinstance(against, str) else list(against)
    peers = tuple(p.strip() for p in items if p.strip())
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise UsageError(
            f"--against takes a comma-separated list of {', '.join(PEERS)}; "
            f"unknown: {', '.join(unknown)}"
        )
    return peers


def batch_flops(name: str, size: Sequence[int], batch: int) -> int:
    """2 x the analyzer's MACs of one batch: the work a GEMM would do for it."""
    from cnnzoo.analysis import count_macs, meta_model

    return 2 * count_macs(meta_model(name), tuple(size)) * batch


@dataclass(frozen=True)
class BenchRun:
    """One `bench` run: the timings and what they were measured against.

    Attributes:
        model: the registered name.
        timings: per batch size, cnnzoo's row first, then the peers' in the order asked.
        ceilings: the machine's measured GEMM rates and copy bandwidth (None: not measured).
        load: the load average before and after, and whether the run counts.
        notes: which side got what, name mappings, peers left out and why.
    """

    model: str
    timings: tuple[Timing, ...]
    ceilings: Ceilings | None
    load: Load
    notes: tuple[str, ...] = ()

    def fraction_of_gemm(self, t: Timing) -> float | None:
        """The row's achieved FLOP/s over the measured GEMM rate of its precision."""
        if self.ceilings is None or t.flops_per_s is None:
            return None
        rate = self.ceilings.gemm.get(str(t.settings.get("precision")))
        return None if rate is None else t.flops_per_s / rate

    def rows(self) -> list[dict[str, object]]:
        """The CSV rows: each timing's, with the ceilings and the load."""
        rows = []
        for t in self.timings:
            fraction = self.fraction_of_gemm(t)
            ceilings = self.ceilings
            rows.append(
                {
                    **t.row(),
                    "fraction_of_gemm": None if fraction is None else round(fraction, 4),
                    "gemm_fp32_gflops": _giga(ceilings and ceilings.gemm.get("fp32")),
                    "gemm_bf16_gflops": _giga(ceilings and ceilings.gemm.get("bf16")),
                    "copy_gb_per_s": _giga(ceilings and ceilings.bandwidth),
                    "gemm_fp32_kernel": ceilings and ceilings.roof_kernel("fp32"),
                    "gemm_bf16_kernel": ceilings and ceilings.roof_kernel("bf16"),
                    "load_before": _round(self.load.before),
                    "load_after": _round(self.load.after),
                    "other_cpu_cores": _round(self.load.others),
                    "load_counts": self.load.counts,
                }
            )
        return rows

    def lines(self) -> list[str]:
        """What `cnnzoo bench` prints: every row with its case, then the speed-ups."""
        out = []
        for t in self.timings:
            fraction = self.fraction_of_gemm(t)
            share = (
                ""
                if fraction is None
                else f", {fraction:.0%} of the measured {t.settings['precision']} GEMM rate"
            )
            out.append(t.describe() + share)
        out += [r.describe() for r in speedups(self.timings)]
        if self.ceilings is not None:
            out.append(f"ceilings: {self.ceilings.describe()}")
        out.append(self.load.describe())
        out += [f"note: {n}" for n in self.notes]
        return out


def _giga(value: float | None) -> float | None:
    return None if value is None else round(value / 1e9, 2)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass(frozen=True)
class Speedup:
    """How much faster `case` is than `baseline` (baseline time / case time)."""

    batch_size: int
    case: Timing
    baseline: Timing

    @property
    def medians(self) -> float:
        return self.baseline.median / self.case.median

    @property
    def fastest(self) -> float:
        return self.baseline.fastest / self.case.fastest

    def describe(self) -> str:
        return (
            f"batch {self.batch_size}: {self.case.label} [{self.case.case}] vs "
            f"{self.baseline.label} [{self.baseline.case}]: {self.medians:.2f}x faster "
            f"(medians), {self.fastest:.2f}x (fastest)"
        )


def speedups(timings: Sequence[Timing], baseline: str | None = None) -> list[Speedup]:
    """Every row against the baseline of its batch size.

    Args:
        timings: rows of one or more batch sizes.
        baseline: the label to compare against; defaults to "torchvision" where a batch size
            has it, else that batch size's first row.
    """
    out = []
    for batch in dict.fromkeys(t.batch_size for t in timings):
        group = [t for t in timings if t.batch_size == batch]
        wanted = baseline or "torchvision"
        base = next((t for t in group if t.label == wanted), None)
        if base is None:
            if baseline is not None:
                raise UsageError(f"no row labelled {baseline!r} at batch {batch}")
            base = group[0]
        out += [Speedup(batch, t, base) for t in group if t is not base]
    return out


def bench(
    name: str,
    batch_sizes: Sequence[int] = (1, 16),
    mode: Mode = "inference",
    precision: str = "fp32",
    channels_last: bool = False,
    compile: bool = False,
    against: str | Sequence[str] | None = None,
    repeat: int = 10,
    warmup: int = 2,
    input_size: Sequence[int] | None = None,
    device: torch.device | str | None = None,
    optimize: Optimize | None = None,
    ceilings: bool = True,
    gemm_size: int | None = None,
) -> BenchRun:
    """Time a registered model, and the peers a user would pick instead, in the same run.

    Args:
        name: registered model name.
        batch_sizes: one measurement per batch size.
        mode: "inference" (a forward under `torch.inference_mode`) or "train" (one SGD step,
            bf16 by autocast).
        precision, channels_last, compile: how the model runs; the same for cnnzoo's model and
            the torchvision peer (eager fp32 contiguous by default).
        against: peers, a comma-separated string or a sequence of `PEERS`.
        repeat, warmup: timed repetitions and untimed warm-up calls per case.
        input_size: (C, H, W); defaults to the spec's.
        device: defaults to CUDA when available, else CPU.
        optimize: inference only: "fp32", "bf16" or "auto" sends cnnzoo's model and the
            torchvision peer through `optimize_for_inference` (the other peers are what they
            are; the notes say which side got what).
        ceilings: also time a large GEMM and a large copy, for the fraction of the machine's
            measured rate each row reaches.
        gemm_size: n of that GEMM (default `peak.GEMM_SIZE`; small for a smoke run).

    Returns:
        A `BenchRun`: per batch size cnnzoo's timing first and the peers' after it, the
        ceilings, the load around the run and notes.
    """
    if mode not in ("inference", "train"):
        raise UsageError(f"mode must be 'inference' or 'train', got {mode!r}")
    peers = parse_peers(against)
    if mode == "train" and (optimize or set(peers) - {"torchvision"}):
        raise UsageError("--optimize and peers other than torchvision are for inference")
    if optimize is not None and (precision != "fp32" or channels_last):
        raise UsageError(
            "--optimize chooses precision and memory format itself; drop --precision / "
            "--channels-last (or drop --optimize to set them by hand)"
        )
    spec = get_spec(name)
    size = tuple(input_size or spec.input_size)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if (precision == "bf16" or optimize == "bf16") and bf16_support(device) is None:
        raise UsageError(
            f"bf16 is not natively supported on {device} (no AVX512-BF16/AMX CPU or CUDA "
            "bf16): it would be emulated and slower than fp32; use fp32"
        )
    notes: list[str] = []
    if "torchvision" in peers:
        torchvision_model(name)  # fail before anything is timed, naming the right model
    elif torchvision_twin(name):
        twin = torchvision_twin(name)
        notes.append(f"torchvision's {name} is cnnzoo's {twin} ({get_spec(twin).summary})")
    watch = LoadWatch()
    onnx_dir = (
        tempfile.TemporaryDirectory(prefix="cnnzoo-bench-") if "onnxruntime" in peers else None
    )
    onnx_path = None
    timings: list[Timing] = []
    try:
        if onnx_dir is not None:
            onnx_path = export_onnx(name, size, Path(onnx_dir.name))
        for batch in batch_sizes:
            flops = batch_flops(name, size, batch)
            if mode == "inference":
                cases = _inference_cases(
                    name,
                    batch,
                    size,
                    device,
                    peers,
                    optimize,
                    precision,
                    channels_last,
                    compile,
                    onnx_path,
                    flops,
                    notes,
                )
            else:
                cases = _train_cases(
                    name, batch, size, device, peers, precision, channels_last, compile, flops
                )
            timings += measure(cases, repeat, warmup)
        measured = (
            measure_ceilings(device, **({"gemm_size": gemm_size} if gemm_size else {}))
            if ceilings
            else None
        )
    finally:
        if onnx_dir is not None:
            onnx_dir.cleanup()
    load = watch.stop()
    return BenchRun(name, tuple(timings), measured, load, tuple(dict.fromkeys(notes)))


def export_onnx(name: str, size: tuple[int, ...], folder: Path) -> Path:
    """cnnzoo's own ONNX export of `name` (seed 0, batch dimension free) into `folder`."""
    from cnnzoo.export import export_model

    torch.manual_seed(0)
    return export_model(
        create_model(name), "onnx", input_size=size, dynamic_batch=True, out=folder / f"{name}.onnx"
    ).path


def peer_cases(
    name: str,
    batch: int,
    size: tuple[int, ...],
    device: torch.device,
    peers: Sequence[str],
    ours: nn.Module,
    onnx_path: Path | None,
    same: dict[str, object],
) -> list[Case]:
    """The peers' cases, in the order asked (see the module docstring for each).

    Args:
        ours: cnnzoo's model, which stands in for torchvision's where torchvision has none.
        onnx_path: cnnzoo's ONNX export, for "onnxruntime".
        same: `inference_case` keywords of cnnzoo's case; the torchvision peer runs with them
            (like for like), the others with their own settings and the same `flops`.
    """
    has_tv = get_spec(name).torchvision_name is not None
    base, source = (torchvision_model(name), "torchvision") if has_tv else (ours, "cnnzoo")
    flops = same.get("flops")
    own = {
        "torchvision": (source, same),
        "channels-last": (f"{source} channels-last", {"channels_last": True, "flops": flops}),
        "compile": (f"{source} compile", {"compile": True, "flops": flops}),
    }
    cases = []
    for peer in peers:
        if peer == "onnxruntime":
            cases.append(
                onnxruntime_case("onnxruntime", onnx_path, name, batch, size, device, flops)
            )
            continue
        label, settings = own[peer]
        cases.append(
            inference_case(label, base, name, batch, size, device, source=source, **settings)
        )
    return cases


def _inference_cases(
    name: str,
    batch: int,
    size: tuple[int, ...],
    device: torch.device,
    peers: Sequence[str],
    optimize: Optimize | None,
    precision: str,
    channels_last: bool,
    compile: bool,
    onnx_path: Path | None,
    flops: int,
    notes: list[str],
) -> list[Case]:
    torch.manual_seed(0)
    ours = create_model(name)
    same = {
        "optimize": optimize,
        "precision": precision,
        "channels_last": channels_last,
        "compile": compile,
        "flops": flops,
    }
    cases = [inference_case("cnnzoo", ours, name, batch, size, device, **same)]
    cases += peer_cases(name, batch, size, device, peers, ours, onnx_path, same)
    if optimize is not None:
        sides = ", ".join(
            f"{c.label}: {c.settings['precision']} {c.settings['memory_format']}, "
            f"{c.settings['bn_folded']} batch norms folded"
            for c in cases
            if c.settings.get("optimized")
        )
        notes.append(f"--optimize {optimize} applied to {sides}; other peers run as labelled")
    return cases


def _train_cases(
    name: str,
    batch: int,
    size: tuple[int, ...],
    device: torch.device,
    peers: Sequence[str],
    precision: str,
    channels_last: bool,
    compile: bool,
    flops: int,
) -> list[Case]:
    classes = get_spec(name).num_classes
    torch.manual_seed(0)
    same = {
        "precision": precision,
        "channels_last": channels_last,
        "compile": compile,
        "flops": 3 * flops,  # forward + backward (twice the forward's products)
    }
    cases = [train_case("cnnzoo", create_model(name), name, batch, size, classes, device, **same)]
    if "torchvision" in peers:
        peer = torchvision_model(name)
        cases.append(train_case("torchvision", peer, name, batch, size, classes, device, **same))
    return cases


def append_csv(
    timings: Sequence[Timing | Mapping[str, object]] | BenchRun, path: str | Path
) -> Path:
    """Add one row per timing (or per row already made) to a CSV, keeping the rows already there.

    The file is rewritten atomically with the union of the old and new columns, so that a row
    with a column the earlier rows lack still lines up under its header.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(timings, BenchRun):
        rows = timings.rows()
    else:
        rows = [t.row() if isinstance(t, Timing) else dict(t) for t in timings]
    old: list[dict[str, object]] = []
    if path.exists() and path.stat().st_size:
        with path.open(newline="") as f:
            old = list(csv.DictReader(f))
    fields: list[str] = []
    for row in old + rows:
        fields += [k for k in row if k not in fields]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(old + rows)
    atomic_write_text(path, buffer.getvalue())
    return path
