"""Training-curve figures (PNG), written with matplotlib's non-interactive backend."""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def new_figure():
    """A bare matplotlib Figure (no pyplot, so no global registry) of the curves' size."""
    from matplotlib.figure import Figure

    return Figure(figsize=(11, 4.2))


def plot_training_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    path: Path,
    *,
    title: str | None = None,
    figure=None,
) -> None:
    """Error (%) per epoch: training solid, validation dashed, one colour per run.

    A training run passes the same `figure` every epoch. The artists cleared from it form
    reference cycles that only Python's rare full collection frees; left to it, a training run
    grew by about 5 MiB an epoch between collections (benchmarks/soak.py), so they are collected
    here, once per epoch.
    """
    fig = new_figure() if figure is None else figure
    fig.clear()
    gc.collect()
    ax_err, ax_loss = fig.subplots(1, 2)
    for index, (label, records) in enumerate(runs.items()):
        color = f"C{index}"
        epochs = [r["epoch"] for r in records]
        ax_err.plot(
            epochs, [100 * r["train_error"] for r in records], color=color, label=f"{label} train"
        )
        ax_loss.plot(epochs, [r["train_loss"] for r in records], color=color, label=label)
        if any(r.get("val_error") is not None for r in records):
            val = [(r["epoch"], r["val_error"]) for r in records if r.get("val_error") is not None]
            ax_err.plot(
                *zip(*[(e, 100 * v) for e, v in val], strict=True),
                color=color,
                linestyle="--",
                label=f"{label} val",
            )
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="error (solid: train, dashed: val)")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss", yscale="log")
    for ax in (ax_err, ax_loss):
        ax.grid(alpha=0.3)
    ax_err.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)  # a reader never sees a half-written image
