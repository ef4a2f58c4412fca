"""Training panel: schedule, optimizer (with the learning-rate finder), learning-rate schedule, class
weights, augmentation, stopping and keeping the best model."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from workbench.core.config.run import RunConfig
from workbench.ui.fields import ChoiceCombo, FloatEdit, InputError, ToggleAmount
from workbench.ui.lr_finder import LrFinderDialog
from workbench.ui.panels.base import ConfigPanel

OPTIMIZERS = (("adam", "Adam"), ("sgd", "SGD with momentum"), ("rmsprop", "RMSprop"))
PRECISIONS = (("off", "off (float32)"), ("float16", "float16 (NVIDIA GPUs)"), ("bfloat16", "bfloat16"))
JIT = (("auto", "automatic"), ("on", "on"), ("off", "off"))
SCHEDULES = (("constant", "constant"), ("cosine", "cosine decay, with warm-up"),
             ("plateau", "reduce on plateau"))
CLASS_WEIGHTS = (("off", "off (every image counts the same)"), ("balanced", "balanced (by class size)"),
                 ("manual", "manual"))
MONITORS = (
    ("val_loss", "validation loss"),
    ("val_accuracy", "validation accuracy"),
    ("loss", "training loss"),
    ("accuracy", "training accuracy"),
)


class WeightsEdit(QLineEdit):
    """Weights by class name typed as "cat=2, dog=1"; value() is the dict the config holds."""

    valueChanged = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setPlaceholderText("class=weight, e.g. cat=3, dog=1")
        self.textChanged.connect(self.valueChanged)

    def value(self) -> dict[str, float]:
        weights = {}
        for part in (p.strip() for p in self.text().replace(";", ",").split(",")):
            if not part:
                continue
            name, sep, number = part.rpartition("=")
            try:
                if not sep or not name.strip():
                    raise ValueError(part)
                weights[name.strip()] = float(number.strip())
            except ValueError:
                raise InputError(f"'{part}' is not class=weight; write e.g. cat=3, dog=1") from None
        return weights

    def setValue(self, value: dict[str, float]) -> None:
        self.setText(", ".join(f"{name}={weight:g}" for name, weight in value.items()))


def _spin(maximum: int, minimum: int = 0) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(minimum, maximum)
    spin.setMaximumWidth(120)
    return spin


class TrainingPanel(ConfigPanel):
    title = "Training"

    def __init__(self, config: RunConfig, parent: QWidget | None = None):
        super().__init__(config, parent)
        self.runs_dir = None  # the main window sets it; None means the default runs folder
        self.tensorboard_box: QMessageBox | None = None
        form = self.add_group("Schedule")
        self.run_name = QLineEdit()
        self.run_name.setPlaceholderText("empty: the dataset folder and backbone")
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
        self.find_lr_button = QPushButton("Find…")
        self.find_lr_button.setToolTip("Run a learning-rate range test on a copy of this model and pick a rate "
                                       "from its loss curve")
        self.find_lr_button.clicked.connect(self.open_lr_finder)
        self.lr_finder: LrFinderDialog | None = None
        lr_row = QWidget()
        row = QHBoxLayout(lr_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.learning_rate)
        row.addWidget(self.find_lr_button)
        row.addStretch(1)
        form.addRow("Learning rate", lr_row)
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

        form = self.add_group("Learning-rate schedule")
        self.lr_schedule = ChoiceCombo(SCHEDULES)
        self.bind("training.lr_schedule", self.lr_schedule, "Schedule",
                  "Constant: the same rate throughout. Cosine: a linear warm-up, then a smooth decay to 0 by the "
                  "last epoch (with two-phase fine-tuning, each phase has its own). Reduce on plateau: multiply "
                  "the rate by a factor when the monitored value stops improving.")
        form.addRow("Schedule", self.lr_schedule)
        self.warmup_epochs = _spin(100_000)
        self.warmup_epochs.setSuffix(" epochs")
        self.bind("training.warmup_epochs", self.warmup_epochs, "Warm-up",
                  "Cosine only: the rate climbs from 0 to the learning rate over these epochs.")
        form.addRow("Warm-up", self.warmup_epochs)
        self.plateau_factor = FloatEdit()
        self.bind("training.plateau_factor", self.plateau_factor, "Plateau factor",
                  "Reduce on plateau only: the rate is multiplied by this (0.5 halves it).")
        form.addRow("Reduce by ×", self.plateau_factor)
        self.plateau_patience = _spin(100_000)
        self.plateau_patience.setSuffix(" epochs")
        self.bind("training.plateau_patience", self.plateau_patience, "Plateau patience",
                  "Reduce on plateau only: epochs without improvement of the monitored value before it acts.")
        form.addRow("After", self.plateau_patience)

        form = self.add_group("Class imbalance")
        self.class_weights = ChoiceCombo(CLASS_WEIGHTS)
        self.bind("training.class_weights", self.class_weights, "Class weights",
                  "Balanced: a class with few images counts more in the loss (images / (classes × its images)), "
                  "so the model does not learn to ignore it. Manual: your weight per class.")
        form.addRow("Class weights", self.class_weights)
        self.manual_class_weights = WeightsEdit()
        self.bind("training.manual_class_weights", self.manual_class_weights, "Manual class weights",
                  "Manual only: a weight per class name; classes left out weigh 1.")
        form.addRow("Weights", self.manual_class_weights)

        form = self.add_group("Two-phase fine-tuning")
        self.two_phase = QCheckBox("Train the head first, then fine-tune")
        self.bind("training.two_phase", self.two_phase, "Two-phase",
                  "Phase 1 trains only the new head on a frozen backbone; phase 2 unfreezes the layers the "
                  "freeze policy names and goes on at a lower learning rate, so the head's first large "
                  "updates do not wreck the pretrained features.")
        form.addRow(self.two_phase)
        self.phase1_epochs = _spin(1_000_000)
        self.phase1_epochs.setSuffix(" epochs")
        self.bind("training.phase1_epochs", self.phase1_epochs, "Head-only epochs",
                  "Epochs of phase 1 (backbone frozen); the remaining epochs fine-tune.")
        form.addRow("Head only for", self.phase1_epochs)
        self.finetune_lr_factor = FloatEdit()
        self.bind("training.finetune_lr_factor", self.finetune_lr_factor, "Fine-tuning rate factor",
                  "Phase 2 trains at the learning rate times this (0.1: a tenth).")
        form.addRow("Fine-tuning rate ×", self.finetune_lr_factor)

        form = self.add_group("Augmentation (training images only)")
        self.flip = QCheckBox("Flip left-right")
        self.bind("data.augment.flip", self.flip, "Flip")
        form.addRow(self.flip)
        self.rotation = ToggleAmount("Rotate (share of a turn)")
        self.bind("data.augment.rotation", self.rotation, "Rotation",
                  "Turn each training image by a random angle up to this fraction of a full turn.")
        form.addRow(self.rotation)
        self.zoom = ToggleAmount("Zoom in and out")
        self.bind("data.augment.zoom", self.zoom, "Zoom")
        form.addRow(self.zoom)
        self.contrast = ToggleAmount("Vary the contrast")
        self.bind("data.augment.contrast", self.contrast, "Contrast")
        form.addRow(self.contrast)

        form = self.add_group("Stopping and saving")
        self.early_stopping = QCheckBox("Stop early when it stops improving")
        self.bind("training.early_stopping", self.early_stopping, "Early stopping",
                  "Stop the run when the monitored value has not improved for 'patience' epochs.")
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
        self.tensorboard = QCheckBox("TensorBoard logs")
        self.bind("training.tensorboard", self.tensorboard, "TensorBoard",
                  "Write TensorBoard logs into the run folder: Keras's TensorBoard callback writes the curves (and weight histograms) of each epoch into "
                  "<run folder>/tensorboard.")
        self.tensorboard_button = QPushButton("How to open…")
        self.tensorboard_button.setToolTip("The command that opens the runs' TensorBoard logs")
        self.tensorboard_button.clicked.connect(self.show_tensorboard_command)
        form.addRow(self.tensorboard, self.tensorboard_button)
        self.mlflow = QCheckBox("Track in MLflow")
        self.bind("training.mlflow", self.mlflow, "MLflow",
                  "Log the run's settings, its metrics per epoch and its model to MLflow (needs the mlflow extra: "
                  "pip install 'workbench[mlflow]').")
        self.mlflow_uri = QLineEdit()
        self.mlflow_uri.setPlaceholderText("default: mlflow.db beside the runs")
        self.bind("training.mlflow_uri", self.mlflow_uri, "MLflow store",
                  "An MLflow tracking URI (sqlite:///…, http://…); empty: a SQLite file beside the run folders.")
        form.addRow(self.mlflow, self.mlflow_uri)

        form = self.add_group("Speed (advanced)")
        self.mixed_precision = ChoiceCombo(PRECISIONS)
        self.bind("training.mixed_precision", self.mixed_precision, "Mixed precision",
                  "Compute in 16-bit floats, keep the weights and the output layer in 32-bit. Up to 2-3x faster "
                  "on GPUs with tensor cores (float16 on NVIDIA, bfloat16 on recent GPUs and TPUs); "
                  "usually slower on a CPU. Off: plain float32.")
        form.addRow("Mixed precision", self.mixed_precision)
        self.jit_compile = ChoiceCombo(JIT)
        self.bind("training.jit_compile", self.jit_compile, "XLA compilation",
                  "Compile each training step with XLA. Automatic: Keras turns it on for GPUs when every "
                  "layer supports it. On: force it (the first step takes longer to compile). Off: never.")
        form.addRow("XLA compilation", self.jit_compile)
        self.device_label = QLabel("Devices: checking…")
        self.device_label.setObjectName("hint")
        self.device_label.setToolTip("The accelerators TensorFlow sees. With several GPUs the run uses all "
                                     "of them (MirroredStrategy); the batch size is split across them.")
        form.addRow("Runs on", self.device_label)
        self.finish_layout()
        self.update_state()

    @Slot()
    def open_lr_finder(self) -> LrFinderDialog:
        """The learning-rate finder on a copy of the config; Use writes its rate into the field."""
        dialog = LrFinderDialog(self.config, self)
        dialog.rate_chosen.connect(self._on_rate_chosen)
        dialog.finished.connect(dialog.deleteLater)
        self.lr_finder = dialog
        dialog.open()
        dialog.start()
        return dialog

    @Slot(float)
    def _on_rate_chosen(self, rate: float) -> None:
        self.set_value("training.learning_rate", rate)

    @Slot()
    def show_tensorboard_command(self) -> QMessageBox:
        """Show (and let the user copy) the command that opens the runs' TensorBoard logs."""
        from workbench.core.runs.store import default_runs_dir, tensorboard_command

        command = tensorboard_command(self.runs_dir or default_runs_dir())
        box = QMessageBox(QMessageBox.Icon.Information, "TensorBoard",
                          "Runs with “Write TensorBoard logs” on keep them in their folder. Open them all with:\n\n"
                          f"{command}\n\n(TensorBoard is a separate program: pip install tensorboard)", parent=self)
        box.setTextInteractionFlags(box.textInteractionFlags() | Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()
        self.tensorboard_box = box
        return box

    def update_state(self) -> None:
        t = self.config.training
        self.momentum.setEnabled(t.optimizer == "sgd")
        self.patience.setEnabled(t.early_stopping)
        self.phase1_epochs.setEnabled(t.two_phase)
        self.finetune_lr_factor.setEnabled(t.two_phase)
        self.monitor.setEnabled(t.early_stopping or t.keep_best or t.lr_schedule == "plateau")
        self.mlflow_uri.setEnabled(t.mlflow)
        self.warmup_epochs.setEnabled(t.lr_schedule == "cosine")
        self.plateau_factor.setEnabled(t.lr_schedule == "plateau")
        self.plateau_patience.setEnabled(t.lr_schedule == "plateau")
        self.manual_class_weights.setEnabled(t.class_weights == "manual")
