"""Epoch and batch progress bars with elapsed time and an estimate of the time left."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QWidget


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class RunProgress(QWidget):
    """Shows where a run is; the time left is measured, not guessed, and excludes pauses."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.epoch_bar = QProgressBar()
        self.batch_bar = QProgressBar()
        for bar in (self.epoch_bar, self.batch_bar):
            bar.setTextVisible(True)
            bar.setMinimumWidth(90)
        self.time_label = QLabel()
        self.time_label.setObjectName("timeLabel")
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Epoch"), 0, 0)
        layout.addWidget(self.epoch_bar, 0, 1)
        layout.addWidget(QLabel("Batch"), 0, 2)
        layout.addWidget(self.batch_bar, 0, 3)
        layout.addWidget(self.time_label, 0, 4)
        layout.setColumnStretch(1, 1)
        layout.setColumnStretch(3, 1)
        self._epochs = 0
        self._steps = 0
        self._epochs_done = 0
        self._epoch_seconds: list[float] = []
        self._run_started = 0.0  # monotonic time the run was started (elapsed counts from here)
        self._started = 0.0  # monotonic time of the first batch (speed counts from here)
        self._epoch_started = 0.0
        self._epoch_paused = 0.0  # paused time counted when the current epoch started
        self._paused_since: float | None = None
        self._pause_requested = False
        self._paused_total = 0.0
        self.clear()

    def clear(self) -> None:
        self._set_bar(self.epoch_bar, 0, 1, "–")
        self._set_bar(self.batch_bar, 0, 1, "–")
        self.time_label.setText("")

    def preparing(self, epochs: int) -> None:
        """Before the first batch: data and model are being prepared (TensorFlow loads)."""
        self._epochs, self._steps, self._epochs_done = epochs, 0, 0
        self._epoch_seconds.clear()
        self._run_started = time.monotonic()
        self._started = 0.0
        self._paused_since, self._paused_total, self._pause_requested = None, 0.0, False
        self._epoch_paused = 0.0
        self._set_bar(self.epoch_bar, 0, max(epochs, 1), f"0 / {epochs}")
        self.batch_bar.setRange(0, 0)  # busy
        self.batch_bar.setFormat("preparing")
        self.time_label.setText("Preparing data and model…")

    def started(self, epochs: int, steps: int) -> None:
        self._epochs, self._steps = epochs, steps
        self._set_bar(self.batch_bar, 0, max(steps, 1), f"0 / {steps}")

    def on_batch(self, epoch: int, batch: int, steps: int) -> None:
        now = time.monotonic()
        if not self._started:
            self._started = self._epoch_started = now
            self._epoch_paused = self._paused(now)
        if batch == 0 and epoch > self._epochs_done:  # resumed run: its first epoch here is epoch+1
            self._epochs_done = epoch
        self._steps = steps or self._steps
        self._set_bar(self.batch_bar, batch + 1, max(self._steps, 1), f"{batch + 1} / {self._steps}")
        self._set_bar(self.epoch_bar, epoch, max(self._epochs, 1), f"{epoch + 1} / {self._epochs}")
        done = epoch + (batch + 1) / max(self._steps, 1)
        self._show_time(now, done)

    def on_epoch(self, epoch: int, seconds: float) -> None:
        """`seconds` is the run's own measure; the estimate uses the time seen here, pauses excluded."""
        now = time.monotonic()
        self._epochs_done = epoch + 1
        if self._started:
            measured = (now - self._epoch_started) - (self._paused(now) - self._epoch_paused)
            self._epoch_seconds.append(max(0.0, measured))
        else:
            self._epoch_seconds.append(seconds)
        self._epoch_started, self._epoch_paused = now, self._paused(now)
        self._set_bar(self.epoch_bar, epoch + 1, max(self._epochs, 1), f"{epoch + 1} / {self._epochs}")
        self._show_time(now, float(epoch + 1))

    def set_paused(self, paused: bool) -> None:
        """Pause asked (the run still finishes its batch) or resumed; `confirm_paused` when it waits."""
        now = time.monotonic()
        if paused:
            if self._paused_since is None:
                self._pause_requested = True
                self.time_label.setText("Pausing after this batch…")
        else:
            self._pause_requested = False
            if self._paused_since is not None:
                self._paused_total += now - self._paused_since
                self._paused_since = None

    def confirm_paused(self) -> None:
        """The run says it is waiting between two batches: from now on, time is paused."""
        if self._pause_requested and self._paused_since is None:
            self._paused_since = time.monotonic()
            self.time_label.setText("Paused")

    def finish(self, text: str) -> None:
        if self.batch_bar.maximum() == 0:  # ended before the first batch
            self._set_bar(self.batch_bar, 0, 1, "–")
        elapsed = self._elapsed(time.monotonic())
        self.time_label.setText(f"{text} · {format_duration(elapsed)}" if self._run_started else text)

    RECENT_EPOCHS = 3  # the estimate follows the speed of the last few epochs

    def remaining_seconds(self, now: float, done_epochs: float) -> float | None:
        """Time left, pauses excluded: from the recent whole epochs (they include validation) but not
        the first (it compiles, loads and fills caches: often many times slower); while only the first
        is done, from the speed of the batches of the current epoch; before that, from batches."""
        left = max(0.0, self._epochs - done_epochs)
        recent = self._epoch_seconds[1:][-self.RECENT_EPOCHS:]
        if recent:
            return sum(recent) / len(recent) * left
        if self._epoch_seconds:
            into = done_epochs - self._epochs_done  # fraction of the current epoch done
            spent = (now - self._epoch_started) - (self._paused(now) - self._epoch_paused)
            if into >= 0.05 and spent > 0:
                return spent / into * left
            return None  # the first epoch's time would overstate it: wait for the second's speed
        active = self._active(now)
        if done_epochs <= 0 or active <= 0:
            return None
        return active / done_epochs * left

    def _paused(self, now: float) -> float:
        return self._paused_total + (now - self._paused_since if self._paused_since is not None else 0.0)

    def _active(self, now: float) -> float:
        """Training time since the first batch, pauses excluded: the basis of the speed."""
        return max(0.0, now - self._started - self._paused(now))

    def _elapsed(self, now: float) -> float:
        """Time since the run started (preparation included), pauses excluded."""
        return max(0.0, now - self._run_started - self._paused(now)) if self._run_started else 0.0

    def _show_time(self, now: float, done_epochs: float) -> None:
        if self._paused_since is not None or self._pause_requested:
            return
        left = self.remaining_seconds(now, done_epochs)
        text = f"Elapsed {format_duration(self._elapsed(now))}"
        if left is not None:
            text += f" · about {format_duration(left)} left"
        self.time_label.setText(text)

    @staticmethod
    def _set_bar(bar: QProgressBar, value: int, maximum: int, text: str) -> None:
        bar.setRange(0, maximum)
        bar.setValue(min(value, maximum))
        bar.setFormat(text)
