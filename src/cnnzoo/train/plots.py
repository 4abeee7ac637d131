"""Training-curve and confusion-matrix figures (PNG), drawn on bare matplotlib Figures: no pyplot
state and no backend switch, so they work the same in a notebook, a server or a training run."""

from __future__ import annotations

import gc
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnzoo.fileio import atomic_write

# Below this many points per curve, each point gets a marker (a 1-epoch run is one point, which
# a line alone does not show).
MARKERS_BELOW = 30


def new_figure(figsize: tuple[float, float] = (11, 4.2)):
    """A bare matplotlib Figure (no pyplot, so no global registry) of the curves' size."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Render to memory, then write atomically: a reader never sees a half-written image."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    atomic_write(Path(path), buffer.getvalue())


def plot_training_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    path: Path,
    *,
    title: str | None = None,
    figure=None,
) -> None:
    """Error (%) and loss per epoch: training solid, validation dashed, one colour per run.

    Epochs are integer ticks; with few epochs every point is marked. The loss axis is
    logarithmic with plain-number labels.

    A training run passes the same `figure` every epoch. The artists cleared from it form
    reference cycles that only Python's rare full collection frees; left to it, a training run
    grew by about 5 MiB an epoch between collections (benchmarks/soak.py), so they are collected
    here, once per epoch.
    """
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fig = new_figure() if figure is None else figure
    fig.clear()
    gc.collect()
    ax_err, ax_loss = fig.subplots(1, 2)
    for index, (label, records) in enumerate(runs.items()):
        color = f"C{index}"
        marker = "o" if len(records) < MARKERS_BELOW else None
        style = {"color": color, "marker": marker, "markersize": 4}
        epochs = [r["epoch"] for r in records]
        ax_err.plot(
            epochs, [100 * r["train_error"] for r in records], **style, label=f"{label} train"
        )
        ax_loss.plot(epochs, [r["train_loss"] for r in records], **style, label=f"{label} train")
        val = [r for r in records if r.get("val_error") is not None]
        if val:
            val_epochs = [r["epoch"] for r in val]
            dashed = {**style, "linestyle": "--"}
            ax_err.plot(
                val_epochs, [100 * r["val_error"] for r in val], **dashed, label=f"{label} val"
            )
            if all(r.get("val_loss") is not None for r in val):
                ax_loss.plot(
                    val_epochs, [r["val_loss"] for r in val], **dashed, label=f"{label} val"
                )
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="error (solid: train, dashed: val)")
    ax_loss.set(xlabel="epoch", ylabel="loss (cross-entropy)", title="loss", yscale="log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 0.6, not 6e-01
    ax_loss.yaxis.set_major_formatter(plain)
    low, high = ax_loss.get_ylim()
    if high < 10 * low:  # less than a decade: label the 2..9 ticks too, or none may show
        ax_loss.yaxis.set_minor_formatter(plain)
    for ax in (ax_err, ax_loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], path: Path, title: str) -> None:
    """Write `confusion_figure` as a PNG."""
    save_figure(confusion_figure(confusion, classes, title), path)


def confusion_figure(confusion: np.ndarray, classes: Sequence[str], title: str):
    """The confusion matrix ([true, predicted] counts) with its count on every cell, dark text
    on light cells and light text on dark ones, titled `title` (model, data and split)."""
    n = len(classes)
    size = min(14, 3.5 + 0.45 * n)
    fig = new_figure((size, size))
    ax = fig.subplots()
    image = ax.imshow(confusion, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="images")
    if n <= 40:
        ax.set_xticks(range(n), list(classes), rotation=90)
        ax.set_yticks(range(n), list(classes))
        peak = max(int(confusion.max()), 1)
        fontsize = max(5, min(10, 130 // max(n, 1)))
        for (i, j), value in np.ndenumerate(confusion):
            color = "white" if value > 0.5 * peak else "black"
            ax.text(j, i, str(value), ha="center", va="center", fontsize=fontsize, color=color)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig
