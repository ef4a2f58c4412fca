"""The live plots draw a long batch curve as a min/max envelope of what is in view."""

from __future__ import annotations

import numpy as np

from workbench.core.base.events import BatchEnd, EpochEnd
from workbench.ui.plots import TrainingPlots, peak_envelope


def test_the_envelope_keeps_every_spike_and_bounds_the_points():
    rng = np.random.default_rng(1)
    x = np.linspace(0, 10, 100_003)
    y = rng.random(len(x))
    y[51_234], y[77_777] = 9.0, -9.0  # one spike up, one down
    ex, ey = peak_envelope(x, y, 2000)
    assert len(ex) <= 2000 + 100 and len(ex) == len(ey)
    assert ey.max() == 9.0 and ey.min() == -9.0
    assert np.all(np.diff(ex) >= 0) and ex[0] == x[0] and ex[-1] == x[-1]
    small_x, small_y = peak_envelope(x[:100], y[:100], 2000)
    assert small_x is x[:100].base or np.array_equal(small_x, x[:100])
    np.testing.assert_array_equal(small_y, y[:100])


def test_a_long_batch_curve_is_reduced_and_zooming_in_shows_the_detail(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(800, 300)
    plots.show()
    plots.reset(10)
    steps = 2000
    for i in range(10 * steps):
        epoch, batch = divmod(i, steps)
        plots.add_batch(BatchEnd(epoch=epoch, batch=batch, steps=steps, logs={"loss": 1.0 + (i % 7)}))
        if batch == steps - 1:
            plots.add_epoch(EpochEnd(epoch=epoch, logs={"loss": 1.0, "val_loss": 1.2}))
    plots.redraw_now()
    x, _ = plots.loss_plot.batch_curve.getData()
    assert plots.batch_points() == 10 * steps
    assert len(x) < 10 * steps / 4  # an envelope, not 20,000 points
    drawn_epochs, _ = plots.loss_plot.train_curve.getData()
    assert len(drawn_epochs) == 10

    plots.loss_plot.setXRange(5.0, 5.05, padding=0)  # about 100 batches in view
    plots.redraw_now()
    x, y = plots.loss_plot.batch_curve.getData()
    assert x.min() >= 4.99 and x.max() <= 5.06
    assert len(x) >= 90  # every batch in view, unreduced
    all_x, all_y = plots._batch["loss"].arrays()
    shown = (all_x >= x.min()) & (all_x <= x.max())
    np.testing.assert_array_equal(y, all_y[shown])  # the smoothed values themselves, none merged


def test_batch_curve_runs_on_across_epochs_without_a_jump(qtbot):
    """Keras reports each batch as its epoch's running mean (restarting every epoch); the curve
    smooths the batches themselves, so it does not jump at each epoch boundary."""
    from workbench.core.base.events import BatchEnd
    from workbench.ui.plots import TrainingPlots

    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.reset(2)
    steps = 50
    losses = np.linspace(2.0, 1.0, 2 * steps)  # a smooth decrease over both epochs
    for epoch in range(2):
        for batch in range(steps):
            if batch % 3 == 1:
                continue  # the relay thins batch events out: means between two events still hold
            own = losses[epoch * steps: epoch * steps + batch + 1]
            plots.add_batch(BatchEnd(epoch, batch, steps, {"loss": float(own.mean()), "accuracy": 0.5}))
    plots.redraw_now()
    _, y = plots.loss_plot.batch_curve.getData()
    assert np.max(np.abs(np.diff(y))) < 0.04  # the old running-mean curve jumped ~0.08 at the boundary
    assert abs(y[-1] - 1.0) < 0.1  # and it follows the batches, not the epoch's mean (1.25)
    assert "across epochs" in plots.legend.text()


def test_an_empty_confusion_matrix_says_so_instead_of_showing_bare_axes(qtbot):
    from workbench.ui.confusion import EMPTY_TEXT, ConfusionMatrixView

    view = ConfusionMatrixView()
    qtbot.addWidget(view)
    assert view.is_empty() and view.empty_text.textItem.toPlainText() == EMPTY_TEXT
    assert not view.getPlotItem().getAxis("bottom").isVisible()
    view.set_matrix(np.array([[3, 1], [0, 4]]), ["cat", "dog"])
    assert not view.is_empty() and view.shown_total() == 8
    view.set_matrix(np.zeros((0, 0)), [])
    assert view.is_empty()
