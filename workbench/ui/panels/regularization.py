"""Regularization panel: dropout, the classifier head, and which backbone layers train."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QLabel, QSpinBox, QWidget

from workbench.core.backbones import BACKBONES
from workbench.core.config import ACTIVATIONS, RunConfig
from workbench.ui.fields import CheckGroup, ChoiceCombo, FloatEdit, IntListEdit, RadioGroup
from workbench.ui.panels.base import ConfigPanel

DROPOUT_KINDS = (
    ("dropout", "Standard (single units)"),
    ("spatial", "Spatial (whole channels)"),
    ("gaussian", "Gaussian (multiplicative noise)"),
    ("alpha", "Alpha (keeps SELU statistics)"),
    ("dropblock", "DropBlock (square regions)"),
)
# One sentence per kind: the combo's tooltips and the line under it (the Dropout lab uses them too).
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
    ("custom", "Train the layers listed in the config (freeze.trainable_layers)"),
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
        self.freeze_hint = QLabel()
        self.freeze_hint.setObjectName("note")
        self.freeze_hint.setWordWrap(True)
        form.addRow(self.freeze_hint)
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

    def set_readout(self, text: str, state: str = "ok") -> None:
        """state: ok, busy (counting) or error; the style sheet colours it."""
        self.readout.setText(text)
        self.readout.setProperty("state", state)
        self.readout.style().unpolish(self.readout)
        self.readout.style().polish(self.readout)
