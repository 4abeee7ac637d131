"""The charts of `cnnzoo compare`, each on a bare `matplotlib.figure.Figure`.

- accuracy vs operations (ImageNet top-1; bubble area ~ parameters, after Canziani et al. 2016);
- the same for top-5, where GoogLeNet (whose paper gives top-5 only) appears;
- accuracy vs measured latency (with `--measure`);
- CIFAR-10 error vs operations, for the models without an ImageNet figure;
- accuracy density: top-1 per million parameters.

Colour is the family; marker shape is the evaluation protocol (single-crop, 10-crop, ...), so a
10-crop figure is never mistaken for a single-crop one. Every chart names, under its axes, the
models it leaves out and why, and `Chart.left_out` carries the same list for the caller.
Labels are placed by adjustText (`cnnzoo.viz.labels`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from cnnzoo.viz.labels import place_labels

if TYPE_CHECKING:
    from cnnzoo.comparison import Comparison, ComparisonRow

__all__ = ["MARKERS", "Chart", "comparison_charts"]

# Evaluation protocol -> marker.
MARKERS = {
    "single-crop": "o",
    "10-crop": "s",
    "144-crop": "P",
    "single-scale (dense)": "^",
    "as reported": "D",
}


@dataclass(frozen=True)
class Chart:
    """One chart: its figure, file stem, and the models it leaves out with the reason."""

    stem: str
    figure: Figure
    left_out: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        if not self.left_out:
            return f"{self.stem}: every model shown"
        reasons: dict[str, list[str]] = {}
        for model, why in self.left_out:
            reasons.setdefault(why, []).append(model)
        parts = [f"{', '.join(models)} ({why})" for why, models in reasons.items()]
        return f"{self.stem}: leaves out " + "; ".join(parts)


def _colors(rows: Sequence[ComparisonRow]) -> dict[str, Any]:
    """One colour per family, the same in every chart: tab10's ten distinct hues first, then
    tab20's lighter shades."""
    families = sorted({r.family for r in rows})
    palette = list(colormaps["tab10"].colors) + list(colormaps["tab20"].colors[1::2])
    return {f: palette[i % len(palette)] for i, f in enumerate(families)}


def comparison_charts(report: Comparison) -> list[Chart]:
    """Every chart the table supports (a chart with no model to show is skipped)."""
    rows = report.rows
    colors = _colors(rows)
    charts: list[Chart] = []

    def select(
        stem: str, keep: Callable[[ComparisonRow], str | None]
    ) -> tuple[list[ComparisonRow], list[tuple[str, str]]]:
        """Rows shown, and (model, reason) for those not; `keep` returns a reason or None."""
        shown, left = [], []
        for r in rows:
            why = keep(r)
            if why:
                left.append((r.model, why))
            else:
                shown.append(r)
        return shown, left

    def no_top1(r: ComparisonRow) -> str | None:
        if r.top1 is not None:
            return None
        if r.top5 is not None:
            return "top-5 only: in accuracy_top5_vs_macs"
        if r.cifar10_err is not None:
            return "CIFAR-10 only: in cifar10_error_vs_macs"
        return "no published accuracy"

    def no_top5(r: ComparisonRow) -> str | None:
        if r.top5 is not None:
            return None
        return "CIFAR-10 only" if r.cifar10_err is not None else "no published top-5"

    def no_cifar(r: ComparisonRow) -> str | None:
        if r.top1 is not None or r.top5 is not None:
            return "has an ImageNet figure"
        return None if r.cifar10_err is not None else "no published CIFAR-10 error"

    def no_latency(r: ComparisonRow) -> str | None:
        if r.latency_ms is None:
            return "not measured"
        return no_top1(r)

    top1 = "published ImageNet top-1 accuracy (%)"
    bubbles = (
        (
            "accuracy_vs_macs",
            no_top1,
            "gmacs",
            "top1",
            "top1_crops",
            "G-MACs per image (log scale)",
            top1,
            "Top-1 accuracy vs operations (bubble area ~ parameters; after Canziani et al. 2016)",
        ),
        (
            "accuracy_top5_vs_macs",
            no_top5,
            "gmacs",
            "top5",
            "top5_crops",
            "G-MACs per image (log scale)",
            "published ImageNet top-5 accuracy (%)",
            "Top-5 accuracy vs operations (bubble area ~ parameters)",
        ),
        (
            "accuracy_vs_latency",
            no_latency,
            "latency_ms",
            "top1",
            "top1_crops",
            "measured latency at batch 1 (ms, log scale)",
            top1,
            "Top-1 accuracy vs latency on this machine (bubble area ~ parameters)",
        ),
        (
            "cifar10_error_vs_macs",
            no_cifar,
            "gmacs",
            "cifar10_err",
            None,
            "G-MACs per image at 32x32 (log scale)",
            "published CIFAR-10 test error (%)",
            "CIFAR-10 error vs operations (bubble area ~ parameters; lower is better)",
        ),
    )
    for stem, keep, x, y, crops, xlabel, ylabel, title in bubbles:
        shown, left = select(stem, keep)
        if stem == "accuracy_vs_latency" and not report.measured:
            continue
        if shown:
            fig = _bubble_chart(shown, x, y, crops, colors, xlabel, ylabel, title, left)
            charts.append(Chart(stem, fig, tuple(left)))
    shown, left = select("accuracy_per_mparam", no_top1)
    if shown:
        charts.append(
            Chart("accuracy_per_mparam", _density_chart(shown, colors, left), tuple(left))
        )
    return charts


def _footnote(fig: Figure, left_out: Sequence[tuple[str, str]]) -> None:
    if not left_out:
        return
    chart = Chart("", fig, tuple(left_out))
    text = chart.describe().removeprefix(": ").replace("leaves out", "Not shown:", 1)
    lines, line = [], ""
    for word in text.split(" "):  # wrap at ~150 characters
        if len(line) + len(word) > 150:
            lines.append(line)
            line = ""
        line += ("" if not line else " ") + word
    lines.append(line)
    fig.text(0.01, -0.02, "\n".join(lines), fontsize=7, color="0.3", va="top")


def _bubble_chart(
    rows: Sequence[ComparisonRow],
    x: str,
    y: str,
    crops: str | None,
    colors: dict[str, Any],
    xlabel: str,
    ylabel: str,
    title: str,
    left_out: Sequence[tuple[str, str]],
) -> Figure:
    fig = Figure(figsize=(12, 7.5))
    ax = fig.add_subplot()
    biggest = max(r.params for r in rows)
    xs = [getattr(r, x) for r in rows]
    ys = [getattr(r, y) for r in rows]
    protocols = [getattr(r, crops) if crops else "as reported" for r in rows]
    for protocol in dict.fromkeys(protocols):
        chosen = [i for i, p in enumerate(protocols) if p == protocol]
        ax.scatter(
            [xs[i] for i in chosen],
            [ys[i] for i in chosen],
            s=[max(12.0, 1400.0 * rows[i].params / biggest) for i in chosen],
            c=[colors[rows[i].family] for i in chosen],
            marker=MARKERS.get(protocol, "D"),
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
    ax.set_xlim(min(xs) / 1.8, max(xs) * 1.8)
    span = (max(ys) - min(ys)) or 1.0
    ax.set_ylim(min(ys) - 0.12 * span, max(ys) + 0.12 * span)
    place_labels(ax, xs, ys, [r.model for r in rows])

    families = sorted({r.family for r in rows})
    _side_legend(fig, ax, [_mark(colors[f], 8, f, alpha=0.7) for f in families], "family")
    if crops:
        shapes = [
            _mark("white", 8, p, marker=MARKERS.get(p, "D")) for p in dict.fromkeys(protocols)
        ]
        _side_legend(fig, ax, shapes, "evaluation", anchor=0.5)
    marks = [m for m in (1e6, 5e6, 25e6, 100e6) if m <= biggest * 1.05] or [biggest]
    size_handles = [
        _mark("lightgray", math.sqrt(max(12.0, 1400.0 * m / biggest)), f"{m / 1e6:g} M")
        for m in marks
    ]
    _side_legend(
        fig,
        ax,
        size_handles,
        "parameters",
        anchor=0.0,
        labelspacing=1.8,
        borderpad=1.2,
        handletextpad=1.5,
    )
    _footnote(fig, left_out)
    return fig


def _side_legend(
    fig: Figure, ax: Any, handles: list[Any], title: str, anchor: float = 1.0, **options: Any
) -> None:
    """A legend right of the axes. Figure-level, so that savefig's tight box includes it."""
    loc = {1.0: "upper left", 0.5: "center left", 0.0: "lower left"}[anchor]
    fig.legend(
        handles=handles,
        title=title,
        loc=loc,
        bbox_to_anchor=(1.01, anchor),
        bbox_transform=ax.transAxes,
        frameon=False,
        fontsize=9,
        **options,
    )


def _mark(color: Any, diameter: float, label: str, alpha: float = 1.0, marker: str = "o") -> Line2D:
    """A legend entry: one marker of `diameter` points."""
    return Line2D(
        [],
        [],
        marker=marker,
        linestyle="",
        markersize=diameter,
        markerfacecolor=color,
        markeredgecolor="black",
        alpha=alpha,
        label=label,
    )


def _density_chart(
    rows: Sequence[ComparisonRow], colors: dict[str, Any], left_out: Sequence[tuple[str, str]]
) -> Figure:
    ordered = sorted(rows, key=lambda r: r.top1_per_mparam)
    fig = Figure(figsize=(9, max(3.0, 0.28 * len(ordered) + 1.2)))
    ax = fig.add_subplot()
    values = [r.top1_per_mparam for r in ordered]
    ax.barh(
        [f"{r.model} ({r.top1_crops})" for r in ordered],
        values,
        color=[colors[r.family] for r in ordered],
        edgecolor="black",
        linewidth=0.5,
    )
    for i, v in enumerate(values):
        ax.text(v * 1.03, i, f"{v:.2f}", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 1.5, max(values) * 2.0)
    ax.set_xlabel("top-1 accuracy (%) per million parameters (log scale)")
    ax.set_title(
        "Accuracy density (Canziani et al. 2016): top-1 per million parameters "
        "(evaluation in brackets)",
        fontsize=11,
    )
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    families = sorted({r.family for r in ordered})
    patches = [Patch(facecolor=colors[f], edgecolor="black", label=f) for f in families]
    _side_legend(fig, ax, patches, "family")
    _footnote(fig, left_out)
    return fig
