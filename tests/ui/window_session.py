"""A whole session in the real MainWindow, for test_no_tensorflow_in_window.py to run in a fresh process.

Trains a tiny run (a real child process), then, while a second run is in progress (paused after
its first batch, so the two cores go to the model jobs), evaluates the first, predicts an image with it and exports it (the model worker), and prints one JSON
line: what it saw, and whether tensorflow or keras were ever imported into this process.
Run as `python -c "import window_session; window_session.main(folder)"` (no __main__ file,
so the fork server's children never import this script).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ui_helpers import tiny_config, write_image_folder

STEP_TIMEOUT_S = 120


def wait_for(app, condition, what: str, timeout_s: float = STEP_TIMEOUT_S) -> None:
    """Run the event loop until `condition()` holds; fail with `what` when it does not in time."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.005)


def train(app, window, config) -> object:
    ended = []
    window.run_ended.connect(ended.append)
    window.start_run(config)
    wait_for(app, lambda: ended, "a run to end")
    window.run_ended.disconnect(ended.append)
    return ended[0]


def main(folder: str) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # as run_app: the run and the worker share a GPU
    from PySide6.QtWidgets import QApplication

    from workbench.core.base.events import RunFinished
    from workbench.ui.app import setup_application, start_fork_server
    from workbench.ui.garbage import GuiGarbageCollector
    from workbench.ui.main_window import MainWindow

    root = Path(folder)
    data = write_image_folder(root / "data", classes=("red", "green", "blue"), per_class=8)
    app = QApplication.instance() or QApplication([])
    setup_application(app)
    collector = GuiGarbageCollector(app)
    collector.start()
    config = tiny_config(data, epochs=1)
    config.data.validation_split = 0.25
    window = MainWindow(config, runs_dir=root / "runs")
    window.show()
    start_fork_server()  # as the app does once the window shows
    seen: dict[str, object] = {}
    started = time.monotonic()
    seconds: dict[str, float] = {}  # when each step ended, from the start (to see where the time goes)

    first = train(app, window, config)
    assert isinstance(first, RunFinished), first
    run_dir = first.run_dir
    seconds["trained"] = time.monotonic() - started

    ended = []
    window.run_ended.connect(ended.append)
    window.start_run(config.replace(**{"training.epochs": 500, "name": "long"}))  # in progress while we look
    window.toggle_pause()  # paused after its first batch: in progress, but leaving the CPU to the model jobs

    evaluate = window.evaluate_panel
    assert evaluate.evaluate(run_dir), "Evaluate refused to start while a run trains"
    wait_for(app, lambda: evaluate.result is not None and not evaluate.result.saved, "the evaluation")
    seen["evaluated_images"] = evaluate.evaluation.count
    seen["trained_meanwhile"] = window.runner.running
    seconds["evaluated"] = time.monotonic() - started

    predict = window.predict_panel
    predict.set_run(run_dir)
    image = str(data / "red" / "000.png")
    assert predict.add_paths([image]), "Predict refused to start while a run trains"
    wait_for(app, lambda: predict.result is not None and not predict.busy, "the prediction")
    seen["predicted"] = predict.predictions[0].label if predict.predictions[0].ok else predict.predictions[0].error
    seconds["predicted"] = time.monotonic() - started

    dialog = window.open_export_dialog(run_dir)
    dialog.set_format("keras")
    assert dialog.start()
    wait_for(app, lambda: not dialog.busy, "the export")
    seen["exported"] = bool(dialog.result is not None and dialog.result.ok and Path(dialog.result.path).is_file())
    seen["still_training"] = window.runner.running
    seconds["exported"] = time.monotonic() - started

    window.stop_training()
    wait_for(app, lambda: ended, "the second run to stop")
    seen["devices"] = window.device_label.text()
    window.shutdown()
    window.close()
    collector.stop()
    seconds["closed"] = time.monotonic() - started
    seen["seconds"] = {step: round(s, 1) for step, s in seconds.items()}
    seen["imported"] = [m for m in ("tensorflow", "keras") if m in sys.modules]
    print(json.dumps(seen), flush=True)
