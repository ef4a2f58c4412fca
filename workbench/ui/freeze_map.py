"""The freeze map: the backbone's layers, which of them train, by block, and a bar that shows it at a glance.

`FreezeBar` paints one segment per layer, as wide as its parameters (or all alike),
green where the layer trains and grey where it is frozen. `FreezeMapView` lists the
layers in a tree, one branch per block: ticking a layer or a whole block is an edit,
reported as the list of layers that should train (`trainable_edited`); the
Regularization panel turns it into the "custom" freeze policy. The layers come from
a background job (transfer_jobs.build_freeze_map): nothing here touches Keras.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolTip,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.base.freeze import format_count
from workbench.ui.fields import ChoiceCombo
from workbench.ui.tasks.transfer_jobs import FreezeMap

TRAINABLE_COLOR = "#16a34a"
FROZEN_COLOR = "#94a3b8"
LOCKED_COLOR = "#cbd5e1"
EMPTY_COLOR = "#e5e7eb"
COLUMNS = ("Layer", "Type", "Output shape", "Parameters", "Block")
NAME_ROLE = Qt.ItemDataRole.UserRole
LOCKED_TIP = ("BatchNorm keeps its pretrained statistics ('Keep BatchNorm frozen'): it stays frozen "
              "whatever is ticked. Untick that option to let it train.")
LOADING_TEXT = "Loading layers…"


def trainable_params(row) -> int:
    """The weights of a trainable row that train (a BatchNorm's moving statistics never do)."""
    return (row.trainable_params or row.params) if row.trainable else 0


def legend_html(rows: Sequence, locked: frozenset[str] | set[str] = frozenset()) -> str:
    """"■ trainable: 12 layers, 98.3 k parameters (24 %)  ■ frozen: ..." as rich text."""
    total = sum(r.params for r in rows) or 1
    groups = [
        ("trainable", TRAINABLE_COLOR, [r for r in rows if r.trainable]),
        ("frozen", FROZEN_COLOR, [r for r in rows if not r.trainable and r.name not in locked]),
        ("BatchNorm kept frozen", LOCKED_COLOR, [r for r in rows if not r.trainable and r.name in locked]),
    ]
    parts = []
    for label, colour, members in groups:
        if not members and label.startswith("BatchNorm"):
            continue
        params = sum(trainable_params(r) if r.trainable else r.params for r in members)
        parts.append(f"<span style='color:{colour}'>■</span> {html.escape(label)}: {len(members)} "
                     f"layer{'s' if len(members) != 1 else ''}, {format_count(params)} parameters "
                     f"({100 * params / total:.0f} %)")
    return " &nbsp;&nbsp; ".join(parts)


class FreezeBar(QWidget):
    """A compact bar: each backbone layer one segment, trainable green, frozen grey; hover names the layer."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: list = []
        self.locked: frozenset[str] = frozenset()
        self.measure = "params"  # "params": widths follow parameter counts; "layers": all alike
        self.stale = False
        self.setMouseTracking(True)
        self.setMinimumHeight(16)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Which backbone layers train: open the freeze map to see them")

    def sizeHint(self) -> QSize:
        return QSize(320, 18)

    def set_rows(self, rows: Sequence, locked: frozenset[str] = frozenset()) -> None:
        self.rows, self.locked, self.stale = list(rows), frozenset(locked), False
        if self.rows:
            self.setToolTip(legend_html(self.rows, self.locked).replace(" &nbsp;&nbsp; ", "<br>"))
        self.update()

    def set_measure(self, measure: str) -> None:
        self.measure = measure
        self.update()

    def set_stale(self, stale: bool) -> None:
        """A map that no longer matches the settings is drawn faded until the new one arrives."""
        if stale != self.stale:
            self.stale = stale
            self.update()

    def _weights(self) -> list[float]:
        if self.measure == "layers":
            return [1.0] * len(self.rows)
        return [float(max(r.params, 0)) for r in self.rows]

    def segments(self) -> list[tuple[float, float, object]]:
        """(start, end, row) with start and end as fractions of the bar's width."""
        weights = self._weights()
        total = sum(weights)
        if not total:
            return []
        result, at = [], 0.0
        for row, weight in zip(self.rows, weights, strict=True):
            result.append((at / total, (at + weight) / total, row))
            at += weight
        return result

    def trainable_share(self) -> float:
        """The share of the bar drawn as trainable (0..1)."""
        return sum(end - start for start, end, row in self.segments() if row.trainable)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.fillRect(rect, QColor(EMPTY_COLOR))
        width = rect.width()
        colours = {True: QColor(TRAINABLE_COLOR), False: QColor(FROZEN_COLOR), None: QColor(LOCKED_COLOR)}
        previous_block = None
        boundary = QPen(self.palette().window().color())
        boundary.setWidthF(1.0)
        for start, end, row in self.segments():
            key = True if row.trainable else (None if row.name in self.locked else False)
            x0, x1 = rect.left() + start * width, rect.left() + end * width
            painter.fillRect(QRectF(x0, rect.top(), max(x1 - x0, 0.6), rect.height()), colours[key])
            if previous_block is not None and row.block != previous_block:
                painter.setPen(boundary)
                painter.drawLine(QPointF(x0, rect.top()), QPointF(x0, rect.bottom()))
            previous_block = row.block
        if self.stale:
            painter.fillRect(rect, QColor(255, 255, 255, 150))
        painter.setPen(QPen(QColor("#64748b")))
        painter.drawRect(rect)
        painter.end()

    def row_at(self, x: float) -> object | None:
        if self.width() <= 0:
            return None
        fraction = x / self.width()
        for start, end, row in self.segments():
            if start <= fraction < end:
                return row
        return None

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        row = self.row_at(event.position().x())
        if row is not None:
            state = "trainable" if row.trainable else ("frozen (BatchNorm)" if row.name in self.locked else "frozen")
            QToolTip.showText(event.globalPosition().toPoint(),
                              f"{row.name} ({row.type}), {row.block}: {format_count(row.params)} parameters, {state}",
                              self)
        super().mouseMoveEvent(event)


class FreezeMapView(QWidget):
    """The layers of the backbone in a tree by block, with a trainable check box each, and the bar."""

    trainable_edited = Signal(list)  # the names of the layers to train, in backbone order

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.map: FreezeMap | None = None
        self._filling = False
        self.status = QLabel(LOADING_TEXT)
        self.status.setObjectName("readout")
        self.status.setWordWrap(True)
        self.bar = FreezeBar()
        self.legend = QLabel()
        self.legend.setObjectName("hint")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.measure = ChoiceCombo([("params", "parameters"), ("layers", "layer count")])
        self.measure.setToolTip("What the widths of the bar's segments follow")
        self.measure.valueChanged.connect(self._on_measure)
        self.readout = QLabel()
        self.readout.setObjectName("hint")
        self.readout.setWordWrap(True)
        self.note = QLabel()
        self.note.setObjectName("note")
        self.note.setWordWrap(True)
        self.note.setVisible(False)

        self.tree = QTreeWidget()
        self.tree.setObjectName("freezeMapTree")
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.tree.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        self.tree.itemChanged.connect(self._on_item_changed)

        self.train_all_button = QPushButton("Train all")
        self.train_all_button.setToolTip("Tick every layer: fine-tune the whole backbone")
        self.train_all_button.clicked.connect(self.train_all)
        self.freeze_all_button = QPushButton("Freeze all")
        self.freeze_all_button.setToolTip("Untick every layer: train the head only")
        self.freeze_all_button.clicked.connect(self.freeze_all)
        self.expand_button = QPushButton("Expand all")
        self.expand_button.clicked.connect(self.tree.expandAll)
        self.collapse_button = QPushButton("Collapse all")
        self.collapse_button.clicked.connect(self.tree.collapseAll)

        # Qt updates a block's layers one by one: collect them into one edit.
        self._edit_timer = QTimer(self)
        self._edit_timer.setSingleShot(True)
        self._edit_timer.setInterval(0)
        self._edit_timer.timeout.connect(self._emit_edit)

        measure_row = QHBoxLayout()
        measure_row.addWidget(self.bar, 1)
        measure_row.addWidget(QLabel("widths:"))
        measure_row.addWidget(self.measure)
        buttons = QHBoxLayout()
        for button in (self.train_all_button, self.freeze_all_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        for button in (self.expand_button, self.collapse_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status)
        layout.addLayout(measure_row)
        layout.addWidget(self.legend)
        layout.addWidget(self.readout)
        layout.addWidget(self.note)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self._set_buttons(False)

    # ---- showing a map ---------------------------------------------------------------------
    def set_loading(self, text: str = LOADING_TEXT, keep_rows: bool = False) -> None:
        """While the job builds the map: the text, and either no rows or the old ones faded."""
        self.status.setText(text)
        self.status.setProperty("state", "busy")
        self._repolish(self.status)
        if keep_rows and self.map is not None:
            self.bar.set_stale(True)
            return
        self.map = None
        self._filling = True
        try:
            self.tree.clear()
        finally:
            self._filling = False
        self.bar.set_rows([])
        self.legend.clear()
        self.note.setVisible(False)
        self._set_buttons(False)

    def set_failed(self, message: str) -> None:
        self.set_loading(f"Could not list the layers: {message}")
        self.status.setProperty("state", "error")
        self._repolish(self.status)

    def set_readout(self, text: str) -> None:
        self.readout.setText(f"Whole model (with the head): {text}" if text else "")

    def set_map(self, freeze_map: FreezeMap) -> None:
        """Show a map; the tree is rebuilt only when the layers differ, so open blocks stay open."""
        same_layers = (self.map is not None and [r.name for r in self.map.rows] == [r.name for r in freeze_map.rows]
                       and self.map.locked == freeze_map.locked and self.map.editable == freeze_map.editable
                       and self.tree.topLevelItemCount())
        self.map = freeze_map
        self._edit_timer.stop()
        self._filling = True
        try:
            if not same_layers:
                self._fill(freeze_map)
            trainable = {r.name for r in freeze_map.rows if r.trainable}
            for item in self._layer_items():
                if self._tickable(item):
                    item.setCheckState(0, Qt.CheckState.Checked if item.data(0, NAME_ROLE) in trainable
                                       else Qt.CheckState.Unchecked)
            self._update_blocks()
        finally:
            self._filling = False
        self.bar.set_rows(freeze_map.rows, freeze_map.locked)
        self.legend.setText(legend_html(freeze_map.rows, freeze_map.locked))
        count = len(trainable)
        params = sum(trainable_params(r) for r in freeze_map.rows if r.trainable)
        total = sum(r.params for r in freeze_map.rows)
        self.status.setText(f"{freeze_map.backbone}: {count} of {len(freeze_map.rows)} backbone layers trainable, "
                            f"{format_count(params)} of {format_count(total)} backbone parameters (the whole "
                            f"model's count below adds the head)")
        self.status.setProperty("state", "ok")
        self._repolish(self.status)
        notes = []
        if not freeze_map.editable:
            notes.append("Partial transfer (Backbone panel) decides what trains: the kept blocks stay frozen "
                         "and the rest trains. Choose 'All layers' there to pick layers here.")
        if freeze_map.unknown:
            names = ", ".join(freeze_map.unknown[:4]) + (", …" if len(freeze_map.unknown) > 4 else "")
            notes.append(f"The config lists {len(freeze_map.unknown)} layer(s) this backbone lacks ({names}): "
                         f"tick the layers to train again.")
        self.note.setText("\n".join(notes))
        self.note.setVisible(bool(notes))
        self._set_buttons(freeze_map.editable)

    def _fill(self, freeze_map: FreezeMap) -> None:
        self.tree.clear()
        editable = freeze_map.editable
        blocks: dict[str, QTreeWidgetItem] = {}
        for label in freeze_map.blocks:
            members = [r for r in freeze_map.rows if r.block == label]
            if not members:
                continue
            item = QTreeWidgetItem([label, "", "", format_count(sum(r.params for r in members)), label])
            item.setData(0, NAME_ROLE, label)
            item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            # Not Qt's auto-tristate: it hides the block's box when a layer has none (a locked BatchNorm).
            flags = Qt.ItemFlag.ItemIsEnabled
            if editable and any(r.name not in freeze_map.locked for r in members):
                flags |= Qt.ItemFlag.ItemIsUserCheckable
                item.setCheckState(0, Qt.CheckState.Unchecked)
            item.setFlags(flags)
            item.setToolTip(0, f"Tick to train every layer of {label}, untick to freeze them")
            font = item.font(0)
            font.setBold(True)
            item.setFont(0, font)
            blocks[label] = item
            self.tree.addTopLevelItem(item)
        for row in freeze_map.rows:
            parent = blocks.get(row.block)
            shape = "×".join("?" if d is None else str(d) for d in row.output_shape)
            item = QTreeWidgetItem([row.name, row.type, shape, format_count(row.params), row.block])
            item.setData(0, NAME_ROLE, row.name)
            item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setToolTip(3, f"{row.params:,} parameters")
            if row.name in freeze_map.locked:
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                for column in range(len(COLUMNS)):
                    item.setForeground(column, QColor("#94a3b8"))
                    item.setToolTip(column, LOCKED_TIP)
            else:
                flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                if editable:
                    flags |= Qt.ItemFlag.ItemIsUserCheckable
                item.setFlags(flags)
                item.setCheckState(0, Qt.CheckState.Unchecked)
            if parent is not None:
                parent.addChild(item)
            else:
                self.tree.addTopLevelItem(item)
        # Open the blocks that train, so what trains is in view.
        trainable_blocks = {r.block for r in freeze_map.rows if r.trainable}
        for label, item in blocks.items():
            item.setExpanded(label in trainable_blocks and len(trainable_blocks) <= 3)

    def _layer_items(self) -> list[QTreeWidgetItem]:
        items = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top.childCount():
                items.extend(top.child(j) for j in range(top.childCount()))
            elif top.data(0, NAME_ROLE) and self.map is not None and top.data(0, NAME_ROLE) not in self.map.blocks:
                items.append(top)
        return items

    def block_item(self, label: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top.data(0, NAME_ROLE) == label and top.childCount():
                return top
        return None

    def layer_item(self, name: str) -> QTreeWidgetItem | None:
        return next((item for item in self._layer_items() if item.data(0, NAME_ROLE) == name), None)

    @staticmethod
    def _tickable(item: QTreeWidgetItem) -> bool:
        return item.data(0, Qt.ItemDataRole.CheckStateRole) is not None

    def _update_blocks(self) -> None:
        """Each block's box (ticked, unticked or partly) and count from its layers; call with _filling set."""
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            children = [top.child(j) for j in range(top.childCount())]
            if not children:
                continue
            tickable = [c for c in children if self._tickable(c)]
            on = sum(1 for c in tickable if c.checkState(0) == Qt.CheckState.Checked)
            top.setText(1, f"{on} of {len(children)} trainable")
            if self._tickable(top):
                state = (Qt.CheckState.Checked if on == len(tickable) else
                         Qt.CheckState.Unchecked if on == 0 else Qt.CheckState.PartiallyChecked)
                top.setCheckState(0, state)

    # ---- editing ------------------------------------------------------------------------------
    def checked_names(self) -> list[str]:
        """The ticked layers, in backbone order."""
        ticked = {item.data(0, NAME_ROLE) for item in self._layer_items()
                  if self._tickable(item) and item.checkState(0) == Qt.CheckState.Checked}
        return [r.name for r in self.map.rows if r.name in ticked] if self.map is not None else []

    def set_block_checked(self, label: str, checked: bool) -> None:
        """Tick or untick a whole block, as a click on its check box does."""
        item = self.block_item(label)
        if item is not None and item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
            item.setCheckState(0, Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    @Slot()
    def train_all(self) -> None:
        self._check_all(True)

    @Slot()
    def freeze_all(self) -> None:
        self._check_all(False)

    def _check_all(self, checked: bool) -> None:
        if self.map is None or not self.map.editable:
            return
        state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
        self._filling = True
        try:
            for item in self._layer_items():
                if self._tickable(item):
                    item.setCheckState(0, state)
            self._update_blocks()
        finally:
            self._filling = False
        self._edit_timer.start()

    @Slot(QTreeWidgetItem, int)
    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 0 or self.map is None or not self.map.editable:
            return
        self._filling = True
        try:
            state = item.checkState(0)
            if item.childCount() and state != Qt.CheckState.PartiallyChecked:  # a block: all its layers
                for j in range(item.childCount()):
                    child = item.child(j)
                    if self._tickable(child):
                        child.setCheckState(0, state)
            self._update_blocks()
        finally:
            self._filling = False
        self._edit_timer.start()  # one edit for however many boxes changed

    @Slot()
    def _emit_edit(self) -> None:
        if self.map is None:
            return
        self.trainable_edited.emit(self.checked_names())

    # ---- small things ---------------------------------------------------------------------------
    @Slot()
    def _on_measure(self) -> None:
        self.bar.set_measure(str(self.measure.value()))

    def _set_buttons(self, enabled: bool) -> None:
        for button in (self.train_all_button, self.freeze_all_button):
            button.setEnabled(enabled)

    @staticmethod
    def _repolish(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)


class FreezeMapDialog(QDialog):
    """The freeze map in a window of its own, beside the settings (not modal)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Freeze map")
        self.setObjectName("freezeMapDialog")
        self.setModal(False)
        self.view = FreezeMapView()
        intro = QLabel("Tick the backbone layers that train; a block's box ticks all its layers. Any change makes "
                       "the freeze policy 'custom', and the run trains exactly the ticked layers (and the head).")
        intro.setWordWrap(True)
        intro.setObjectName("hint")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.view, 1)
        layout.addWidget(buttons)
        self.resize(820, 620)
