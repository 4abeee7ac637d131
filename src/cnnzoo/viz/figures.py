"""Writing a bare `matplotlib.figure.Figure` to files (atomically, no backend chosen)."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from cnnzoo.fileio import atomic_write

__all__ = ["save_figure"]


def save_figure(
    fig: Figure, stem: str | Path, suffixes: tuple[str, ...] = ("png", "svg")
) -> list[Path]:
    """Write `fig` as STEM.png and STEM.svg; returns the files."""
    written = []
    for suffix in suffixes:
        path = Path(f"{stem}.{suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=suffix, dpi=150, bbox_inches="tight")
        atomic_write(path, buffer.getvalue())
        written.append(path)
    return written
