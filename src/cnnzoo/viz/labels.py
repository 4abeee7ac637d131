"""Point labels that do not overlap: adjustText (a maintained label-placement library) where it
is installed (``pip install 'cnnzoo[viz]'``), else plain labels beside their points."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["place_labels"]


def place_labels(
    ax: Any, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], fontsize: float = 8
) -> bool:
    """Label each point (x, y) of `ax`; returns whether adjustText placed them.

    adjustText moves the labels apart and away from the points (which it is told about, so that
    labels do not cover bubbles either) and draws a thin leader line to a moved label.
    """
    texts = [
        ax.text(x, y, label, fontsize=fontsize, zorder=4)
        for x, y, label in zip(xs, ys, labels, strict=True)
    ]
    try:
        from adjustText import adjust_text
    except ImportError:
        return False
    if not texts:
        return True
    _ensure_canvas(ax.figure)
    common = {"x": list(xs), "y": list(ys), "ax": ax, "expand_axes": True, "iter_lim": 2000}
    # The first pass swaps labels whose leader lines would cross, after it has separated them:
    # a swap between labels of different widths can make them overlap again (about one run in
    # three at the full zoo, and not the same labels each time). The second pass starts where
    # the first ended, swaps nothing and stops only once no label overlaps another or a point;
    # it draws the leader lines. `expand_axes` widens the limits rather than let a label
    # cross the frame.
    adjust_text(texts, **common)
    adjust_text(
        texts,
        **common,
        avoid_self=False,
        prevent_crossings=False,
        arrowprops={"arrowstyle": "-", "color": "0.4", "lw": 0.6},
    )
    return True


def _ensure_canvas(fig: Any) -> None:
    """adjustText measures text on a renderer; a bare `Figure` gets an Agg canvas of its own
    (the figure's, not the process's backend: nothing global changes)."""
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
