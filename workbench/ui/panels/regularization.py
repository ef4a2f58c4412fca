"""Regularization panel: dropout, the classifier head, and which backbone layers train.

The freeze map (ui/freeze_map.py) shows the backbone's layers and what the freeze
policy trains; it is built by a background job (transfer_jobs.build_freeze_map) when
the map is in view (this panel or its dialog shown) and the settings it depends on
have changed. Ticking layers there makes the policy "custom" with exactly those
layers in `freeze.trainable_layers`.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QEvent, Qt, QThreadPool, QTimer, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from workbench.core.config.backbone_catalogue import BACKBONES
from workbench.core.config.fields import set_field
from workbench.core.config.run import ACTIVATIONS, RunConfig
from workbench.ui.fields import CheckGroup, ChoiceCombo, FloatEdit, IntListEdit, RadioGroup
from workbench.ui.freeze_map import LOADING_TEXT, FreezeBar, FreezeMapDialog
from workbench.ui.panels.base import ConfigPanel
from workbench.ui.tasks.background import BackgroundJobs
from workbench.ui.tasks.transfer_jobs import FreezeMap, build_freeze_map, map_key, structure_key

MAP_DELAY_MS = 300  # after the last edit, like the trainable-layer readout
MAP_RETRY_MS = 1500  # Keras was busy (a run, another build): ask again

DROPOUT_KINDS = (
    ("dropout", "Standard (single units)"),
    ("spatial", "Spatial (whole channels)"),
    ("gaussian", "Gaussian (multiplicative noise)"),
    ("alpha", "Alpha (keeps SELU statistics)"),
    ("dropblock", "DropBlock (square regions)"),
)
DROPOUT_NAMES = {  # a kind in a sentence: "Applied standard dropout at rate 0.2"
    "dropout": "standard dropout", "spatial": "spatial dropout", "gaussian": "Gaussian dropout",
    "alpha": "alpha dropout", "dropblock": "DropBlock",
}


def dropout_kind_label(kind: str) -> str:
    """The kind as the Regularization control names it ("Standard"), for tables."""
    return dict(DROPOUT_KINDS).get(kind, kind).split(" (")[0]


# One sentence per kind: the combo's tooltips and the line under it (the Tuning tab's dropout preset uses them too).
DROPOUT_HELP = {
    "dropout": "Zeroes single activations at random and scales up the rest; the usual choice on the "
               "pooled vector before the classifier.",
    "spatial": "Drops whole channels of the feature map, because neighbouring cells of one channel are so "
               "alike that dropping single cells hardly regularises.",
    "gaussian": "Multiplies every activation by random noise around 1 instead of zeroing any, a softer "
                "dropout with the same variance.",
    "alpha": "Drops units while keeping the mean and variance of the activations, for self-normalising "
             "(SELU) layers.",
    "dropblock": "Drops contiguous squares of the feature map so the model cannot lean on one region of the "
                 "image; ramping its rate up from 0 over a few epochs helps it start.",
}
PLACEMENTS = (
    ("feature_map", "On the backbone's feature map"),
    ("before_classifier", "Before the classifier"),
    ("after_dense", "After each dense layer of the head"),
)
POOLINGS = (("avg", "Global average"), ("max", "Global max"), ("flatten", "Flatten"))
FREEZE_POLICIES = (
    ("all", "Freeze the backbone: train the head only"),
    ("top_layers", "Train the top N layers of the backbone"),
    ("top_blocks", "Train the top K blocks of the backbone"),
    ("none", "Train everything (full fine-tuning)"),
    ("custom", "Train the layers ticked in the freeze map"),
)


class RegularizationPanel(ConfigPanel):
    title = "Regularization"

    def __init__(self, config: RunConfig, parent: QWidget | None = None):
        super().__init__(config, parent)
        form = self.add_group("Dropout")
        self.dropout_kind = ChoiceCombo(DROPOUT_KINDS)
        self.bind("dropout.kind", self.dropout_kind, "Dropout kind")
        form.addRow("Kind", self.dropout_kind)
        for index, (kind, _) in enumerate(DROPOUT_KINDS):
            self.dropout_kind.setItemData(index, DROPOUT_HELP[kind], Qt.ItemDataRole.ToolTipRole)
        self.dropout_kind.setToolTip("\n".join(f"{label}: {DROPOUT_HELP[kind]}" for kind, label in DROPOUT_KINDS))
        self.kind_help = QLabel()
        self.kind_help.setObjectName("note")
        self.kind_help.setWordWrap(True)
        form.addRow("", self.kind_help)
        self.dropout_rate = FloatEdit()
        self.bind("dropout.rate", self.dropout_rate, "Dropout rate",
                  "Share of activations dropped while training, at least 0 and below 1 (0 turns dropout off).")
        form.addRow("Rate", self.dropout_rate)
        self.placement = CheckGroup(PLACEMENTS)
        self.bind("dropout.placement", self.placement, "Dropout placement")
        form.addRow("Where", self.placement)
        self.block_size = QSpinBox()
        self.block_size.setRange(0, 64)
        self.block_size.setMaximumWidth(120)
        self.bind("dropout.block_size", self.block_size, "Block size", "Side of the dropped squares, in feature-map cells.")
        form.addRow("Block size", self.block_size)
        self.ramp_epochs = QSpinBox()
        self.ramp_epochs.setRange(0, 10000)
        self.ramp_epochs.setMaximumWidth(120)
        self.ramp_epochs.setSpecialValueText("off")
        self.ramp_epochs.setSuffix(" epochs")
        self.bind("dropout.ramp_epochs", self.ramp_epochs, "Ramp",
                  "DropBlock only: its rate grows linearly, batch by batch, from 0 to the rate above over "
                  "this many epochs, then stays (0: the full rate from the start).")
        form.addRow("Ramp", self.ramp_epochs)

        form = self.add_group("Classifier head")
        self.pooling = ChoiceCombo(POOLINGS)
        self.bind("head.pooling", self.pooling, "Pooling")
        form.addRow("Pooling", self.pooling)
        self.dense_units = IntListEdit()
        self.dense_units.setPlaceholderText("none (e.g. 256, 128)")
        self.bind("head.dense_units", self.dense_units, "Dense layers",
                  "Units of the dense layers between pooling and the classifier, separated by commas.")
        form.addRow("Dense layers", self.dense_units)
        self.activation = ChoiceCombo([(a, a) for a in ACTIVATIONS])
        self.bind("head.activation", self.activation, "Activation")
        form.addRow("Activation", self.activation)

        form = self.add_group("Freezing")
        self.freeze_policy = RadioGroup(FREEZE_POLICIES)
        self.bind("freeze.policy", self.freeze_policy, "Freeze policy")
        form.addRow(self.freeze_policy)
        self.freeze_layers = QSpinBox()
        self.freeze_layers.setRange(0, 100_000)
        self.freeze_layers.setMaximumWidth(120)
        self.bind("freeze.layers", self.freeze_layers, "Top layers (N)")
        form.addRow("Top layers (N)", self.freeze_layers)
        self.freeze_blocks = QSpinBox()
        self.freeze_blocks.setRange(0, 1000)
        self.freeze_blocks.setMaximumWidth(120)
        self.bind("freeze.blocks", self.freeze_blocks, "Top blocks (K)")
        form.addRow("Top blocks (K)", self.freeze_blocks)
        self.freeze_batchnorm = QCheckBox("Keep BatchNorm frozen (inference mode)")
        self.bind("freeze.freeze_batchnorm", self.freeze_batchnorm, "Freeze BatchNorm",
                  "Pretrained BatchNorm layers keep their statistics, also while fine-tuning.")
        form.addRow(self.freeze_batchnorm)
        self.readout = QLabel()
        self.readout.setObjectName("readout")
        self.readout.setWordWrap(True)
        form.addRow(self.readout)
        self.freeze_bar = FreezeBar()
        self.freeze_map_button = QPushButton("Freeze map…")
        self.freeze_map_button.setToolTip("Every layer of the backbone by block: see what trains, tick layers or "
                                          "whole blocks to choose")
        self.freeze_map_button.clicked.connect(self.open_freeze_map)
        bar_row = QHBoxLayout()
        bar_row.setContentsMargins(0, 0, 0, 0)
        bar_row.addWidget(self.freeze_bar, 1)
        bar_row.addWidget(self.freeze_map_button)
        form.addRow(bar_row)
        self.freeze_hint = QLabel()
        self.freeze_hint.setObjectName("note")
        self.freeze_hint.setWordWrap(True)
        form.addRow(self.freeze_hint)

        # The freeze map: built in the background, kept for the settings it was built for.
        self.freeze_map: FreezeMap | None = None
        self.map_dialog: FreezeMapDialog | None = None
        self._map_jobs: BackgroundJobs | None = None
        self._map_cancel = threading.Event()
        self._map_asked: tuple | None = None  # map_key of the job in flight
        self._map_timer = QTimer(self)
        self._map_timer.setSingleShot(True)
        self._map_timer.timeout.connect(self._start_map)
        self.finish_layout()
        self.update_state()

    def update_state(self) -> None:
        c = self.config
        self.block_size.setEnabled(c.dropout.kind == "dropblock")
        self.ramp_epochs.setEnabled(c.dropout.kind == "dropblock")
        self.kind_help.setText(DROPOUT_HELP.get(c.dropout.kind, ""))
        self.activation.setEnabled(bool(c.head.dense_units))
        self.freeze_layers.setEnabled(c.freeze.policy == "top_layers")
        self.freeze_blocks.setEnabled(c.freeze.policy == "top_blocks")
        spec = BACKBONES.get(c.backbone.name)
        if spec is not None:
            self.freeze_blocks.setSuffix(f"  of {len(spec.blocks)}")
        self.freeze_batchnorm.setEnabled(c.freeze.policy != "all")
        if (c.backbone.weights == "none" or c.backbone.transfer == "zero") and c.freeze.policy != "none":
            self.freeze_hint.setText(
                "The backbone starts from random weights: frozen layers stay random. "
                "'Train everything' usually works better without pretrained weights."
            )
            self.freeze_hint.setVisible(True)
        elif c.backbone.transfer == "partial":
            self.freeze_hint.setText(
                f"Partial transfer (Backbone panel) decides what trains: the first {c.backbone.keep_blocks} "
                "block(s) stay frozen and the rest trains, so the freeze policy is not used"
                + (" (except in phase 1 of two-phase fine-tuning, where the whole backbone is frozen)."
                   if c.training.two_phase else ".")
            )
            self.freeze_hint.setVisible(True)
        else:
            self.freeze_hint.setVisible(False)

        self._sync_map()

    def after_edit(self, path: str) -> None:
        # Choosing "custom" with no layers listed starts from what the previous policy trained.
        f = self.config.freeze
        if (path == "freeze.policy" and f.policy == "custom" and not f.trainable_layers
                and self.freeze_map is not None and self.freeze_map.key[:3] == structure_key(self.config)
                and self.freeze_map.trainable):
            set_field(self.config, "freeze.trainable_layers", self.freeze_map.trainable)

    def set_readout(self, text: str, state: str = "ok") -> None:
        """state: ok, busy (counting) or error; the style sheet colours it."""
        self.readout.setText(text)
        self.readout.setProperty("state", state)
        self.readout.style().unpolish(self.readout)
        self.readout.style().polish(self.readout)
        if self.map_dialog is not None:
            self.map_dialog.view.set_readout(text)

    # ---- the freeze map --------------------------------------------------------------------------
    def attach_jobs(self, pool: QThreadPool, cancel: threading.Event | None = None) -> None:
        """The thread pool that builds the freeze map (the main window's), and the event that ends waits on quit."""
        self._map_jobs = BackgroundJobs(pool, self)
        self._map_jobs.done.connect(self._on_map_done)
        self._map_jobs.failed.connect(self._on_map_failed)
        if cancel is not None:
            self._map_cancel = cancel

    @Slot()
    def open_freeze_map(self) -> FreezeMapDialog:
        """The freeze map's window (one, kept); it shows "Loading layers…" until the map is built."""
        if self.map_dialog is None:
            self.map_dialog = FreezeMapDialog(self)
            self.map_dialog.view.trainable_edited.connect(self.set_trainable_layers)
            self.map_dialog.view.set_readout(self.readout.text())
        dialog = self.map_dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        self._show_map()
        self._sync_map(delay_ms=0)
        return dialog

    def map_wanted(self) -> bool:
        """Whether the map is in view: this panel or its dialog shown."""
        return self.isVisible() or (self.map_dialog is not None and self.map_dialog.isVisible())

    def map_is_current(self) -> bool:
        return self.freeze_map is not None and self.freeze_map.key == map_key(self.config)

    def _sync_map(self, delay_ms: int = MAP_DELAY_MS) -> None:
        """Ask for a new map when the settings it shows have changed and it is in view."""
        if not hasattr(self, "_map_timer"):
            return  # update_state during construction
        current = self.map_is_current()
        self.freeze_bar.set_stale(self.freeze_map is not None and not current)
        if current:
            self._map_timer.stop()
            return
        if self.map_dialog is not None and self.map_dialog.isVisible():
            same_layers = self.freeze_map is not None and self.freeze_map.key[:3] == structure_key(self.config)
            self.map_dialog.view.set_loading(LOADING_TEXT if not same_layers else "Updating…", keep_rows=same_layers)
        if self.map_wanted() and self.isEnabled() and not self._map_problem():
            self._map_timer.start(delay_ms)

    def _map_problem(self) -> str:
        """Why no map can be built for these settings (an unknown backbone, a size out of range), or ""."""
        from workbench.core.config.validate import validate

        fields = ("backbone.name", "backbone.width", "data.image_size")
        problems = [p for p in validate(self.config, check_paths=False) if p.field in fields]
        problems += [p for p in self.input_problems() if p.field in fields]
        return problems[0].message if problems else ""

    @Slot()
    def _start_map(self) -> None:
        if not self.map_wanted() or not self.isEnabled() or self.map_is_current():
            return
        problem = self._map_problem()
        if problem:
            if self.map_dialog is not None:
                self.map_dialog.view.set_failed(problem)
            return
        key = map_key(self.config)
        if self._map_asked == key:
            return  # that very map is being built
        if self._map_jobs is None:  # a panel on its own (tests): the application's pool
            self.attach_jobs(QThreadPool.globalInstance())
        self._map_asked = key
        snapshot = RunConfig.from_dict(self.config.to_dict())
        self._map_jobs.submit(build_freeze_map, snapshot, self._map_cancel)

    @Slot(int, object)
    def _on_map_done(self, job_id: int, result: FreezeMap | None) -> None:
        if job_id != self._map_jobs.latest:
            return
        self._map_asked = None
        if result is None:  # Keras was busy: later
            if self.map_wanted():
                self._map_timer.start(MAP_RETRY_MS)
            return
        if result.key != map_key(self.config):  # the settings changed while it was built
            self._sync_map(delay_ms=0)
            return
        self.freeze_map = result
        self._show_map()

    @Slot(int, str)
    def _on_map_failed(self, job_id: int, message: str) -> None:
        if job_id != self._map_jobs.latest:
            return
        self._map_asked = None
        self.freeze_bar.setToolTip(f"Could not list the layers: {message}")
        if self.map_dialog is not None:
            self.map_dialog.view.set_failed(message)

    def _show_map(self) -> None:
        if not self.map_is_current():
            return
        self.freeze_bar.set_rows(self.freeze_map.rows, self.freeze_map.locked)
        if self.map_dialog is not None:
            self.map_dialog.view.set_map(self.freeze_map)

    @Slot(list)
    def set_trainable_layers(self, names: list[str]) -> None:
        """The layers ticked in the freeze map train, and only they: the "custom" policy with that list.

        Nothing ticked is the policy "all" (the head only), which is what an empty list would mean.
        """
        if not self.isEnabled() or self.freeze_map is None:
            return
        order = [r.name for r in self.freeze_map.rows]
        names = [n for n in order if n in set(names) and n not in self.freeze_map.locked]
        policy = "custom" if names else "all"
        final = self.config.replace(**{"freeze.policy": policy, "freeze.trainable_layers": names})
        self.freeze_map = self.freeze_map.with_trainable(set(names), map_key(final))
        self.set_value("freeze.trainable_layers", names)
        self.set_value("freeze.policy", policy)
        self._show_map()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._sync_map()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.EnabledChange:
            if self.map_dialog is not None:
                self.map_dialog.setEnabled(self.isEnabled())  # no edits while a run trains
            if self.isEnabled():
                self._sync_map()
