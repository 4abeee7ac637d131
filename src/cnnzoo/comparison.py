"""The architectures side by side: accuracy against compute, memory and speed (the data).

`compare` builds one table from the registry and the analyzer: parameters, MACs and activation
memory measured on the real models (meta device, no arithmetic), a training-memory estimate,
the published accuracy from each spec with its protocol and source, and optionally latency and
throughput measured on this machine. The charts of the table (`Comparison.charts`, drawn by
`cnnzoo.viz.compare_charts`) follow Canziani et al. 2016 ("An Analysis of Deep Neural Network
Models for Practical Applications", arXiv 1605.07678).

Published accuracy, in order of preference:
- ImageNet top-1: `imagenet_top1_acc` (torchvision's released weights for the `_tv` builds and
  the papers that report accuracy), else 100 - the paper's validation top-1 error
  (`imagenet_val_top1_err`, then its single-crop, single-scale and 10-crop variants).
- ImageNet top-5, the same way (GoogLeNet's paper gives top-5 only).
- CIFAR-10, for models without an ImageNet figure: `cifar10_aug_test_err` (the papers' "C10+"
  with standard augmentation), else `cifar10_test_err` as the paper labels it.
The protocol of each figure (data set, top-1 or top-5, how many crops, whose weights) is a
column of the table and the marker shape in the charts: a 10-crop figure is not a single-crop
one, and the table says which is which.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from cnnzoo.errors import UsageError
from cnnzoo.fileio import atomic_write_text
from cnnzoo.formatting import format_count
from cnnzoo.registry import ModelSpec, get_spec, list_models

__all__ = [
    "Comparison",
    "ComparisonRow",
    "Published",
    "compare",
    "published_cifar10",
    "published_top1",
    "published_top5",
]

_TOP1_ACC = ("imagenet_top1_acc",)
_TOP1_ERR = (
    "imagenet_val_top1_err",
    "imagenet_val_top1_err_single_crop",
    "imagenet_val_top1_err_single_scale",
    "imagenet_val_top1_err_10crop",
)
_TOP5_ACC = ("imagenet_top5_acc",)
_TOP5_ERR = (
    "imagenet_val_top5_err",
    "imagenet_val_top5_err_single_crop",
    "imagenet_val_top5_err_1model_1crop",
    "imagenet_val_top5_err_single_scale",
    "imagenet_val_top5_err_10crop",
    "imagenet_val_top5_err_1model_144crop",
)
_CIFAR10_ERR = ("cifar10_aug_test_err", "cifar10_test_err")
ACTIVATIONS = "activations (forward, input included)"
# Metric-name suffix -> how the figure was evaluated (the paper's words).
_CROPS = (
    ("_1model_144crop", "144-crop"),
    ("_10crop", "10-crop"),
    ("_single_crop", "single-crop"),
    ("_1model_1crop", "single-crop"),
    ("_single_scale", "single-scale (dense)"),
)


@dataclass(frozen=True)
class Published:
    """One published figure and how it was obtained.

    Attributes:
        value: the figure, % (accuracy for top-1 / top-5, error for CIFAR-10).
        metric: the spec's metric, as computed ("100 - imagenet_val_top1_err_10crop").
        protocol: data set, measure and evaluation ("ImageNet top-1, 10-crop").
        crops: the evaluation alone ("single-crop", "10-crop", ...), the charts' marker.
        source: where the figure comes from.
    """

    value: float
    metric: str
    protocol: str
    crops: str
    source: str


def _crops(metric: str, source: str) -> str:
    for suffix, crops in _CROPS:
        if metric.endswith(suffix):
            return crops
    if source.startswith("torchvision"):
        return "single-crop"  # torchvision evaluates its weights on the 224 centre crop
    return "as reported"  # the metric name does not say; the source does


def _published(
    spec: ModelSpec, accuracies: Sequence[str], errors: Sequence[str], measure: str
) -> Published | None:
    for metric in (*accuracies, *errors):
        for r in spec.results:
            if r.metric == metric:
                accuracy = metric in accuracies
                crops = _crops(metric, r.source)
                weights = ", torchvision weights" if r.source.startswith("torchvision") else ""
                return Published(
                    r.value if accuracy else 100.0 - r.value,
                    metric if accuracy else f"100 - {metric}",
                    f"ImageNet {measure}, {crops}{weights}",
                    crops,
                    r.source,
                )
    return None


def published_top1(spec: ModelSpec) -> tuple[float, str, str] | None:
    """(top-1 accuracy %, metric, source) from the spec's ImageNet results, or None."""
    p = published_top1_full(spec)
    return None if p is None else (p.value, p.metric, p.source)


def published_top1_full(spec: ModelSpec) -> Published | None:
    """The spec's ImageNet top-1 accuracy with its protocol, or None."""
    return _published(spec, _TOP1_ACC, _TOP1_ERR, "top-1")


def published_top5(spec: ModelSpec) -> Published | None:
    """The spec's ImageNet top-5 accuracy with its protocol, or None."""
    return _published(spec, _TOP5_ACC, _TOP5_ERR, "top-5")


def published_cifar10(spec: ModelSpec) -> tuple[float, str, str] | None:
    """(CIFAR-10 test error %, metric, source) from the spec, or None."""
    for metric in _CIFAR10_ERR:
        for r in spec.results:
            if r.metric == metric:
                return r.value, metric, r.source
    return None


def _cifar10_protocol(metric: str) -> str:
    augmented = "C10+, standard augmentation" if "_aug_" in metric else "C10, as labelled"
    return f"CIFAR-10 test error, {augmented}"


@dataclass(frozen=True)
class ComparisonRow:
    """One model. Bytes are fp32 for one image.

    `activation_bytes` is one image's forward activations as `cnnzoo summary` defines them: the
    input plus every newly allocated layer output (in-place outputs and views add nothing), i.e.
    `Totals.input_bytes + Totals.activation_bytes` (the analyzer's `activation_memory(report)`).
    """

    model: str
    family: str
    year: int
    input_size: tuple[int, ...]
    params: int
    macs: int
    activation_bytes: int
    training_bytes: int
    top1: float | None
    top1_metric: str | None
    top1_source: str | None
    cifar10_err: float | None
    cifar10_metric: str | None
    cifar10_source: str | None
    latency_ms: float | None = None
    throughput: float | None = None
    top1_protocol: str | None = None
    top1_crops: str | None = None
    top5: float | None = None
    top5_metric: str | None = None
    top5_source: str | None = None
    top5_protocol: str | None = None
    top5_crops: str | None = None
    cifar10_protocol: str | None = None

    @property
    def headline(self) -> tuple[float, str, str] | None:
        """(value %, protocol, source) of the figure the table shows: ImageNet top-1, else
        top-5, else the CIFAR-10 error."""
        if self.top1 is not None:
            return self.top1, self.top1_protocol, self.top1_source
        if self.top5 is not None:
            return self.top5, self.top5_protocol, self.top5_source
        if self.cifar10_err is not None:
            return self.cifar10_err, self.cifar10_protocol, self.cifar10_source
        return None

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def mparams(self) -> float:
        return self.params / 1e6

    @property
    def top1_per_mparam(self) -> float | None:
        return None if self.top1 is None else self.top1 / self.mparams


@dataclass(frozen=True)
class Comparison:
    """The comparison table, with the analyzer's exports and the charts.

    Attributes:
        rows: one per model, in the order asked.
        batch_size: the batch of the training-memory estimate.
        optimizer: the optimizer state assumed by the estimate.
        throughput_batch: the batch of the measured throughput.
        timing_method: how latency and throughput were measured (None when not measured).
    """

    rows: tuple[ComparisonRow, ...]
    batch_size: int
    optimizer: str
    throughput_batch: int | None
    timing_method: str | None

    @property
    def measured(self) -> bool:
        return self.timing_method is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "throughput_batch": self.throughput_batch,
            "timing_method": self.timing_method,
            "rows": [asdict(r) for r in self.rows],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        names = [f.name for f in fields(ComparisonRow)]
        writer.writerow(names)
        for r in self.rows:
            values = [getattr(r, n) for n in names]
            writer.writerow(["x".join(map(str, v)) if isinstance(v, tuple) else v for v in values])
        return buffer.getvalue()

    def _headers(self) -> list[str]:
        headers = [
            "model",
            "family",
            "input",
            "params",
            "MACs",
            ACTIVATIONS,
            f"train mem (b{self.batch_size}, {self.optimizer})",
            "published %",
            "protocol",
        ]
        if self.measured:
            headers += ["latency b1 (ms)", f"images/s b{self.throughput_batch}"]
        return headers

    def _cells(self, r: ComparisonRow) -> list[str]:
        def mib(n: int) -> str:
            return f"{n / 2**20:,.1f} MiB"

        def num(v: float | None, fmt: str) -> str:
            return "" if v is None else format(v, fmt)

        cells = [
            r.model,
            r.family,
            "x".join(map(str, r.input_size)),
            format_count(r.params),
            format_count(r.macs),
            mib(r.activation_bytes),
            mib(r.training_bytes),
            num(r.headline[0] if r.headline else None, ".2f"),
            r.headline[1] if r.headline else "none published",
        ]
        if self.measured:
            cells += [num(r.latency_ms, ".1f"), num(r.throughput, ".1f")]
        return cells

    def _footnotes(self) -> list[str]:
        notes = [
            "Parameters, MACs and activation memory (one image, fp32) come from cnnzoo.summary "
            "on the real model; activations are one image's forward: the input plus every newly "
            "allocated layer output (summary's definition); training memory "
            f"is Totals.training_bytes('{self.optimizer}') at batch {self.batch_size}.",
            "published %: ImageNet top-1 accuracy where the spec has one (torchvision's weights "
            "first, else 100 - the paper's top-1 error), else ImageNet top-5 accuracy, else the "
            "CIFAR-10 test error (lower is better); the protocol column says which, and how "
            "many crops. 10-crop figures run 1-2 points above single-crop ones.",
        ]
        if self.timing_method:
            notes.append(f"Timing: {self.timing_method}")
        return notes

    def to_markdown(self) -> str:
        headers = self._headers()
        lines = ["| " + " | ".join(headers) + " |"]
        lines.append(
            "|"
            + "|".join("---" if i < 3 or h == "protocol" else "---:" for i, h in enumerate(headers))
            + "|"
        )
        lines += ["| " + " | ".join(self._cells(r)) + " |" for r in self.rows]
        lines.append("")
        lines += [f"- {n}" for n in self._footnotes()]
        sources = sorted({s for r in self.rows for s in (r.top1_source, r.cifar10_source) if s})
        if sources:
            lines.append("- Accuracy sources: " + "; ".join(sources))
        return "\n".join(lines)

    def to_table(self, width: int = 160) -> str:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="cnnzoo compare", show_lines=False)
        for i, h in enumerate(self._headers()):
            table.add_column(h, justify="left" if i < 3 or h == "protocol" else "right")
        for r in self.rows:
            table.add_row(*self._cells(r))
        console = Console(width=width, record=True, file=io.StringIO())
        console.print(table)
        for note in self._footnotes():
            console.print(note, highlight=False)
        return console.export_text()

    def __str__(self) -> str:
        return self.to_table()

    def figures(self) -> list[Any]:
        """The charts (`cnnzoo.viz.compare_charts.Chart`: a bare Figure, its file stem and
        the models it leaves out and why)."""
        from cnnzoo.viz.compare_charts import comparison_charts

        return comparison_charts(self)

    def charts(self, out: str | Path) -> list[Path]:
        """Write the charts as PNG and SVG into `out`; returns the files written."""
        from cnnzoo.viz.figures import save_figure

        out = Path(out)
        written: list[Path] = []
        for chart in self.figures():
            written += save_figure(chart.figure, out / chart.stem)
        return written

    def chart_notes(self) -> list[str]:
        """For every chart, the models it leaves out and why (what `cnnzoo compare` prints)."""
        return [chart.describe() for chart in self.figures()]

    def save(self, out: str | Path) -> list[Path]:
        """Write the table (CSV, JSON, Markdown) and the charts into `out`."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for suffix, text in (
            ("csv", self.to_csv()),
            ("json", self.to_json()),
            ("md", self.to_markdown()),
        ):
            path = out / f"compare.{suffix}"
            atomic_write_text(path, text + ("" if text.endswith("\n") else "\n"))
            written.append(path)
        return written + self.charts(out)


def _resolve(models: str | Sequence[str] | None) -> list[str]:
    if models is None:
        return list_models()
    if isinstance(models, str):
        models = [models]
    names: list[str] = []
    for item in models:
        matched = list_models(item) if any(c in item for c in "*?[") else [get_spec(item).name]
        if not matched:
            raise UsageError(f"no model matches {item!r}; run `cnnzoo list` to see all")
        names += [n for n in matched if n not in names]
    return names


def compare(
    models: str | Sequence[str] | None = None,
    input_size: Sequence[int] | None = None,
    batch_size: int = 32,
    optimizer: str = "sgd_momentum",
    measure: bool = False,
    throughput_batch: int = 16,
    repeat: int = 5,
    device: str | None = None,
) -> Comparison:
    """Compare registered models.

    Args:
        models: names or glob patterns ("resnet*"); None for the whole zoo.
        input_size: (C, H, W) for every model; defaults to each spec's own.
        batch_size: batch of the training-memory estimate.
        optimizer: optimizer state of the estimate ("sgd", "sgd_momentum" or "adam").
        measure: also time each model on this machine: latency at batch 1 and throughput at
            `throughput_batch` (eager fp32, `torch.inference_mode`, median of `repeat`).
        device: where to time (defaults to CUDA when available).

    Returns:
        A `Comparison` with `to_markdown`, `to_csv`, `to_json`, `to_table` and `charts`.
    """
    from cnnzoo.analysis import summary

    rows = []
    for name in _resolve(models):
        spec = get_spec(name)
        size = tuple(input_size or spec.input_size)
        totals = summary(name, size).totals
        top1 = published_top1_full(spec)
        top5 = published_top5(spec)
        cifar = published_cifar10(spec)
        rows.append(
            ComparisonRow(
                model=name,
                family=spec.family,
                year=spec.paper.year,
                input_size=size,
                params=totals.params,
                macs=totals.macs,
                activation_bytes=totals.input_bytes + totals.activation_bytes,
                training_bytes=totals.training_bytes(optimizer, batch_size=batch_size),
                top1=top1.value if top1 else None,
                top1_metric=top1.metric if top1 else None,
                top1_source=top1.source if top1 else None,
                top1_protocol=top1.protocol if top1 else None,
                top1_crops=top1.crops if top1 else None,
                top5=top5.value if top5 else None,
                top5_metric=top5.metric if top5 else None,
                top5_source=top5.source if top5 else None,
                top5_protocol=top5.protocol if top5 else None,
                top5_crops=top5.crops if top5 else None,
                cifar10_err=cifar[0] if cifar else None,
                cifar10_metric=cifar[1] if cifar else None,
                cifar10_source=cifar[2] if cifar else None,
                cifar10_protocol=_cifar10_protocol(cifar[1]) if cifar else None,
            )
        )
    method = None
    if measure:
        rows, method = _measure(rows, throughput_batch, repeat, device)
    return Comparison(
        tuple(rows), batch_size, optimizer, throughput_batch if measure else None, method
    )


def _measure(
    rows: list[ComparisonRow], throughput_batch: int, repeat: int, device: str | None
) -> tuple[list[ComparisonRow], str]:
    import dataclasses

    import torch

    from cnnzoo.bench.runner import case_description, inference_case, measure
    from cnnzoo.registry import create_model

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    measured = []
    for r in rows:
        torch.manual_seed(0)
        model = create_model(r.model)
        cases = [
            inference_case("b1", model, r.model, 1, r.input_size, device),
            inference_case("bN", model, r.model, throughput_batch, r.input_size, device),
        ]
        one, many = measure(cases, repeat=repeat, warmup=1)
        measured.append(
            dataclasses.replace(r, latency_ms=1e3 * one.median, throughput=many.images_per_s)
        )
        del model
    threads = torch.get_num_threads()
    where = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {threads} threads"
    )
    method = (
        f"{case_description({})} (cnnzoo bench's like-for-like default case), "
        f"forward under torch.inference_mode on {where}, torch {torch.__version__}; "
        f"1 warm-up call, then the median of {repeat} timed calls (latency at batch 1, images/s "
        f"at batch {throughput_batch}, batch 1 and batch {throughput_batch} taking turns)"
    )
    return measured, method
