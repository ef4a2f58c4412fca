"""The GAN lab's settings: a GanConfig edited through the same field binding as the classifier's panels.

Each widget is bound to a dotted field of the config (panels/base.py); text that is not a
value yet stays in the widget as an input problem, and the lab marks every problem beside
its field.
"""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QLabel, QLineEdit, QSpinBox, QWidget

from workbench.core.config.backbone_catalogue import BACKBONES
from workbench.core.config.gan import GanConfig
from workbench.ui.fields import CheckGroup, ChoiceCombo, FloatEdit, PathEdit
from workbench.ui.panels.base import ConfigPanel


def spin(low: int, high: int, step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setMaximumWidth(140)
    return box


class GanForm(ConfigPanel):
    """Images, networks, training and FID features of a GAN run."""

    title = "GAN settings"

    def __init__(self, config: GanConfig, parent: QWidget | None = None):
        super().__init__(config, parent)
        self._layout.setContentsMargins(0, 0, 6, 0)
        self._group("Images", [
            ("data.folder", "Folder", PathEdit(folder=True, caption="Choose a folder of images"),
             "A folder of images, or a folder with one sub-folder per class"),
            ("data.class_name", "Class", QLineEdit(),
             "One class (sub-folder) to learn; empty: every image in the folder"),
            ("data.image_size", "Image size", ChoiceCombo([(32, "32 x 32"), (64, "64 x 64")]), ""),
            ("data.cache", "Keep in memory", QCheckBox("decode each image once"), ""),
        ])
        self.widgets["data.class_name"].setPlaceholderText("all classes")
        self._group("Networks", [
            ("model.latent_size", "Latent size", spin(1, 1024),
             "Length of the noise vector the generator starts from (typical: 100)"),
            ("model.generator_width", "Generator width", spin(4, 1024, 8),
             "Filters of the generator's last block, doubled toward its start (typical: 64)"),
            ("model.discriminator_width", "Discriminator width", spin(4, 1024, 8),
             "Filters of the discriminator's first block, doubled toward its end (typical: 64)"),
            ("dropout.rate", "Dropout rate", FloatEdit(),
             "Dropout in the discriminator (0: none). It keeps the discriminator from winning outright."),
            ("dropout.placement", "Dropout placement",
             CheckGroup([("after_conv", "after each convolution block"), ("before_output", "before the output")]), ""),
        ])
        self._group("Training", [
            ("training.steps", "Steps", spin(1, 10_000_000, 100), ""),
            ("training.batch_size", "Batch size", spin(2, 4096, 8), ""),
            ("training.generator_learning_rate", "Generator learning rate", FloatEdit(),
             "Adam's learning rate for the generator (typical: 2e-4)"),
            ("training.generator_beta_1", "Generator beta 1", FloatEdit(),
             "Adam's beta_1 for the generator (typical for a DCGAN: 0.5)"),
            ("training.discriminator_learning_rate", "Discriminator learning rate", FloatEdit(), ""),
            ("training.discriminator_beta_1", "Discriminator beta 1", FloatEdit(), ""),
            ("training.label_smoothing", "Label smoothing", FloatEdit(),
             "One-sided: the discriminator's target for real images becomes 1 - this (0: off; typical 0.1)"),
            ("training.sample_every", "Samples every", spin(1, 1_000_000, 10),
             "Refresh (and save) the grid of samples every this many steps"),
            ("training.checkpoint_every", "Checkpoint every", spin(1, 10_000_000, 100),
             "Save generator.keras every this many steps"),
            ("training.seed", "Seed", spin(0, 2_000_000_000), ""),
            ("guard.enabled", "Collapse guard", QCheckBox("stop and explain when training collapses"), ""),
        ])
        fid = self._group("FID features", [
            ("evaluation.features", "Network", ChoiceCombo([
                ("auto", "automatic (InceptionV3 if its weights are here)"), ("classifier", "a trained classifier"),
                ("backbone", "a backbone"), ("inception", "InceptionV3 (ImageNet)")]), ""),
            ("evaluation.classifier_run", "Classifier run",
             PathEdit(folder=True, caption="Choose a trained classifier's run folder"),
             "Its penultimate layer gives the features, its softmax the Inception Score"),
            ("evaluation.backbone", "Backbone", ChoiceCombo([(n, n) for n in BACKBONES]), ""),
            ("evaluation.backbone_weights", "Backbone weights", ChoiceCombo([
                ("imagenet", "ImageNet (from the Keras cache)"), ("file", "a weights file"), ("none", "random")]), ""),
            ("evaluation.weights_file", "Weights file",
             PathEdit(folder=False, file_filter="Weights (*.h5 *.keras)", caption="Choose a weights file"), ""),
            ("evaluation.samples", "Images compared", spin(10, 50_000, 100), ""),
            ("evaluation.fid_at_end", "FID at the end", QCheckBox("compute FID when training ends"), ""),
        ])
        self.source_label = QLabel()
        self.source_label.setObjectName("hint")
        self.source_label.setWordWrap(True)
        fid.addRow(self.source_label)

    def _group(self, title: str, rows: list[tuple[str, str, QWidget, str]]):
        form = self.add_group(title)
        for path, label, widget, tip in rows:
            form.addRow(label, self.bind(path, widget, label, tip))
        return form

    @property
    def widgets(self) -> dict[str, QWidget]:
        """The field widgets by dotted path."""
        return {path: self.bound_widget(path) for path in self.fields()}
