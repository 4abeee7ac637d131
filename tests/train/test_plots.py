"""Training-curve plots: redrawn every epoch without leaving garbage behind."""

from __future__ import annotations

import gc

from matplotlib.axes import Axes

from cnnzoo.train.plots import new_figure, plot_training_curves


def _records(epochs: int) -> list[dict]:
    return [
        {"epoch": e, "train_error": 1 / e, "train_loss": 2 / e, "val_error": 1.1 / e}
        for e in range(1, epochs + 1)
    ]


def test_redrawing_the_curves_leaves_no_axes_for_the_collector(tmp_path):
    """Cleared axes sit in reference cycles; left to the rare full collection they grew a
    training run by megabytes an epoch (benchmarks/soak.py)."""
    figure = new_figure()
    gc.disable()  # only the plotting code may collect
    try:
        for epoch in range(1, 6):
            plot_training_curves({"run": _records(epoch)}, tmp_path / "curves.png", figure=figure)
        alive = [obj for obj in gc.get_objects() if issubclass(type(obj), Axes)]
    finally:
        gc.enable()
    assert len(alive) == 2  # the error and the loss axes of the last drawing
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert not list(tmp_path.glob(".*tmp*"))
