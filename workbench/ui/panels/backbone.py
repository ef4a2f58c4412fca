"""Backbone panel: which pretrained network, its width, and where its weights come from."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from workbench.core.config.backbone_catalogue import BACKBONES, BackboneSpec
from workbench.core.config.run import RunConfig
from workbench.ui.defaults import weights_note
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

SAVED_NONE = ""  # the saved-backbones list's first entry: no saved backbone chosen


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

    def show_width(self, name: str, width: float) -> None:
        """The selected backbone's parameter count at the chosen width (the model a run builds)."""
        for row, spec in enumerate(BACKBONES.values()):
            count = spec.params_at(width) if spec.name == name else spec.params
            item = self.item(row, 2)
            item.setText(format_params(count))
            item.setToolTip(spec.description + (f"\nAt width {width:g}." if spec.name == name and width != 1.0 else ""))

    def value(self) -> str:
        rows = self.selectionModel().selectedRows()
        return self.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else ""

    def setValue(self, name: str) -> None:
        for row in range(self.rowCount()):
            if self.item(row, 0).data(Qt.ItemDataRole.UserRole) == name:
                self.selectRow(row)
                return
        self.clearSelection()


class SavedBackbonesCombo(ChoiceCombo):
    """The backbones saved from runs (Runs tab: Save backbone); re-read each time it opens."""

    about_to_open = Signal()

    def showPopup(self) -> None:
        self.about_to_open.emit()
        super().showPopup()


def saved_backbone_choices(runs_dir: str | os.PathLike | None) -> list[tuple[str, str, str]]:
    """(path, label, tooltip) of each backbone saved under the runs folder (newest first), then the bundled ones."""
    from workbench.core.runs.saved_backbones import (
        available_backbones,
        is_bundled_backbone,
        saved_backbone_info,
    )

    choices = []
    for path in available_backbones(runs_dir):
        info = saved_backbone_info(path)
        name = path.name[: -len(".weights.h5")]
        bundled = is_bundled_backbone(path)
        if info.get("backbone"):
            width = info.get("width", 1.0)
            arch = info["backbone"] + (f" ×{width:g}" if isinstance(width, (int, float)) and width != 1.0 else "")
            label = f"{name}  ({arch}{', bundled' if bundled else ''})"
            source = info.get("run_name") or info.get("run") or "a run"
            origin = "Bundled with Workbench, pretrained on" if bundled else "Saved from"
            tooltip = f"{path}\n{origin} {source}: {arch} at {info.get('image_size', '?')} px"
        else:
            label = f"{name}  (bundled)" if bundled else name
            tooltip = str(path)
        choices.append((str(path), label, tooltip))
    return choices


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
        self.runs_dir: str | os.PathLike | None = None  # set by the main window; None: the default runs folder
        self.saved = SavedBackbonesCombo([(SAVED_NONE, "none saved yet")])
        self.saved.setToolTip("Backbones saved from earlier runs (Runs tab: Save backbone…) and the ones "
                              "bundled with Workbench. Choosing one "
                              "starts from its weights: the weights source becomes that file, and the "
                              "backbone and width become the ones it was trained with.")
        self.saved.about_to_open.connect(self.refresh_saved_backbones)
        self.saved.activated.connect(self._on_saved_chosen)
        form.addRow("Saved", self.saved)
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
            self.table.show_width(spec.name, b.width)
            self.weights.buttons["imagenet"].setEnabled(spec.imagenet)
            self.keep_blocks.setSuffix(f"  of {len(spec.blocks)}")
            self.keep_blocks.setMaximum(max(1, len(spec.blocks) - 1))
        self.weights_file.setEnabled(b.weights == "file")
        self.keep_blocks.setEnabled(b.transfer == "partial")
        self.rest.setEnabled(b.transfer == "partial")
        self.transfer_help.setText(TRANSFER_HELP.get("zero" if b.weights == "none" else b.transfer, ""))
        self.update_weights_note()
        if hasattr(self, "saved"):
            self._show_saved_choice()

    # ---- backbones saved from runs --------------------------------------------------------------
    def set_runs_dir(self, runs_dir: str | os.PathLike | None) -> None:
        """The runs folder whose weights/ holds the saved backbones (None: the default one)."""
        self.runs_dir = runs_dir
        self.refresh_saved_backbones()

    @Slot()
    def refresh_saved_backbones(self) -> None:
        """Re-read the saved backbones (the runs folder's weights/) and show the one in use, if any."""
        choices = saved_backbone_choices(self.runs_dir)
        blocked = self.saved.blockSignals(True)
        try:
            self.saved.clear()
            self.saved.addItem("choose a saved backbone…" if choices else "none saved yet", SAVED_NONE)
            for path, label, tooltip in choices:
                self.saved.addItem(label, path)
                self.saved.setItemData(self.saved.count() - 1, tooltip, Qt.ItemDataRole.ToolTipRole)
        finally:
            self.saved.blockSignals(blocked)
        self._show_saved_choice()

    @Slot(str)
    def add_saved_backbone(self, path: str) -> None:
        """A backbone was just saved (Runs tab): list it."""
        self.refresh_saved_backbones()

    def saved_backbone_paths(self) -> list[str]:
        return [self.saved.itemData(i) for i in range(self.saved.count()) if self.saved.itemData(i)]

    def _show_saved_choice(self) -> None:
        b = self.config.backbone
        index = 0
        if b.weights == "file" and b.weights_file:
            for i in range(1, self.saved.count()):
                if Path(self.saved.itemData(i)) == Path(b.weights_file):
                    index = i
                    break
        blocked = self.saved.blockSignals(True)
        self.saved.setCurrentIndex(index)
        self.saved.blockSignals(blocked)

    @Slot(int)
    def _on_saved_chosen(self, index: int) -> None:
        path = self.saved.itemData(index)
        if path:
            self.use_saved_backbone(path)

    def use_saved_backbone(self, path: str) -> None:
        """Start from a saved backbone: its architecture and width, weights from its file, all layers transferred."""
        from workbench.core.runs.saved_backbones import saved_backbone_info

        info = saved_backbone_info(path)
        name = info.get("backbone")
        if name in BACKBONES and name != self.config.backbone.name:
            self.set_value("backbone.name", name)
        width = info.get("width")
        spec = self.spec()
        if isinstance(width, (int, float)) and spec is not None and float(width) in spec.widths:
            self.set_value("backbone.width", float(width))
        self.set_value("backbone.weights_file", str(path))
        self.set_value("backbone.weights", "file")
        if self.config.backbone.transfer == "zero":
            self.set_value("backbone.transfer", "all")

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not event.spontaneous():
            self.refresh_saved_backbones()

    def update_weights_note(self) -> None:
        """Which weights the backbone starts from and why (ui/defaults.py: weights_note)."""
        self.weights_note.setText(weights_note(self.config, imagenet_cached(self.config)))
