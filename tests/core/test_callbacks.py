"""The run's Keras callbacks on their own: the divergence guard's rule."""

import math

from workbench.core.engine.callbacks import DivergenceGuard


class FakeModel:
    stop_training = False


def feed(guard: DivergenceGuard, losses) -> int | None:
    """Feed batch losses; the batch at which the guard stopped the run, or None."""
    guard.set_model(FakeModel())
    for i, loss in enumerate(losses):
        guard.on_train_batch_end(i, {"loss": loss})
        if guard.model.stop_training:
            return i
    return None


def test_a_run_that_starts_low_and_wobbles_is_not_diverging():
    # A pretrained backbone's first loss is small; ordinary noise then reaches 15x it (the false
    # alarm of the old "10x the first value" rule: 0.29 -> 4.25 with validation well above chance).
    losses = [0.2927, 4.25, 1.1, 2.9, 0.6, 3.8, 0.9, 1.7, 4.1, 0.8] * 5
    guard = DivergenceGuard(10.0, num_classes=4)
    assert feed(guard, losses) is None and guard.reason == ""


def test_a_loss_that_climbs_far_above_chance_and_stays_there_stops_the_run():
    guard = DivergenceGuard(10.0, num_classes=4)
    losses = [1.4, 1.3, 1.2] + [80.0] * 30
    stopped = feed(guard, losses)
    assert stopped is not None and 3 + DivergenceGuard.PATIENCE - 1 <= stopped < 3 + 20
    assert "stayed above" in guard.reason and f"{10 * math.log(4):.4g}" in guard.reason


def test_a_single_spike_does_not_stop_a_run():
    guard = DivergenceGuard(10.0, num_classes=2)
    assert feed(guard, [0.7] * 20 + [500.0] + [0.7] * 20) is None


def test_nan_or_inf_stops_at_once():
    for bad in (float("nan"), float("inf")):
        guard = DivergenceGuard(10.0, num_classes=3)
        assert feed(guard, [1.0, 1.1, bad, 1.0]) == 2
        assert f"became {bad}" in guard.reason


def test_the_reference_carries_across_a_resume():
    guard = DivergenceGuard(10.0, first=0.05, num_classes=2)
    assert guard.limit == 10.0 * math.log(2)  # never below the chance-level loss
    guard = DivergenceGuard(10.0, first=5.0, num_classes=2)
    assert guard.limit == 50.0
