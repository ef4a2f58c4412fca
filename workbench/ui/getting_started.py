"""Help > Getting started: a short guided first run over the bundled demo, one step at a time.

A small non-modal dialog beside the window. Each step says in a few sentences what a part
of the window is for, selects its tab and draws a frame around it (`Highlight`), so a person
can press the real button themselves. Nothing here changes the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QRect, Qt, Slot
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    target: Callable[[object], QWidget]  # the window -> the widget to show and frame
    settings_tab: str = ""  # the settings panel to select ("" for none)
    view: str = ""  # the window attribute of the view tab to select ("" for none)


STEPS = (
    Step("1. The data",
         "Workbench learns from a folder of images with one sub-folder per class; the sub-folders' "
         "names are the classes. The demo folder is already chosen: a few hundred small pictures of "
         "clothes in four classes. Workbench opens every image and lists what it found (and what it "
         "cannot use) under the folder. To use your own images, choose another folder or drop it on "
         "the window.",
         lambda w: w.data_panel.folder, settings_tab="data_panel"),
    Step("2. The backbone",
         "A backbone is a network that has already learnt to see: its layers recognise edges, "
         "textures and shapes. Workbench keeps it and adds a small new layer for your classes, so "
         "a few hundred images are enough (transfer learning). MobileNetV2 is small and fast: a "
         "good first choice.",
         lambda w: w.backbone_panel.table, settings_tab="backbone_panel"),
    Step("3. Epochs",
         "One epoch shows every training image to the model once. The demo needs about five; "
         "more epochs take longer and help only while the validation curve still improves.",
         lambda w: w.training_panel.epochs, settings_tab="training_panel"),
    Step("4. Train",
         "Train starts the run in the background: the window stays usable. The bars show the epoch "
         "and the batch, and the time left. Stop ends the run within one batch and keeps what was "
         "trained so far. Press Train now if you like: the demo trains in seconds.",
         lambda w: w.train_button, view="plots"),
    Step("5. The curves",
         "Loss (lower is better) and accuracy (higher is better), for the training images and for "
         "the validation images the model never learns from. The validation curves are the honest "
         "ones: when they stop improving while the training curves go on, the model has started to "
         "memorise, and more epochs will not help.",
         lambda w: w.plots, view="plots"),
    Step("6. The results",
         "Every run is kept in its own folder and listed under Runs. Evaluate shows how often the "
         "model is right on the validation images, which classes it confuses and the images it got "
         "wrong; Predict tries it on new images (or drop an image on the window). When you want more "
         "control, switch to Expert above the settings.",
         lambda w: w.evaluate_panel, view="evaluate_panel"),
)


class Highlight(QWidget):
    """A frame drawn over the window around one widget; it lets every click through."""

    def __init__(self, window: QWidget):
        super().__init__(window)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.target: QWidget | None = None
        self.hide()

    def follow(self, target: QWidget | None) -> None:
        self.target = target
        self.place()

    def place(self) -> None:
        window = self.parentWidget()
        if self.target is None or window is None or not self.target.isVisible():
            self.hide()
            return
        top_left = self.target.mapTo(window, self.target.rect().topLeft())
        self.setGeometry(QRect(top_left, self.target.size()).adjusted(-4, -4, 4, 4))
        self.raise_()
        self.show()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor("#f59e0b"), 3))
        painter.drawRoundedRect(self.rect().adjusted(2, 2, -2, -2), 6, 6)


class GettingStarted(QObject):
    """Owns the guide's dialog; `start()` opens it at the first step (Help > Getting started)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.dialog: QDialog | None = None
        self.highlight = Highlight(window)
        self.step = 0
        window.installEventFilter(self)  # the frame follows the window's resizes

    @Slot()
    def start(self) -> QDialog:
        if self.dialog is None:
            self.dialog = self._build()
        self.go(0)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def _build(self) -> QDialog:
        dialog = QDialog(self.window, Qt.WindowType.Tool)
        dialog.setWindowTitle("Getting started")
        dialog.setObjectName("gettingStarted")
        self.title = QLabel()
        self.title.setObjectName("guideTitle")
        self.title.setStyleSheet("font-weight: bold; font-size: 12pt")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setMinimumHeight(120)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.back_button = QPushButton("Back")
        self.next_button = QPushButton("Next")
        self.next_button.setDefault(True)
        self.close_button = QPushButton("Close")
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.forward)
        self.close_button.clicked.connect(dialog.reject)
        dialog.finished.connect(self._on_closed)
        buttons = QHBoxLayout()
        buttons.addWidget(self.back_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.next_button)
        layout = QVBoxLayout(dialog)
        layout.addWidget(self.title)
        layout.addWidget(self.text, 1)
        layout.addLayout(buttons)
        dialog.resize(380, 250)
        return dialog

    def go(self, index: int) -> None:
        """Show step `index`: its words, its tab selected, its widget framed."""
        self.step = max(0, min(index, len(STEPS) - 1))
        step = STEPS[self.step]
        w = self.window
        self.title.setText(step.title)
        self.text.setText(step.text)
        self.back_button.setEnabled(self.step > 0)
        self.next_button.setText("Done" if self.step == len(STEPS) - 1 else "Next")
        if step.settings_tab:
            w.settings_dock.setVisible(True)
            w.tabs.setCurrentIndex(w.panels.index(getattr(w, step.settings_tab)))
        if step.view:
            w.views.setCurrentWidget(getattr(w, step.view))
        self.highlight.follow(step.target(w))

    @Slot()
    def forward(self) -> None:
        if self.step == len(STEPS) - 1:
            self.dialog.reject()
        else:
            self.go(self.step + 1)

    @Slot()
    def back(self) -> None:
        self.go(self.step - 1)

    @Slot(int)
    def _on_closed(self, _result: int) -> None:
        self.highlight.follow(None)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() in (QEvent.Type.Resize, QEvent.Type.LayoutRequest):
            if self.highlight.target is not None:
                self.highlight.place()
        return False
