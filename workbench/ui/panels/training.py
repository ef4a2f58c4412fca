"""Training panel: schedule, optimizer, augmentation, stopping and keeping the best model."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QLineEdit, QSpinBox, QWidget

from workbench.core.config import RunConfig
from workbench.ui.fields import ChoiceCombo, FloatEdit, ToggleAmount
from workbench.ui.panels.base import ConfigPanel

OPTIMIZERS = (("adam", "Adam"), ("sgd", "SGD with momentum"), ("rmsprop", "RMSprop"))
MONITORS = (
    ("val_loss", "validation loss"),
    ("val_accuracy", "validation accuracy"),
    ("loss", "training loss"),
    ("accuracy", "training accuracy"),
)


def _spin(maximum: int, minimum: int = 0) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(minimum, maximum)
    spin.setMaximumWidth(120)
    return spin


class TrainingPanel(ConfigPanel):
    title = "Training"

    def __init__(self, config: RunConfig, parent: QWidget | None = None):
        super().__init__(config, parent)
        form = self.add_group("Schedule")
        self.run_name = QLineEdit()
        self.run_name.setPlaceholderText("optional: names the run folder")
        self.bind("name", self.run_name, "Run name")
        form.addRow("Run name", self.run_name)
        self.epochs = _spin(1_000_000)
        self.bind("training.epochs", self.epochs, "Epochs")
        form.addRow("Epochs", self.epochs)
        self.batch_size = _spin(1_000_000)
        self.bind("training.batch_size", self.batch_size, "Batch size")
        form.addRow("Batch size", self.batch_size)
        self.learning_rate = FloatEdit()
        self.bind("training.learning_rate", self.learning_rate, "Learning rate",
                  "Typical: 1e-3 for a new head, 1e-4 to 1e-5 when fine-tuning a pretrained backbone.")
        form.addRow("Learning rate", self.learning_rate)
        self.optimizer = ChoiceCombo(OPTIMIZERS)
        self.bind("training.optimizer", self.optimizer, "Optimizer")
        form.addRow("Optimizer", self.optimizer)
        self.momentum = FloatEdit()
        self.bind("training.momentum", self.momentum, "Momentum", "SGD only.")
        form.addRow("Momentum", self.momentum)
        self.label_smoothing = FloatEdit()
        self.bind("training.label_smoothing", self.label_smoothing, "Label smoothing",
                  "Softens the one-hot targets (0.1 is common); 0 turns it off.")
        form.addRow("Label smoothing", self.label_smoothing)
        self.seed = _spin(2**31 - 1)
        self.bind("training.seed", self.seed, "Seed", "Same seed, same split and same starting weights.")
        form.addRow("Seed", self.seed)

        form = self.add_group("Augmentation (training images only)")
        self.flip = QCheckBox("Flip left-right")
        self.bind("data.augment.flip", self.flip, "Flip")
        form.addRow(self.flip)
        self.rotation = ToggleAmount("Rotate (fraction of a full turn)")
        self.bind("data.augment.rotation", self.rotation, "Rotation")
        form.addRow(self.rotation)
        self.zoom = ToggleAmount("Zoom in and out")
        self.bind("data.augment.zoom", self.zoom, "Zoom")
        form.addRow(self.zoom)
        self.contrast = ToggleAmount("Vary the contrast")
        self.bind("data.augment.contrast", self.contrast, "Contrast")
        form.addRow(self.contrast)

        form = self.add_group("Stopping and saving")
        self.early_stopping = QCheckBox("Stop early when the monitored value stops improving")
        self.bind("training.early_stopping", self.early_stopping, "Early stopping")
        form.addRow(self.early_stopping)
        self.patience = _spin(100_000)
        self.patience.setSuffix(" epochs")
        self.bind("training.patience", self.patience, "Patience")
        form.addRow("Patience", self.patience)
        self.monitor = ChoiceCombo(MONITORS)
        self.bind("training.monitor", self.monitor, "Monitor")
        form.addRow("Monitor", self.monitor)
        self.keep_best = QCheckBox("Keep the best epoch's model (else the last)")
        self.bind("training.keep_best", self.keep_best, "Keep best")
        form.addRow(self.keep_best)
        self.divergence = FloatEdit()
        self.bind("training.divergence_factor", self.divergence, "Divergence limit",
                  "Stop the run when the loss grows past this many times its first value (or is not a number).")
        form.addRow("Stop if loss grows ×", self.divergence)
        self.finish_layout()
        self.update_state()

    def update_state(self) -> None:
        t = self.config.training
        self.momentum.setEnabled(t.optimizer == "sgd")
        self.patience.setEnabled(t.early_stopping)
        self.monitor.setEnabled(t.early_stopping or t.keep_best)
