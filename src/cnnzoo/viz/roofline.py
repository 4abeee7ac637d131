"""The roofline chart of a measured profile: every layer as a point under the machine's roofs.

x is arithmetic intensity (FLOPs per byte moved), y the achieved rate, both log scale. The roof
is min(GEMM rate, intensity x bandwidth), from the ceilings measured in the same run; the ridge
point, where the two meet, divides memory-bound layers (left) from compute-bound ones (right).
Points are coloured by layer kind (the diagrams' palette) and sized by their share of the time,
so the layers that matter are the big ones. Drawn on a bare `matplotlib.figure.Figure`: no
backend is chosen, nothing global is touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from cnnzoo.viz.diagram import PALETTE

if TYPE_CHECKING:
    from cnnzoo.bench.profile import Profile

__all__ = ["roofline_figure"]

_LABELLED = 8  # the slowest layers get their names on the chart


def roofline_figure(profile: Profile) -> Figure:
    """The roofline of `profile` (a `cnnzoo.bench.profile.Profile`)."""
    from cnnzoo.viz.labels import place_labels

    fig = Figure(figsize=(10, 6.5))
    ax = fig.add_subplot()
    points = [t for t in profile.layers if t.intensity is not None and t.flops and t.median_s]
    left_out = len(profile.layers) - len(points)
    total = sum(t.median_s for t in points) or 1.0
    xs = [t.intensity for t in points]
    ys = [t.flops_per_s / 1e9 for t in points]
    sizes = [12 + 900 * t.median_s / total for t in points]
    ax.scatter(
        xs,
        ys,
        s=sizes,
        c=[PALETTE.get(t.kind, PALETTE["other"]) for t in points],
        edgecolors="black",
        linewidths=0.5,
        alpha=0.8,
        zorder=3,
    )
    gemm = profile.gemm_rate / 1e9
    bandwidth = profile.ceilings.bandwidth / 1e9
    lo = min(xs + [profile.ridge]) / 3 if xs else profile.ridge / 30
    hi = max(xs + [profile.ridge]) * 3 if xs else profile.ridge * 30
    ridge = profile.ridge
    ax.plot([lo, ridge, hi], [lo * bandwidth, gemm, gemm], color="0.2", lw=1.5, zorder=2)
    ax.axvline(ridge, color="0.6", lw=0.8, ls="--", zorder=1)
    ax.text(ridge, gemm * 1.15, f"ridge {ridge:.1f} FLOP/B", ha="center", fontsize=8)
    ax.text(hi, gemm * 1.15, f"GEMM {gemm:,.0f} GFLOP/s", ha="right", fontsize=8)
    ax.text(
        lo * 1.2,
        lo * 1.2 * bandwidth * 1.3,
        f"copy {bandwidth:,.1f} GB/s",
        fontsize=8,
        rotation=0,
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (FLOPs per byte moved, log scale)")
    ax.set_ylabel(f"achieved GFLOP/s ({profile.precision}, log scale)")
    size = "x".join(map(str, profile.input_size))
    ax.set_title(
        f"{profile.model}: measured roofline, batch {profile.batch_size} x {size}, "
        f"{profile.precision}, {profile.device} (point area ~ share of time)",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3, zorder=0)
    slowest = sorted(range(len(points)), key=lambda i: -points[i].median_s)[:_LABELLED]
    place_labels(
        ax,
        [xs[i] for i in slowest],
        [ys[i] for i in slowest],
        [points[i].name for i in slowest],
    )
    kinds = sorted({t.kind for t in points})
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            ls="",
            markerfacecolor=PALETTE.get(k, PALETTE["other"]),
            markeredgecolor="black",
            label=k,
        )
        for k in kinds
    ]
    ax.legend(handles=handles, title="layer kind", fontsize=8, loc="lower right")
    if left_out:
        fig.text(
            0.01,
            0.005,
            f"Not shown: {left_out} layers without FLOPs, bytes or a time of their own "
            "(views, functional calls).",
            fontsize=8,
            color="0.3",
        )
    return fig
