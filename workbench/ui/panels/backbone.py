"""Backbone panel: which pretrained network, its width, and where its weights come from."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from workbench.core.backbones import BACKBONES, BackboneSpec
from workbench.core.config import RunConfig
from workbench.ui.fields import ChoiceCombo, PathEdit, RadioGroup
from workbench.ui.panels.base import ConfigPanel
from workbench.ui.weights_cache import imagenet_cached

WEIGHT_CHOICES = (
    ("imagenet", "ImageNet (pretrained; downloaded once, then cached)"),
    ("file", "A local weights file"),
    ("none", "None: re-initialised (train from scratch)"),
)

TRANSFER_CHOICES = (
    ("all", "All layers"),
    ("partial", "The first blocks only"),
    ("zero", "Nothing (zero transfer)"),
)
TRANSFER_HELP = {
    "all": "Every pretrained layer is used; the freeze policy (Regularization) decides which are "
           "frozen and which are fine-tuned.",
    "partial": "The first blocks keep their pretrained weights, frozen (early blocks hold general edges "
               "and textures); the blocks after them are re-initialised or fine-tuned.",
    "zero": "The same architecture with random weights, trained from scratch: the baseline that "
            "shows what pretraining is worth (the same as weights 'None').",
}
REST_CHOICES = (("reinit", "re-initialised (random, trained)"), ("finetune", "fine-tuned (pretrained, trained)"))

NOT_CACHED_DEMO_NOTE = (
    "ImageNet weights are not downloaded yet (no internet needed once cached): this demo starts "
    "from re-initialised weights; choose ImageNet to download them."
)


def format_params(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1e6:.1f} M"
    if count >= 1_000:
        return f"{count / 1e3:.0f} k"
    return str(count)


class BackboneTable(QTableWidget):
    """The backbones to choose from, with their input size and parameter count."""

    valueChanged = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(len(BACKBONES), 3, parent)
        self.setHorizontalHeaderLabels(["Backbone", "Trained at", "Parameters"])
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(22)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        for row, spec in enumerate(BACKBONES.values()):
            cells = (spec.name, f"{spec.default_size} px", format_params(spec.params))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, spec.name)
                item.setToolTip(spec.description)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(row, column, item)
        self.setMinimumHeight(22 * len(BACKBONES) + 28)
        self.setMaximumHeight(22 * len(BACKBONES) + 30)
        self.itemSelectionChanged.connect(self.valueChanged)

    def value(self) -> str:
        rows = self.selectionModel().selectedRows()
        return self.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else ""

    def setValue(self, name: str) -> None:
        for row in range(self.rowCount()):
            if self.item(row, 0).data(Qt.ItemDataRole.UserRole) == name:
                self.selectRow(row)
                return
        self.clearSelection()


class BackbonePanel(ConfigPanel):
    title = "Backbone"

    def __init__(self, config: RunConfig, parent: QWidget | None = None):
        super().__init__(config, parent)
        form = self.add_group("Network")
        self.table = BackboneTable()
        self.bind("backbone.name", self.table, "Backbone")
        form.addRow(self.table)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setObjectName("hint")
        form.addRow(self.description)
        self.width = ChoiceCombo([])
        self.width.setMaximumWidth(120)
        self.bind("backbone.width", self.width, "Width",
                  "Width multiplier (alpha) of the MobileNets: fewer channels, faster, a little less accurate.")
        form.addRow("Width", self.width)

        form = self.add_group("Weights")
        self.weights = RadioGroup(WEIGHT_CHOICES)
        self.bind("backbone.weights", self.weights, "Weights")
        form.addRow(self.weights)
        self.weights_file = PathEdit(
            folder=False, caption="Choose a weights file",
            file_filter="Keras weights (*.weights.h5 *.keras *.h5);;All files (*)",
        )
        self.bind("backbone.weights_file", self.weights_file, "Weights file",
                  "Weights saved from this backbone (same architecture and width), e.g. by an earlier run.")
        form.addRow("File", self.weights_file)
        self.weights_note = QLabel()
        self.weights_note.setWordWrap(True)
        self.weights_note.setObjectName("note")
        form.addRow(self.weights_note)

        form = self.add_group("Transfer")
        self.transfer = ChoiceCombo(TRANSFER_CHOICES)
        self.bind("backbone.transfer", self.transfer, "Transfer", "How much of the pretrained network is used.")
        form.addRow("Transfer", self.transfer)
        self.keep_blocks = QSpinBox()
        self.keep_blocks.setRange(1, 99)
        self.keep_blocks.setMaximumWidth(120)
        self.bind("backbone.keep_blocks", self.keep_blocks, "Blocks kept",
                  "How many of the first blocks keep their pretrained weights (frozen).")
        form.addRow("Blocks kept", self.keep_blocks)
        self.rest = ChoiceCombo(REST_CHOICES)
        self.bind("backbone.rest", self.rest, "Other blocks")
        form.addRow("Other blocks", self.rest)
        self.transfer_help = QLabel()
        self.transfer_help.setWordWrap(True)
        self.transfer_help.setObjectName("hint")
        form.addRow(self.transfer_help)
        self.finish_layout()
        self.update_state()

    def spec(self) -> BackboneSpec | None:
        return BACKBONES.get(self.config.backbone.name)

    def after_edit(self, path: str) -> None:
        # Zero transfer and weights "None" are one thing: keep the two choices in step.
        b = self.config.backbone
        if path == "backbone.transfer" and b.transfer == "zero" and b.weights != "none":
            self.set_value("backbone.weights", "none")
        elif path == "backbone.weights" and b.weights == "none" and b.transfer != "zero":
            self.set_value("backbone.transfer", "zero")
        elif path == "backbone.weights" and b.weights != "none" and b.transfer == "zero":
            self.set_value("backbone.transfer", "all")
        elif path == "backbone.transfer" and b.transfer != "zero" and b.weights == "none":
            spec = self.spec()
            self.set_value("backbone.weights", "imagenet" if spec is None or spec.imagenet else "file")
        if path == "backbone.name":
            spec = self.spec()
            if spec is not None and self.config.backbone.width not in spec.widths:
                self.set_value("backbone.width", 1.0 if 1.0 in spec.widths else spec.widths[0])

    def update_state(self) -> None:
        spec = self.spec()
        b = self.config.backbone
        if spec is not None:
            self.description.setText(spec.description)
            self._loading = True
            try:
                self.width.set_choices([(w, f"{w:g}") for w in spec.widths])
                self.width.setValue(b.width)
            finally:
                self._loading = False
            self.width.setEnabled(len(spec.widths) > 1)
            self.weights.buttons["imagenet"].setEnabled(spec.imagenet)
            self.keep_blocks.setSuffix(f"  of {len(spec.blocks)}")
            self.keep_blocks.setMaximum(max(1, len(spec.blocks) - 1))
        self.weights_file.setEnabled(b.weights == "file")
        self.keep_blocks.setEnabled(b.transfer == "partial")
        self.rest.setEnabled(b.transfer == "partial")
        self.transfer_help.setText(TRANSFER_HELP.get("zero" if b.weights == "none" else b.transfer, ""))
        self.update_weights_note()

    def update_weights_note(self) -> None:
        b = self.config.backbone
        cached = imagenet_cached(self.config)
        if b.weights == "imagenet":
            if cached is True:
                text = "ImageNet weights are cached on this computer: no download needed."
            elif cached is False:
                text = ("ImageNet weights are not downloaded yet: Keras downloads them once when "
                        "training starts (internet needed), then keeps them in ~/.keras/models.")
            else:
                text = "ImageNet weights come from the Keras cache (~/.keras/models), downloaded once."
        elif b.weights == "none":
            text = NOT_CACHED_DEMO_NOTE if cached is False else (
                "Re-initialised: the same architecture with random weights, the from-scratch baseline."
            )
        else:
            text = "The file must hold weights of this backbone, at this width."
        self.weights_note.setText(text)
