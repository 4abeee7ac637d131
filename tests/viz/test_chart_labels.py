"""The comparison charts at the full zoo: every label readable, none on another, none across the
frame (issue 13: labels never overlap at the full zoo)."""

from __future__ import annotations

import itertools

import pytest

import cnnzoo

pytest.importorskip("adjustText")


def test_no_label_overlaps_another_or_crosses_the_frame_at_the_full_zoo():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    report = cnnzoo.compare()
    assert len(report.rows) == len(cnnzoo.list_models())
    charts = report.figures()
    assert {c.stem for c in charts} >= {"accuracy_vs_macs", "cifar10_error_vs_macs"}
    for chart in charts:
        fig = chart.figure
        canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        ax = fig.axes[0]
        frame = ax.get_window_extent(renderer)
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts if t.get_text()]
        if chart.stem != "accuracy_per_mparam":  # a bar chart: its names are the tick labels
            left = {name for name, _ in chart.left_out}
            shown = {r.model for r in report.rows} - left
            assert sorted(name for name, _ in boxes) == sorted(shown), chart.stem
        touching = [(a, b) for (a, p), (b, q) in itertools.combinations(boxes, 2)
                    if p.overlaps(q)]  # fmt: skip
        assert not touching, (chart.stem, touching)
        outside = [name for name, b in boxes
                   if not (frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0
                           and b.y1 <= frame.y1)]  # fmt: skip
        assert not outside, (chart.stem, outside)
