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


def test_a_one_epoch_run_shows_its_points_on_integer_epochs(tmp_path):
    figure = new_figure()
    records = [{"epoch": 1, "train_error": 0.5, "train_loss": 1.2, "val_error": 0.4,
                "val_loss": 1.0}]  # fmt: skip
    plot_training_curves({"lenet5": records}, tmp_path / "curves.png", figure=figure)
    ax_err, ax_loss = figure.axes
    for ax in (ax_err, ax_loss):
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["lenet5 train", "lenet5 val"]  # validation loss is drawn too
        assert all(line.get_marker() == "o" for line in ax.get_lines())  # one point: visible
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
    assert ax_loss.get_yscale() == "log"
    # many epochs: lines without markers
    plot_training_curves({"run": _records(40)}, tmp_path / "curves.png", figure=figure)
    assert all(line.get_marker() in (None, "None", "") for line in figure.axes[0].get_lines())


def test_the_confusion_matrix_labels_every_cell_legibly():
    import numpy as np

    from cnnzoo.train.plots import confusion_figure

    confusion = np.array([[50, 0, 2], [1, 40, 0], [0, 3, 45]])
    title = "lenet5 on digits, test split (141 images, top-1 95.04%)"
    figure = confusion_figure(confusion, ["zero", "one", "two"], title)
    ax = figure.axes[0]
    assert ax.get_title() == title
    texts = {(t.get_position(), t.get_text()): t.get_color() for t in ax.texts}
    assert len(texts) == 9  # every cell, zeros included
    assert texts[((0, 0), "50")] == "white" and texts[((1, 0), "0")] == "black"
    assert type(figure).__module__ == "matplotlib.figure"  # no pyplot figure
