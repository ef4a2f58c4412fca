"""Reliability: bad input, faults during a run, stop/kill and resume, safe loading, atomic files.

Runs are tiny (MobileNetV2 x0.35 at 32 px, random weights, backbone frozen, a few batches per
epoch) because what matters here is what happens around training, not what it learns.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from workbench import cli
from workbench.core.base.events import (
    BatchEnd,
    EpochEnd,
    Message,
    RunFailed,
    RunFinished,
    RunStarted,
)
from workbench.core.base.problems import ConfigError
from workbench.core.config.run import RunConfig, load_config, save_config
from workbench.core.data import decode, scan
from workbench.core.engine import callbacks, checkpoint
from workbench.core.runs.store import RunFolder, RunStore, load_run, read_metrics
from workbench.core.train import run as training

REPO = Path(__file__).resolve().parents[2]


def tiny_config(folder, **changes) -> RunConfig:
    config = RunConfig(name="reliability")
    config.data.folder = str(folder)
    config.data.image_size = 32
    config.data.validation_split = 0.25
    config.backbone.width = 0.35
    config.backbone.weights = "none"
    config.freeze.policy = "all"
    config.training.epochs = 1
    config.training.batch_size = 8
    return config.replace(**changes)


class Recorder:
    def __init__(self, then=None):
        self.events = []
        self.then = then

    def __call__(self, event):
        self.events.append(event)
        if self.then is not None:
            self.then(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]

    def texts(self):
        return "\n".join(e.text for e in self.of(Message))


def inject_fault(monkeypatch, exc: BaseException, epoch: int, batch: int, hook: str = "on_train_batch_end"):
    """Make the real training callback raise `exc` at (epoch, batch), inside the real `fit`."""
    class Faulty(training.ProgressCallback):
        def on_train_batch_begin(self, b, logs=None):
            if hook == "on_train_batch_begin" and (self._epoch, b) == (epoch, batch):
                raise exc

        def on_train_batch_end(self, b, logs=None):
            super().on_train_batch_end(b, logs)
            if hook == "on_train_batch_end" and (self._epoch, b) == (epoch, batch):
                raise exc

    monkeypatch.setattr(training, "ProgressCallback", Faulty)


def epochs_in(run_dir) -> list[int]:
    return [row["epoch"] for row in read_metrics(run_dir)]


# ---- messy data: scan, CLI --------------------------------------------------------------

LEFT_OUT = {
    "cat/empty.jpg": "empty (0 bytes)",
    "cat/cut.jpg": "truncated",
    "cat/notes.jpg": "not an image",
    "cat/scan.tiff": "TIFF images are not supported",
    "nothing/broken.png": "not an image",
}


def test_the_scan_names_each_problem_of_the_messier_tree_in_plain_words(messier_tree):
    report = scan.scan_folder(messier_tree)
    assert report.class_names == ("cat", "dog", "чай ☕")
    assert report.counts == {"cat": 6, "dog": 9, "чай ☕": 4}
    assert report.blocking == ()
    messages = [p.message for p in report.problems]
    for name, words in LEFT_OUT.items():
        assert any(m.startswith(f"{name}: ") and words in m for m in messages), (name, messages)
    assert "class 'empty' has no usable images and was left out" in messages
    assert not any("Traceback" in m or ".thumb" in m or ".hidden" in m for m in messages)
    assert training._left_out_files(report) == len(LEFT_OUT)

    # Every odd kind decodes the same way in the scan, in training and in prediction.
    usable = {Path(p).relative_to(messier_tree).as_posix() for p, _ in report.items}
    for name in ("cmyk.jpg", "deep-16bit.png", "palette.gif", "alpha.png", "grey.png", "grey.jpg", "huge.png"):
        assert f"dog/{name}" in usable
        pixels = decode.load_image(messier_tree / "dog" / name, 32)
        assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    grey8 = decode.load_image(messier_tree / "dog" / "grey.png", 32).astype(int)
    grey16 = decode.load_image(messier_tree / "dog" / "deep-16bit.png", 32).astype(int)
    assert np.abs(grey8 - grey16).max() <= 1  # 16-bit values scaled, not clipped to white
    assert tuple(decode.load_image(messier_tree / "dog" / "huge.png", 32)[5, 5]) == (90, 140, 200)


def test_an_8000_px_image_scans_fast_with_bounded_memory(huge_png, tmp_path):
    """In a fresh process (no TensorFlow): time and peak memory of scanning a folder with the huge PNG."""
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "huge.png").write_bytes(huge_png.read_bytes())
    code = (
        "import resource, sys, time\n"
        "from workbench.core.data.scan import scan_folder\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t = time.perf_counter(); r = scan_folder(sys.argv[1]); s = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(len(r.items), round(s, 3), (peak - base) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "data")], capture_output=True, text=True,
                         timeout=120, cwd=REPO, check=True).stdout.split()
    images, seconds, extra_mb = int(out[0]), float(out[1]), int(out[2])
    assert images == 2
    assert seconds < 10, f"scanning two 8000 px images took {seconds} s"
    # One decoded 8000 x 8000 RGB image is 183 MiB; two decoded at once (two scan threads) stay below 600.
    assert extra_mb < 600, f"the scan grew by {extra_mb} MiB"


def test_cli_scan_lists_each_problem_of_the_messier_tree(messier_tree, capsys):
    assert cli.main(["scan", str(messier_tree)]) == 0
    out = capsys.readouterr().out
    assert "19 usable images in 3 classes" in out and "Left out (9)" in out
    for name in LEFT_OUT:
        assert name in out
    assert "Traceback" not in out


def _setup(kind: str, make_image_tree, tmp_path) -> tuple[Path, str]:
    """A folder that cannot train, and the words that say why."""
    if kind == "one class":
        return make_image_tree("one", classes=("red",), per_class=4), "at least two classes"
    if kind == "empty class folders":
        root = tmp_path / "empty-classes"
        for name in ("cats", "dogs"):
            (root / name).mkdir(parents=True)
        (root / "dogs" / "notes.txt").write_text("no pictures yet")
        return root, "found 0"
    if kind == "no sub-folders":
        root = make_image_tree("flat", classes=("x",), per_class=3) / "x"
        return root, "has no sub-folders"
    path = tmp_path / "photos.zip"  # "unreadable": a file where a folder should be
    path.write_bytes(b"PK\x03\x04")
    return path, "not found"


@pytest.mark.parametrize("kind", ["one class", "empty class folders", "no sub-folders", "a file, not a folder"])
def test_setups_that_cannot_train_are_refused_before_training(kind, make_image_tree, tmp_path, capsys):
    folder, words = _setup(kind, make_image_tree, tmp_path)
    assert cli.main(["scan", str(folder)]) == 2
    out, err = capsys.readouterr()
    assert words in out + err and "Traceback" not in out + err

    config_path = tmp_path / "cfg.json"
    save_config(tiny_config(folder), config_path)
    assert cli.main(["train", str(config_path), "--runs-dir", str(tmp_path / "runs")]) == 2
    out, err = capsys.readouterr()
    assert words in err and "Traceback" not in out + err
    assert "Epoch" not in out and not list((tmp_path / "runs").glob("*/model.keras"))


# ---- faults during a run ----------------------------------------------------------------------

def test_a_dataset_moved_away_mid_run_fails_clearly_and_keeps_the_run_folder(make_image_tree, tmp_path):
    data = make_image_tree(per_class=12)
    away = tmp_path / "moved-away"

    def move_after_first_epoch(event):
        if isinstance(event, EpochEnd) and event.epoch == 0:
            data.rename(away)  # a real fault: every file of the next epoch is gone

    config = tiny_config(data, **{"training.epochs": 3})
    first = Recorder(move_after_first_epoch)
    result = training.run(config, first, runs_dir=tmp_path / "runs")
    assert isinstance(result, RunFailed) and result.kind == "error", result
    assert "could be read in epoch 2" in result.error and "moved, deleted or unmounted" in result.error
    assert "resume" in result.details and "Traceback" not in result.error
    run_dir = Path(result.run_dir)
    assert load_config(run_dir / "config.json") == config
    assert epochs_in(run_dir) == [1]
    model, state = checkpoint.load(run_dir / "checkpoint.keras")
    assert state["epochs_done"] == 1 and model.optimizer.iterations.numpy() > 0
    assert json.loads((run_dir / "state.json").read_text())["epochs_done"] == 1
    assert load_run(run_dir).summary["status"] == "failed"
    assert [e.epoch for e in first.of(EpochEnd)] == [0]  # the empty epoch was not reported as one


def test_out_of_memory_suggests_a_smaller_batch_or_image_size(image_tree, tmp_path, monkeypatch):
    import tensorflow as tf

    exc = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[8,16,16,96]")
    inject_fault(monkeypatch, exc, epoch=0, batch=0, hook="on_train_batch_begin")
    result = training.run(tiny_config(image_tree), Recorder(), runs_dir=tmp_path / "runs")
    assert isinstance(result, RunFailed) and result.kind == "out_of_memory"
    assert "smaller batch size or image size" in result.error
    assert "ResourceExhaustedError" in result.details  # the traceback is kept for the details
    assert (Path(result.run_dir) / "config.json").is_file()
    # Python's own MemoryError (host memory) reads the same.
    title, details, kind = training._describe(MemoryError())
    assert kind == "out_of_memory" and "smaller batch size or image size" in title


def test_stop_at_a_random_batch_leaves_a_loadable_checkpoint_and_resume_finishes_every_epoch(
    image_tree, tmp_path
):
    epochs, steps = 3, 4  # 27 training images in batches of 8
    # A seeded draw (7: epoch 2, batch 2), so that a failure repeats; WORKBENCH_TEST_SEED picks another.
    seed = int(os.environ.get("WORKBENCH_TEST_SEED", "7"))
    rng = random.Random(seed)
    stop_at = (rng.randrange(epochs), rng.randrange(steps))
    print(f"stop point {stop_at} (WORKBENCH_TEST_SEED={seed})")
    stop = threading.Event()

    def stop_there(event):
        if isinstance(event, BatchEnd) and (event.epoch, event.batch) == stop_at:
            stop.set()

    config = tiny_config(image_tree, **{"training.epochs": epochs, "training.early_stopping": True,
                                        "training.patience": 5})
    first = Recorder(stop_there)
    result = training.run(config, first, stop, runs_dir=tmp_path / "runs")
    assert isinstance(result, RunFinished) and result.stopped, (stop_at, result)
    assert first.of(RunStarted)[0].steps_per_epoch == steps
    run_dir = Path(result.run_dir)
    done = stop_at[0]  # the stopped epoch does not count
    assert result.epochs_done == done and epochs_in(run_dir) == list(range(1, done + 1)), stop_at
    model, state = checkpoint.load(run_dir / "checkpoint.keras")  # stopping leaves a loadable checkpoint
    assert state["epochs_done"] == done and state["partial_epoch"] is True
    assert state["early_stopping"] is not None
    assert model.optimizer.iterations.numpy() >= done * steps + stop_at[1] + 1
    before = read_metrics(run_dir)

    second = Recorder()
    resumed = training.resume(run_dir, second)
    assert isinstance(resumed, RunFinished) and resumed.epochs_done == epochs, (stop_at, resumed)
    assert second.of(RunStarted)[0].initial_epoch == done
    assert [e.epoch for e in second.of(EpochEnd)] == list(range(done, epochs))
    after = read_metrics(run_dir)
    assert [r["epoch"] for r in after] == list(range(1, epochs + 1)), stop_at  # each epoch once
    assert after[:done] == before  # nothing lost or rewritten
    assert checkpoint.read_state(run_dir / "checkpoint.keras")["epochs_done"] == epochs
    assert load_run(run_dir).summary["status"] == "finished"

    again = training.resume(run_dir, Recorder())  # a finished run is not resumed
    assert isinstance(again, RunFailed) and again.kind == "invalid" and "Nothing to resume" in again.error


def test_a_headless_run_on_messy_data_killed_mid_epoch_resumes_from_its_folder_with_no_metric_lost(
    messier_tree, tmp_path, capsys
):
    """`python -m workbench train` on the messier tree (one file deleted after its scan), SIGKILLed
    after its first checkpoint, then `workbench train --resume RUN`: same folder, every epoch once."""
    epochs = 3
    victim = messier_tree / "dog" / "plain-1.jpg"
    config_path = tmp_path / "cfg.json"
    save_config(tiny_config(messier_tree, **{"training.epochs": epochs}), config_path)
    runs = tmp_path / "runs"
    log_path = tmp_path / "child.log"
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "workbench", "train", str(config_path), "--runs-dir", str(runs)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            run_dir = None
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and child.poll() is None:
                events = list(runs.glob("*/events.jsonl"))
                if victim.exists() and events and "Building" in events[0].read_text():
                    victim.unlink()  # scanned, not yet read by training
                states = list(runs.glob("*/state.json"))
                if states and read_metrics(states[0].parent):
                    run_dir = states[0].parent
                    break
                time.sleep(0.01)
            assert run_dir is not None, log_path.read_text()
            time.sleep(0.05)  # into the next epoch
            os.kill(child.pid, signal.SIGKILL)
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode == -signal.SIGKILL
    printed = log_path.read_text()
    assert "Skipping 5 unusable file(s) found by the scan" in printed and "cut.jpg" in printed
    assert "Skipped 1 unreadable file(s)" in printed and "plain-1.jpg" in printed
    assert "Traceback" not in printed
    done = checkpoint.read_state(run_dir / "checkpoint.keras")["epochs_done"]
    assert 1 <= done < epochs, "the run ended before it could be killed"
    assert not (run_dir / "summary.json").exists()  # it really died
    before = read_metrics(run_dir)

    assert cli.main(["train", "--resume", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"Resuming after epoch {done} of {epochs}" in out and f"Epoch {epochs}/{epochs}" in out
    after = read_metrics(run_dir)
    assert [r["epoch"] for r in after] == list(range(1, epochs + 1))
    assert after[:done] == before[:done]
    summary = load_run(run_dir).summary
    assert summary["status"] == "finished" and summary["epochs_done"] == epochs
    assert summary["resumed_after_epoch"] == done and summary["skipped_files"] == 5
    assert len(list(runs.iterdir())) == 1  # the same folder, no new run


def test_checkpoints_keep_within_their_time_budget_but_never_lose_the_best_last_or_stopped_epoch(
    tmp_path, monkeypatch
):
    import keras

    monkeypatch.setattr(callbacks, "CHECKPOINT_BUDGET", 0.0)  # as if epochs were far shorter than a save
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    folder = RunFolder(tmp_path / "run")

    class Progress:
        stopped_in_epoch = False

    class Guard:
        reason, first = "", None

    saver = training.ModelSaver(folder, "val_loss", Progress(), Guard(), class_names=("a", "b"))
    saver.set_model(model)
    saver.set_params({"epochs": 5, "verbose": 0, "steps": 1})
    saver.on_train_begin()
    written = []
    for epoch, val_loss in enumerate([1.0, 0.9, 0.95, 0.97, 0.99]):  # better, better, worse, worse, last
        saver.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
        written.append(checkpoint.read_state(folder.checkpoint_path)["epochs_done"])
        if epoch == 1:
            best_weights = [w.copy() for w in model.get_weights()]
        model.set_weights([w + 1.0 for w in model.get_weights()])  # as if the next epoch trained
    assert written == [1, 1, 1, 1, 5]  # epoch 2 was the best but no save was due: kept in memory
    assert saver.checkpoints == 2 and saver.checkpoints_skipped == 3
    assert saver.best_logs["epoch"] == 2.0
    # model.keras: the best epoch's weights, written along with the last checkpoint
    assert checkpoint.read_state(folder.model_path)["epochs_done"] == 2
    saved = keras.saving.load_model(folder.model_path, compile=False)
    for kept, got in zip(best_weights, saved.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, got)
    assert checkpoint.read_state(folder.checkpoint_path)["best_value"] == 0.9

    monkeypatch.setattr(callbacks, "CHECKPOINT_BUDGET", 1e9)  # long epochs: every epoch
    saver.on_epoch_end(5, {"loss": 1.0, "val_loss": 2.0})
    assert checkpoint.read_state(folder.checkpoint_path)["epochs_done"] == 6


# ---- resume: what is refused ----------------------------------------------------------------------

def test_resume_arguments_and_unusable_run_folders_exit_2(image_tree, tmp_path, capsys):
    config_path = tmp_path / "cfg.json"
    save_config(tiny_config(image_tree), config_path)
    assert cli.main(["train"]) == 2
    assert cli.main(["train", str(config_path), "--resume", str(tmp_path)]) == 2
    assert cli.main(["train", "--resume", str(tmp_path / "no-such-run")]) == 2
    assert cli.main(["train", "--resume", str(tmp_path)]) == 2  # a folder without config.json
    err = capsys.readouterr().err
    assert "not both" in err and "no run folder" in err and "config file not found" in err
    assert "Traceback" not in err

    folder = RunStore(tmp_path / "runs").create(tiny_config(image_tree))
    (folder.path / "config.json").write_text('{"training": {"epochs": "ten"}}')
    assert cli.main(["train", "--resume", str(folder.path)]) == 2
    assert "training.epochs" in capsys.readouterr().err
    result = training.resume(folder.path, Recorder())
    assert isinstance(result, RunFailed) and result.kind == "invalid" and "config.json" in result.error


def test_a_damaged_checkpoint_is_refused_not_restarted_over(image_tree, tmp_path):
    folder = RunStore(tmp_path / "runs").create(tiny_config(image_tree))
    folder.checkpoint_path.write_bytes(b"PK\x03\x04 half a zip")
    rec = Recorder()
    result = training.resume(folder.path, rec)
    assert isinstance(result, RunFailed) and result.kind == "invalid"
    assert "checkpoint" in result.error and "damaged" in result.error
    assert folder.checkpoint_path.read_bytes() == b"PK\x03\x04 half a zip"  # left as it was
    assert rec.of(BatchEnd) == []


def _lambda_model(path: Path) -> Path:
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)).save(path)
    return path


def test_models_holding_code_are_refused_in_safe_mode_with_a_message_that_says_so(image_tree, tmp_path):
    from workbench.core.engine import saving
    from workbench.core.engine.saving import load_model_file
    from workbench.core.runs.store import RunError

    file = _lambda_model(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        saving.load_model(file)
    with pytest.raises(RunError) as info:
        load_model_file(file)
    assert "safe mode" in str(info.value) and "Lambda" in str(info.value)

    # A checkpoint swapped for one that holds code: resuming refuses it and says why.
    folder = RunStore(tmp_path / "runs").create(tiny_config(image_tree, **{"training.epochs": 3}))
    with zipfile.ZipFile(file, "a") as archive:
        archive.writestr(checkpoint.STATE_MEMBER, json.dumps({"epochs_done": 1}))
    folder.checkpoint_path.write_bytes(file.read_bytes())
    result = training.resume(folder.path, Recorder())
    assert isinstance(result, RunFailed) and result.kind == "invalid"
    assert "safe mode" in result.error and "Traceback" not in result.error


# ---- files are written atomically -------------------------------------------------------------------

def test_config_metrics_and_summary_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    save_config(RunConfig(name="old"), path)
    folder = RunFolder(tmp_path / "run")
    folder.append_metrics(1, {"loss": 1.0})
    folder.write_summary({"status": "stopped"})

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        save_config(RunConfig(name="new"), path)
    with pytest.raises(OSError):
        folder.append_metrics(2, {"loss": 0.5})
    with pytest.raises(OSError):
        folder.write_summary({"status": "finished"})
    monkeypatch.undo()
    assert load_config(path).name == "old"
    assert epochs_in(folder.path) == [1]
    assert load_run(folder.path).summary == {"status": "stopped"}
    leftovers = [p.name for p in (*tmp_path.iterdir(), *folder.path.iterdir()) if p.name.startswith(".")]
    assert leftovers == []


def test_a_checkpoint_write_cut_short_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(np.zeros((4, 4)), np.eye(2)[[0, 1, 0, 1]], epochs=1, verbose=0)
    path = tmp_path / "checkpoint.keras"
    checkpoint.save(model, path, {"epochs_done": 1}, mirror=tmp_path / "state.json")

    def crash_mid_write(target, *args, **kwargs):
        Path(target).write_bytes(b"PK\x03\x04 the first bytes of a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save", crash_mid_write)
    with pytest.raises(OSError):
        checkpoint.save(model, path, {"epochs_done": 2}, mirror=tmp_path / "state.json")
    assert checkpoint.read_state(path)["epochs_done"] == 1
    assert json.loads((tmp_path / "state.json").read_text())["epochs_done"] == 1
    loaded, state = checkpoint.load(path)
    assert state["epochs_done"] == 1 and loaded.optimizer.iterations.numpy() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.keras", "state.json"]


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00garbage", b'{"training": {"epochs": 3', b"[1, 2]", b'{"training": {"epochs": "3"}}',
     b'{"training": {"learning_rate": 1' + b"0" * 400 + b"}}", b"[" * 100_000, b""],
    ids=["binary", "truncated", "a list", "a string for a number", "a huge number", "deep nesting", "empty"],
)
def test_a_corrupt_or_hand_edited_config_exits_2_with_words_not_a_traceback(tmp_path, capsys, content):
    path = tmp_path / "cfg.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError):
        load_config(path)
    assert cli.main(["train", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "cannot use config" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()
