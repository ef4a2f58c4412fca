"""Opening and saving configs and choosing the dataset folder, through file dialogs.

Apart from main_window.py so the window keeps to editing and running; `window` is the MainWindow
(its config, settings, log and error dialog).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QFileDialog

from workbench.core.base.problems import ConfigError
from workbench.core.config.run import load_config, save_config
from workbench.ui import settings as keys


def dropped_folder(event) -> str | None:
    """The first local folder in a drag-and-drop event, if any."""
    for url in event.mimeData().urls():
        if url.isLocalFile() and Path(url.toLocalFile()).is_dir():
            return url.toLocalFile()
    return None


def dropped_images(event) -> list[str]:
    """The local image files in a drag-and-drop event (by their endings), in order."""
    from workbench.core.base.images import is_image_name

    return [url.toLocalFile() for url in event.mimeData().urls()
            if url.isLocalFile() and Path(url.toLocalFile()).is_file() and is_image_name(url.toLocalFile())]


class ConfigFiles(QObject):
    """The File menu's config and folder actions; remembers the last config and folder used."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window

    @Slot()
    def open_config_dialog(self) -> None:
        w = self.window
        start = str(w.settings.value(keys.LAST_CONFIG, "") or Path.home())
        path, _ = QFileDialog.getOpenFileName(w, "Open a config", start, "Workbench config (*.json);;All files (*)")
        if path:
            self.open_config(path)

    def open_config(self, path: str | Path) -> bool:
        w = self.window
        try:
            config = load_config(path)
        except ConfigError as exc:
            w.show_error("Cannot open the config", f"{path} cannot be used:\n\n"
                         + "\n".join(f"• {p}" for p in exc.problems))
            return False
        w.set_config(config)
        w.settings.setValue(keys.LAST_CONFIG, str(path))
        w.log.add("info", f"Opened config {path}")
        w.statusBar().showMessage(f"Opened {path}", 5000)
        return True

    @Slot()
    def save_config_dialog(self) -> None:
        w = self.window
        last = str(w.settings.value(keys.LAST_CONFIG, "") or "")
        folder = Path(last).parent if last else Path.home()
        name = (w.config.name or "run").replace("/", "-") + ".json"
        path, _ = QFileDialog.getSaveFileName(w, "Save the config", str(folder / name), "Workbench config (*.json)")
        if path:
            if not path.lower().endswith(".json"):
                path += ".json"
            self.save_config(path)

    def save_config(self, path: str | Path) -> bool:
        w = self.window
        try:
            save_config(w.config, path)
        except OSError as exc:
            w.show_error("Cannot save the config", f"{path} could not be written: {exc}")
            return False
        w.settings.setValue(keys.LAST_CONFIG, str(path))
        w.log.add("info", f"Saved config {path} (train it headless: workbench train {path})")
        w.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    @Slot()
    def open_dataset_dialog(self) -> None:
        w = self.window
        start = str(w.settings.value(keys.LAST_FOLDER, "") or w.config.data.folder or Path.home())
        folder = QFileDialog.getExistingDirectory(w, "Choose a folder of images (one sub-folder per class)", start)
        if folder:
            w.set_dataset_folder(folder)
