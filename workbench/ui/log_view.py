"""The run log: Message events and one line per epoch, newest at the bottom."""

from __future__ import annotations

import html
import time

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QPlainTextEdit, QWidget

LEVEL_COLORS = {"info": "#334155", "warning": "#b45309", "error": "#b91c1c", "success": "#15803d"}


class LogView(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        font = QFont("DejaVu Sans Mono")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSize(9)
        self.setFont(font)

    def add(self, level: str, text: str) -> None:
        color = LEVEL_COLORS.get(level, LEVEL_COLORS["info"])
        stamp = time.strftime("%H:%M:%S")
        body = html.escape(text).replace("\n", "<br>&nbsp;&nbsp;")
        self.appendHtml(f"<span style='color:#94a3b8'>{stamp}</span> <span style='color:{color}'>{body}</span>")
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def text(self) -> str:
        return self.toPlainText()
