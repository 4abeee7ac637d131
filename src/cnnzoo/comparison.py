"""The architectures side by side: accuracy against compute, memory and speed.

`compare` builds one table from the registry and the analyzer: parameters, MACs and activation
memory measured on the real models (meta device, no arithmetic), a training-memory estimate,
the published accuracy from each spec with its source, and optionally latency and throughput
measured on this machine. `Comparison.charts` draws the figure of Canziani et al. 2016
("An Analysis of Deep Neural Network Models for Practical Applications", arXiv 1605.07678):
top-1 accuracy against operations, bubble area proportional to parameters.

Published accuracy, in order of preference:
- ImageNet: `imagenet_top1_acc` (the accuracy of torchvision's released weights for the `_tv`
  builds and for the papers that report accuracy), else 100 - the paper's validation top-1
  error (`imagenet_val_top1_err`, then its single-crop, single-scale and 10-crop variants).
- CIFAR-10, for models without an ImageNet figure: `cifar10_aug_test_err` (the papers' "C10+"
  with standard augmentation), else `cifar10_test_err` as the paper labels it.
The metric used is a column of the table, so every figure says where it comes from.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from cnnzoo.errors import UsageError
from cnnzoo.registry import ModelSpec, get_spec, list_models
from cnnzoo.zoo import format_count

__all__ = ["Comparison", "ComparisonRow", "compare", "published_cifar10", "published_top1"]

_TOP1_ACC = ("imagenet_top1_acc",)
_TOP1_ERR = (
    "imagenet_val_top1_err",
    "imagenet_val_top1_err_single_crop",
    "imagenet_val_top1_err_single_scale",
    "imagenet_val_top1_err_10crop",
)
_CIFAR10_ERR = ("cifar10_aug_test_err", "cifar10_test_err")


def published_top1(spec: ModelSpec) -> tuple[float, str, str] | None:
    """(top-1 accuracy %, metric, source) from the spec's ImageNet results, or None."""
    for metric in _TOP1_ACC + _TOP1_ERR:
        for r in spec.results:
            if r.metric == metric:
                value = r.value if metric in _TOP1_ACC else 100.0 - r.value
                shown = metric if metric in _TOP1_ACC else f"100 - {metric}"
                return value, shown, r.source
    return None


def published_cifar10(spec: ModelSpec) -> tuple[float, str, str] | None:
    """(CIFAR-10 test error %, metric, source) from the spec, or None."""
    for metric in _CIFAR10_ERR:
        for r in spec.results:
            if r.metric == metric:
                return r.value, metric, r.source
    return None


@dataclass(frozen=True)
class ComparisonRow:
    """One model. Bytes are fp32; `activation_bytes` is one image's forward (input included)."""

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
            "activations",
            f"train mem (b{self.batch_size}, {self.optimizer})",
            "top-1 %",
            "CIFAR-10 err %",
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
            num(r.top1, ".2f"),
            num(r.cifar10_err, ".2f"),
        ]
        if self.measured:
            cells += [num(r.latency_ms, ".1f"), num(r.throughput, ".1f")]
        return cells

    def _footnotes(self) -> list[str]:
        notes = [
            "Parameters, MACs and activation memory (one image, fp32) come from cnnzoo.summary "
            f"on the real model; training memory is Totals.training_bytes('{self.optimizer}') "
            f"at batch {self.batch_size}.",
            "top-1: imagenet_top1_acc where the spec has it, else 100 - the paper's ImageNet "
            "validation top-1 error; CIFAR-10: the augmented (C10+) test error where given.",
        ]
        if self.timing_method:
            notes.append(f"Timing: {self.timing_method}")
        return notes

    def to_markdown(self) -> str:
        headers = self._headers()
        lines = ["| " + " | ".join(headers) + " |"]
        lines.append("|" + "|".join("---" if i < 3 else "---:" for i in range(len(headers))) + "|")
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
            table.add_column(h, justify="left" if i < 3 else "right")
        for r in self.rows:
            table.add_row(*self._cells(r))
        console = Console(width=width, record=True, file=io.StringIO())
        console.print(table)
        for note in self._footnotes():
            console.print(note, highlight=False)
        return console.export_text()

    def __str__(self) -> str:
        return self.to_table()

    def charts(self, out: str | Path) -> list[Path]:
        """Write the charts as PNG and SVG into `out`; returns the files written."""
        return _draw_charts(self, Path(out))

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
            path.write_text(text + ("" if text.endswith("\n") else "\n"))
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
        top1 = published_top1(spec)
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
                top1=top1[0] if top1 else None,
                top1_metric=top1[1] if top1 else None,
                top1_source=top1[2] if top1 else None,
                cifar10_err=cifar[0] if cifar else None,
                cifar10_metric=cifar[1] if cifar else None,
                cifar10_source=cifar[2] if cifar else None,
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

    from cnnzoo.bench.runner import inference_case, measure
    from cnnzoo.registry import create_model

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    measured = []
    for r in rows:
        torch.manual_seed(0)
        model = create_model(r.model)
        cases = [
            inference_case("b1", model, r.model, 1, r.input_size, device, optimize=False),
            inference_case(
                "bN", model, r.model, throughput_batch, r.input_size, device, optimize=False
            ),
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
        f"eager fp32 forward under torch.inference_mode on {where}, torch {torch.__version__}; "
        f"1 warm-up call, then the median of {repeat} timed calls (latency at batch 1, images/s "
        f"at batch {throughput_batch}, batch 1 and batch {throughput_batch} taking turns)"
    )
    return measured, method


# Charts ------------------------------------------------------------------------------------


def _draw_charts(report: Comparison, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    rows = report.rows
    # One colour per family, consistent across the charts: tab10's ten clearly distinct hues
    # first, then tab20's lighter shades.
    families = sorted({r.family for r in rows})
    palette = list(plt.get_cmap("tab10").colors) + list(plt.get_cmap("tab20").colors[1::2])
    colors = {f: palette[i % len(palette)] for i, f in enumerate(families)}
    imagenet = [r for r in rows if r.top1 is not None]
    cifar = [r for r in rows if r.top1 is None and r.cifar10_err is not None]
    written: list[Path] = []

    def save(fig: Any, stem: str) -> None:
        for suffix in ("png", "svg"):
            path = out / f"{stem}.{suffix}"
            fig.savefig(path, dpi=150, bbox_inches="tight")
            written.append(path)
        plt.close(fig)

    top1 = "published ImageNet top-1 accuracy (%)"
    bubbles = [  # file stem, rows, x, y, x label, y label, title
        (
            "accuracy_vs_macs",
            imagenet,
            "gmacs",
            "top1",
            "G-MACs per image (log scale)",
            top1,
            "Accuracy vs operations (bubble area ~ parameters; after Canziani et al. 2016)",
        ),
        (
            "accuracy_vs_latency",
            [r for r in imagenet if r.latency_ms is not None],
            "latency_ms",
            "top1",
            "measured latency at batch 1 (ms, log scale)",
            top1,
            "Accuracy vs latency on this machine (bubble area ~ parameters)",
        ),
        (
            "cifar10_error_vs_macs",
            cifar,
            "gmacs",
            "cifar10_err",
            "G-MACs per image at 32x32 (log scale)",
            "published CIFAR-10 test error (%)",
            "CIFAR-10 error vs operations (bubble area ~ parameters; lower is better)",
        ),
    ]
    for stem, chosen, x, y, xlabel, ylabel, title in bubbles:
        if chosen:
            xs = [getattr(r, x) for r in chosen]
            ys = [getattr(r, y) for r in chosen]
            save(_bubble_chart(chosen, xs, ys, colors, xlabel, ylabel, title), stem)
    if imagenet:
        save(_density_chart(imagenet, colors), "accuracy_per_mparam")
    return written


def _bubble_chart(
    rows: Sequence[ComparisonRow],
    xs: Sequence[float],
    ys: Sequence[float],
    colors: dict[str, Any],
    xlabel: str,
    ylabel: str,
    title: str,
) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 7.5))
    biggest = max(r.params for r in rows)
    sizes = [max(12.0, 1400.0 * r.params / biggest) for r in rows]  # marker area in points^2
    ax.scatter(
        xs,
        ys,
        s=sizes,
        c=[colors[r.family] for r in rows],
        alpha=0.55,
        edgecolors="black",
        linewidths=0.6,
        zorder=2,
    )
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="both", alpha=0.3, zorder=0)
    lo, hi = min(xs), max(xs)
    ax.set_xlim(lo / 1.8, hi * 1.8)
    span = (max(ys) - min(ys)) or 1.0
    ax.set_ylim(min(ys) - 0.12 * span, max(ys) + 0.12 * span)
    _place_labels(fig, ax, xs, ys, [r.model for r in rows], sizes)

    families = sorted({r.family for r in rows})
    _side_legend(fig, ax, [_dot(colors[f], 8, f, alpha=0.7) for f in families], "family")
    marks = [m for m in (1e6, 5e6, 25e6, 100e6) if m <= biggest * 1.05] or [biggest]
    size_handles = [
        _dot("lightgray", math.sqrt(max(12.0, 1400.0 * m / biggest)), f"{m / 1e6:g} M")
        for m in marks
    ]
    _side_legend(
        fig,
        ax,
        size_handles,
        "parameters",
        top=False,
        labelspacing=1.8,
        borderpad=1.2,
        handletextpad=1.5,
    )
    return fig


def _side_legend(
    fig: Any, ax: Any, handles: list[Any], title: str, top: bool = True, **options: Any
) -> None:
    """A legend right of the axes. Figure-level, so that savefig's tight box includes it."""
    fig.legend(
        handles=handles,
        title=title,
        loc="upper left" if top else "lower left",
        bbox_to_anchor=(1.01, 1.0 if top else 0.0),
        bbox_transform=ax.transAxes,
        frameon=False,
        fontsize=9,
        **options,
    )


def _dot(color: Any, diameter: float, label: str, alpha: float = 1.0) -> Any:
    """A legend entry: one circle of `diameter` points."""
    from matplotlib.lines import Line2D

    return Line2D(
        [],
        [],
        marker="o",
        linestyle="",
        markersize=diameter,
        markerfacecolor=color,
        markeredgecolor="black",
        alpha=alpha,
        label=label,
    )


def _place_labels(
    fig: Any,
    ax: Any,
    xs: Sequence[float],
    ys: Sequence[float],
    labels: Sequence[str],
    sizes: Sequence[float],
) -> None:
    """Greedy placement, biggest bubble first: each label tries eight directions at three
    distances from its bubble and takes the offset whose box overlaps the fewest placed labels,
    other bubbles and axes edges; a label away from its bubble gets a thin leader line."""
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72
    centres = ax.transData.transform(list(zip(xs, ys, strict=True)))
    radii = [math.sqrt(s) / 2 * px_per_pt for s in sizes]  # marker area is in points^2
    placed: list[Any] = []
    directions = [
        (1, 1, "left", "bottom"),
        (1, -1, "left", "top"),
        (-1, 1, "right", "bottom"),
        (-1, -1, "right", "top"),
        (0, 1, "center", "bottom"),
        (0, -1, "center", "top"),
        (1, 0, "left", "center"),
        (-1, 0, "right", "center"),
    ]

    def hits_circle(box: Any, j: int) -> bool:
        cx, cy = centres[j]
        nx, ny = min(max(cx, box.x0), box.x1), min(max(cy, box.y0), box.y1)
        return (nx - cx) ** 2 + (ny - cy) ** 2 < (0.8 * radii[j]) ** 2

    def annotate(i: int, offset: tuple[float, float], ha: str, va: str, arrow: Any) -> Any:
        return ax.annotate(
            labels[i],
            (xs[i], ys[i]),
            xytext=offset,
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=8,
            zorder=4,
            arrowprops=arrow,
        )

    for i in sorted(range(len(xs)), key=lambda i: -sizes[i]):
        best = None
        for gap in (2.0, 12.0, 26.0):
            for dx, dy, ha, va in directions:
                r = radii[i] / px_per_pt + gap  # points
                scale = 0.71 if dx and dy else 1.0
                offset = (dx * r * scale, dy * r * scale)
                text = annotate(i, offset, ha, va, None)
                box = text.get_window_extent(renderer).expanded(1.04, 1.1)
                text.remove()
                cost = 10 * sum(box.overlaps(b) for b in placed)
                cost += sum(hits_circle(box, j) for j in range(len(xs)) if j != i)
                inside = ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1)
                cost += 0 if inside else 50
                cost += gap / 30  # prefer the closest of equally clear spots
                if best is None or cost < best[0]:
                    best = (cost, offset, ha, va, box, gap)
            if best[0] < 1:
                break
        _, offset, ha, va, box, gap = best
        arrow = {"arrowstyle": "-", "color": "0.4", "lw": 0.6} if gap > 2 else None
        annotate(i, offset, ha, va, arrow)
        placed.append(box)


def _density_chart(rows: Sequence[ComparisonRow], colors: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ordered = sorted(rows, key=lambda r: r.top1_per_mparam)
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.28 * len(ordered) + 1.2)))
    values = [r.top1_per_mparam for r in ordered]
    ax.barh(
        [r.model for r in ordered],
        values,
        color=[colors[r.family] for r in ordered],
        edgecolor="black",
        linewidth=0.5,
    )
    for y, v in enumerate(values):
        ax.text(v * 1.03, y, f"{v:.2f}", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 1.5, max(values) * 2.0)
    ax.set_xlabel("top-1 accuracy (%) per million parameters (log scale)")
    ax.set_title(
        "Accuracy density (Canziani et al. 2016): accuracy per million parameters", fontsize=11
    )
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    families = sorted({r.family for r in ordered})
    patches = [Patch(facecolor=colors[f], edgecolor="black", label=f) for f in families]
    _side_legend(fig, ax, patches, "family")
    return fig
