"""A measured per-layer profile: time, FLOPs, bytes moved, and each layer's place on the roofline.

`profile` times every layer of a network (a leaf module call; forward hooks around it, median
of `repeat` forwards after `warmup` untimed ones) and joins the times to the analyzer's records
of the same layers (`cnnzoo.summary`: shapes and FLOPs, matched by qualified name, a repeated
call by its ``@2``, ``@3`` suffix). From the shapes:

- bytes moved = (every input element + every output element + the layer's parameters) x the
  element size: the traffic a layer needs at least when nothing stays in cache. A view (no new
  output and not in place, e.g. a flatten) moves nothing.
- arithmetic intensity = FLOPs / bytes moved.
- attainable rate = min(GEMM rate, intensity x bandwidth), with both ceilings measured in the
  same run (`peak.measure_ceilings`: the fastest large dense kernel in the profile's precision,
  a large copy). A layer whose intensity is below the ridge point (GEMM rate / bandwidth) is
  memory-bound, above it compute-bound. The bandwidth is main memory's (a 256 MiB copy): a
  layer whose tensors stay in the caches (element-wise layers right after the layer that wrote
  their input, at small batch) can sit above the memory roof, up to the caches' bandwidth.

Reconciliation with the whole model: the whole forward is also timed without hooks (median of
`repeat`). `Profile.reconciliation` is the sum of the per-layer medians over the whole-model
median; what the layers do not cover (functional calls such as a residual add written in
`forward`, Python between the layers, the hooks' own cost inside each timed span) is the
difference, `Profile.unattributed_s`. Medians do not add exactly, so the ratio is a check, not
an identity: far from 1 means the layer times do not explain the model's time.
"""

from __future__ import annotations

import csv
import io
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnzoo.bench.machine import Load, LoadWatch, machine_record
from cnnzoo.bench.optimize import Float32, prepare
from cnnzoo.bench.peak import Ceilings, measure_ceilings
from cnnzoo.bench.timing import sync, time_calls
from cnnzoo.errors import UsageError

__all__ = ["LayerProfile", "Profile", "bytes_moved", "classify", "profile"]

_ELEMENT_BYTES = {"fp32": 4, "bf16": 2}


def classify(intensity: float | None, gemm_rate: float, bandwidth: float) -> str:
    """ "compute" when `intensity` (FLOP/byte) reaches the ridge point gemm_rate / bandwidth,
    "memory" below it, "none" for a layer that moves nothing."""
    if intensity is None:
        return "none"
    return "compute" if intensity >= gemm_rate / bandwidth else "memory"


def bytes_moved(record: object, element_bytes: int) -> int:
    """The least traffic of one layer, from its analyzer record's shapes (see module docstring)."""
    if not record.activation_bytes and not record.in_place:
        return 0  # a view: no new output
    elements = sum(_numel(s) for s in record.input_shapes) + sum(
        _numel(s) for s in record.output_shapes
    )
    return (elements + record.params) * element_bytes


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class LayerProfile:
    """One layer: measured time, the analyzer's FLOPs and the bytes it moves.

    Attributes:
        name: qualified name, as in `cnnzoo.summary`.
        type: module class (or torch function of a functional call).
        kind: colour family (`cnnzoo.viz.layer_kind`): conv, pool, norm, ...
        seconds: per-forward times (None: a functional call, not timed on its own).
        flops: FLOPs of the layer for the whole batch (the analyzer's).
        bytes: bytes moved (see `bytes_moved`).
    """

    name: str
    type: str
    kind: str
    seconds: tuple[float, ...] | None
    flops: int
    bytes: int

    @property
    def median_s(self) -> float | None:
        return None if self.seconds is None else statistics.median(self.seconds)

    @property
    def intensity(self) -> float | None:
        """FLOPs per byte moved (None for a layer that moves nothing)."""
        return self.flops / self.bytes if self.bytes else None

    @property
    def flops_per_s(self) -> float | None:
        median = self.median_s
        return None if not median else self.flops / median


@dataclass(frozen=True)
class Profile:
    """The per-layer profile of one network at one batch and precision.

    Attributes:
        model: the registered name (or class name).
        input_size: one input (C, H, W).
        batch_size, precision, device: what was run.
        layers: one per analyzer record, in execution order.
        whole_seconds: the whole forward without hooks, per repetition.
        ceilings: the measured GEMM rates and copy bandwidth.
        load: the load average around the run.
        repeat, warmup: timed and untimed forwards.
    """

    model: str
    input_size: tuple[int, ...]
    batch_size: int
    precision: str
    device: str
    layers: tuple[LayerProfile, ...]
    whole_seconds: tuple[float, ...]
    ceilings: Ceilings
    load: Load
    repeat: int
    warmup: int

    @property
    def gemm_rate(self) -> float:
        return self.ceilings.gemm[self.precision]

    @property
    def ridge(self) -> float:
        """FLOP/byte where the GEMM roof meets the bandwidth roof."""
        return self.gemm_rate / self.ceilings.bandwidth

    def bound(self, layer: LayerProfile) -> str:
        return classify(layer.intensity, self.gemm_rate, self.ceilings.bandwidth)

    def attainable(self, layer: LayerProfile) -> float | None:
        """The roof over the layer: min(GEMM rate, intensity x bandwidth), FLOP/s."""
        if layer.intensity is None:
            return None
        return min(self.gemm_rate, layer.intensity * self.ceilings.bandwidth)

    @property
    def whole_median_s(self) -> float:
        return statistics.median(self.whole_seconds)

    @property
    def layers_median_s(self) -> float:
        """The sum of the per-layer medians."""
        return sum(t.median_s for t in self.layers if t.median_s is not None)

    @property
    def reconciliation(self) -> float:
        """Sum of per-layer medians / whole-model median (1.0: the layers explain it all)."""
        return self.layers_median_s / self.whole_median_s

    @property
    def unattributed_s(self) -> float:
        """Whole-model median minus the sum of per-layer medians."""
        return self.whole_median_s - self.layers_median_s

    @property
    def flops(self) -> int:
        return sum(t.flops for t in self.layers)

    def rows(self) -> list[dict[str, object]]:
        """One dict per layer: the CSV's rows."""
        rows = []
        for t in self.layers:
            rate, roof = t.flops_per_s, self.attainable(t)
            rows.append(
                {
                    "layer": t.name,
                    "type": t.type,
                    "kind": t.kind,
                    "median_ms": None if t.median_s is None else round(1e3 * t.median_s, 4),
                    "flops": t.flops,
                    "bytes": t.bytes,
                    "intensity_flop_per_byte": _r(t.intensity, 3),
                    "gflops_per_s": _r(rate and rate / 1e9, 3),
                    "bound": self.bound(t),
                    "fraction_of_roof": _r(rate and roof and rate / roof, 4),
                }
            )
        return rows

    def summary_lines(self) -> list[str]:
        """The totals, the reconciliation and the ceilings, in words."""
        size = "x".join(map(str, self.input_size))
        whole = self.whole_median_s
        memory = [t for t in self.layers if self.bound(t) == "memory"]
        memory_s = sum(t.median_s for t in memory if t.median_s is not None)
        return [
            f"{self.model}, batch {self.batch_size} x {size}, {self.precision}, {self.device}: "
            f"whole forward median {1e3 * whole:.2f} ms over {self.repeat} runs after "
            f"{self.warmup} warm-up, {self.flops / whole / 1e9:.1f} GFLOP/s "
            f"({self.flops / whole / self.gemm_rate:.0%} of the measured GEMM rate)",
            f"reconciliation: sum of per-layer medians {1e3 * self.layers_median_s:.2f} ms / "
            f"whole-model median {1e3 * whole:.2f} ms = {self.reconciliation:.2f} "
            f"(unattributed {1e3 * self.unattributed_s:+.2f} ms: functional calls, Python "
            "between layers, hooks)",
            f"memory-bound layers (intensity below the ridge {self.ridge:.1f} FLOP/byte): "
            f"{len(memory)} of {len(self.layers)}, {memory_s / whole:.0%} of the time",
            f"ceilings: {self.ceilings.describe()}",
            self.load.describe(),
        ]

    def to_table(self, top: int | None = None, width: int = 150) -> str:
        """The layers (the `top` slowest, or all in order) and the summary lines, as text."""
        from rich.console import Console
        from rich.table import Table

        from cnnzoo.formatting import format_bytes, format_count

        chosen = list(self.layers)
        if top is not None:
            chosen = sorted(chosen, key=lambda t: -(t.median_s or 0.0))[:top]
        table = Table(title=f"cnnzoo profile {self.model}", title_justify="left")
        for i, h in enumerate(
            ("layer", "type", "ms", "FLOPs", "bytes", "FLOP/B", "GFLOP/s", "bound", "of roof")
        ):
            table.add_column(h, justify="left" if i < 2 else "right")
        for t, row in zip(chosen, self.rows_for(chosen), strict=True):
            table.add_row(
                t.name,
                t.type,
                "" if t.median_s is None else f"{1e3 * t.median_s:.3f}",
                format_count(t.flops),
                format_bytes(t.bytes),
                "" if t.intensity is None else f"{t.intensity:.1f}",
                "" if row["gflops_per_s"] is None else f"{row['gflops_per_s']:.1f}",
                str(row["bound"]),
                "" if row["fraction_of_roof"] is None else f"{row['fraction_of_roof']:.0%}",
            )
        console = Console(width=width, record=True, file=io.StringIO())
        console.print(table)
        for line in self.summary_lines():
            console.print(line, highlight=False)
        return console.export_text()

    def rows_for(self, layers: Sequence[LayerProfile]) -> list[dict[str, object]]:
        index = {id(t): r for t, r in zip(self.layers, self.rows(), strict=True)}
        return [index[id(t)] for t in layers]

    def save(self, out: str | Path) -> list[Path]:
        """Write OUT/MODEL_profile.csv (one row per layer, with the run's machine, ceilings and
        load in every row) and return it."""
        from cnnzoo.fileio import atomic_write_text

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        extra = {
            **machine_record(self.device),
            "batch_size": self.batch_size,
            "precision": self.precision,
            "repeat": self.repeat,
            "whole_median_ms": round(1e3 * self.whole_median_s, 4),
            "reconciliation": round(self.reconciliation, 4),
            "gemm_gflops": round(self.gemm_rate / 1e9, 2),
            "gemm_kernel": self.ceilings.roof_kernel(self.precision),
            "copy_gb_per_s": round(self.ceilings.bandwidth / 1e9, 2),
            "load_before": self.load.before,
            "load_after": self.load.after,
            "other_cpu_cores": None if self.load.others is None else round(self.load.others, 3),
            "load_counts": self.load.counts,
        }
        rows = [{**r, **extra} for r in self.rows()]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path = out / f"{self.model}_profile.csv"
        atomic_write_text(path, buffer.getvalue())
        return [path]


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules timed as layers: those without children, and fp32 islands in a bf16
    network (`Float32`, which stand for the layer they wrap), under the caller's names."""
    leaves = []
    skip: set[str] = set()
    for name, module in model.named_modules():
        if any(name.startswith(s + ".") for s in skip):
            continue
        if isinstance(module, Float32):
            skip.add(name)
            leaves.append((name, module))
        elif not module._modules and name:
            leaves.append((name, module))
    return leaves


class _LayerTimer:
    """Forward hooks that time each call of each leaf module (a repeated call as NAME@k)."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.device = device
        self.times: dict[str, list[float]] = {}
        self._calls: dict[str, int] = {}
        self._start: dict[int, float] = {}
        self._handles = []
        for name, module in _leaves(model):
            self._handles.append(module.register_forward_pre_hook(self._pre(name)))
            self._handles.append(module.register_forward_hook(self._post(name)))

    def _pre(self, name: str):
        def hook(module: nn.Module, args: object) -> None:
            sync(self.device)
            self._start[id(module)] = time.perf_counter()

        return hook

    def _post(self, name: str):
        def hook(module: nn.Module, args: object, output: object) -> None:
            sync(self.device)
            elapsed = time.perf_counter() - self._start.pop(id(module))
            k = self._calls.get(name, 0) + 1
            self._calls[name] = k
            self.times.setdefault(name if k == 1 else f"{name}@{k}", []).append(elapsed)

        return hook

    def new_forward(self) -> None:
        self._calls.clear()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def profile(
    model: nn.Module | str,
    batch_size: int = 1,
    precision: str = "fp32",
    input_size: Sequence[int] | None = None,
    repeat: int = 10,
    warmup: int = 2,
    device: torch.device | str | None = None,
    ceilings: Ceilings | None = None,
) -> Profile:
    """Measure a network layer by layer and place each layer on the machine's roofline.

    Args:
        model: a registered name or a module (eval mode is used; the caller's module is copied,
            not changed).
        batch_size: images per forward.
        precision: "fp32" or "bf16" (weights and activations; where the device computes bf16
            natively). Batch norms are not folded, so that every layer the analyzer lists runs.
        input_size: (C, H, W); defaults to the registered spec's.
        repeat, warmup: timed and untimed forwards, for the layers and for the whole model.
        device: defaults to CUDA when available, else CPU.
        ceilings: the roofs to use; measured now (`measure_ceilings`) when not given.

    Returns:
        A `Profile`.
    """
    from cnnzoo.analysis import summary
    from cnnzoo.bench.optimize import bf16_support
    from cnnzoo.resolve import resolve
    from cnnzoo.viz.diagram import layer_kind

    if precision not in _ELEMENT_BYTES:
        raise UsageError(f"precision must be fp32 or bf16, got {precision!r}")
    if repeat < 1:
        raise UsageError(f"repeat must be at least 1, got {repeat}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if precision == "bf16" and bf16_support(device) is None:
        raise UsageError(
            f"bf16 is not natively supported on {device}: it would be emulated; use fp32"
        )
    target = resolve(model)
    module, name, default_size = target.build(), target.name, target.input_size
    size = tuple(input_size or default_size or ())
    if not size:
        raise UsageError(f"{name}: give input_size for a model that is not registered")
    report = summary(module, size, batch_size=batch_size)
    if report.failure is not None:
        raise UsageError(f"{name} does not run at input {size}: {report.failure.message}")

    watch = LoadWatch()
    net = prepare(module, precision, False, False, device, fold=False)
    x = torch.randn(batch_size, *size, generator=torch.Generator().manual_seed(0)).to(device)

    def forward() -> object:
        with torch.inference_mode():
            return net(x)

    whole = time_calls(forward, repeat, warmup, device)
    timer = _LayerTimer(net.model, device)
    try:
        for _ in range(warmup):
            timer.new_forward()
            forward()
        timer.times.clear()
        for _ in range(repeat):
            timer.new_forward()
            forward()
    finally:
        timer.remove()
    if ceilings is None:
        ceilings = measure_ceilings(device, bf16=precision == "bf16")
    load = watch.stop()

    modules = dict(module.named_modules())
    element = _ELEMENT_BYTES[precision]
    layers = []
    for r in report.all_layers:
        seconds = timer.times.get(r.name)
        owner = modules.get(r.name.split("@")[0])
        kind = layer_kind(owner) if r.kind == "module" else "other"
        layers.append(
            LayerProfile(
                r.name,
                r.type,
                kind,
                None if seconds is None else tuple(seconds),
                r.flops,
                bytes_moved(r, element),
            )
        )
    return Profile(
        name,
        size,
        batch_size,
        precision,
        str(device),
        tuple(layers),
        tuple(whole),
        ceilings,
        load,
        repeat,
        warmup,
    )
