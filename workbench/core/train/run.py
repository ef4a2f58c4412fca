"""Turn a RunConfig into a trained model and a stream of events.

`run` is the one entry point the GUI worker and the CLI share. It never raises
for a failed run: the failure becomes a RunFailed event (and return value), so
the caller's thread always ends cleanly and the run folder keeps what it had.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import keras

from workbench.core.base.events import (
    Event,
    Message,
    RunFailed,
    RunFinished,
    RunStarted,
)
from workbench.core.base.images import IMAGE_EXTENSIONS
from workbench.core.base.problems import ConfigError
from workbench.core.config import backbone_catalogue, derived
from workbench.core.config.run import RunConfig, load_config
from workbench.core.config.validate import validate
from workbench.core.data import pipeline
from workbench.core.engine import (
    checkpoint,
    devices,
    distributed,
    perf,
    weights,
)
from workbench.core.engine import model as model_lib
from workbench.core.engine.callbacks import (
    DataUnavailable,
    DivergenceGuard,
    ModelSaver,
    ProgressCallback,
    ResumableEarlyStopping,
)
from workbench.core.engine.compile import (
    class_weights,
    class_weights_text,
    compile_classifier,
    monitor_mode,
)
from workbench.core.engine.dropout import make_ramp_callback
from workbench.core.engine.perf import make_input_wait_monitor
from workbench.core.engine.schedules import add_schedule
from workbench.core.runs.store import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    SUMMARY_FILE,
    RunFolder,
    RunStore,
    load_run,
    tensorboard_command,
)
from workbench.core.train import phases
from workbench.core.train.tracking import MlflowTracker

Emit = Callable[[Event], None]


class Diverged(Exception):
    """Training blew up (NaN/inf or exploding loss)."""


def run(
    config: RunConfig | None,
    emit: Emit,
    stop_event: threading.Event | None = None,
    *,
    pause_event: threading.Event | None = None,
    runs_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
    callbacks: Sequence[Any] = (),
) -> RunFinished | RunFailed:
    """Train `config` to the end, a stop request, or a failure; report everything through `emit`.

    `callbacks`: more Keras callbacks for fit (a tuning study's pruning callback).

    With `resume_from` (a run folder) the run continues in that folder from its last
    checkpoint, with the folder's own config.json (`config` may then be None; if given
    it must equal it) and `runs_dir` is not used.
    """
    stop_event = stop_event or threading.Event()
    with _worker_scratch(emit) as scratch:  # a non-chief worker writes only into a temporary folder
        if scratch is not None:
            if resume_from is not None:
                resume_from = shutil.copytree(resume_from, scratch / Path(resume_from).name)
            else:
                runs_dir = scratch
        return _run(config, emit, stop_event, pause_event, runs_dir, resume_from, callbacks)


def _run(config, emit: Emit, stop_event: threading.Event, pause_event, runs_dir, resume_from,
         extra_callbacks: Sequence[Any] = ()) -> RunFinished | RunFailed:
    if resume_from is not None:
        opened = _open_for_resume(config, Path(resume_from), emit)
        if isinstance(opened, RunFailed):
            return opened
        config, folder = opened
    else:
        if config is None:
            raise TypeError("run() needs a config, or resume_from")
        problems = validate(config)
        if problems:
            return _fail(emit, None, "The configuration has problems", "\n".join(str(p) for p in problems), "invalid")
        try:
            folder = RunStore(runs_dir).create(config)
        except OSError as exc:
            return _fail(emit, None, "Cannot create the run folder", str(exc))

    def record(event: Event) -> None:
        try:
            folder.append_event(event)
        except OSError:  # a full disk must not kill the run's reporting
            pass
        emit(event)

    try:
        # clear_session, seed, precision policy, and the distribution strategy's scope for the whole run
        def stuck(text: str):
            """The cluster may never start: the run's summary says so until it has (engine/distributed.py)."""
            folder.write_summary({"status": "failed", "reason": "", "error": text, "kind": "error"})
            return lambda: (folder.path / SUMMARY_FILE).unlink(missing_ok=True)

        with perf.run_environment(config.training, record, Message, on_stuck=stuck) as strategy:
            return _train(config, folder, record, stop_event, pause_event, resume=resume_from is not None,
                          strategy=strategy, extra_callbacks=extra_callbacks)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an event
        return _fail(record, folder, *_describe(exc))


@contextlib.contextmanager
def _worker_scratch(emit: Emit) -> Iterator[Path | None]:
    """On a non-chief worker of a cluster, a temporary folder for its run folder, removed afterwards.

    Every worker trains the same model and writes checkpoints (saving may take part in the
    workers' collectives, so all must), but only the chief's folder is kept: the others write
    to a temporary place, as tf.distribute's own examples do, never over the chief's folder.
    """
    kind, index, chief = devices.worker_role()
    if chief:
        yield None
        return
    scratch = Path(tempfile.mkdtemp(prefix=f"workbench-{kind}{index}-"))
    emit(Message("info", f"This is {kind} {index}, not the chief: it writes its run folder to {scratch}, "
                         "which is removed when it ends (the chief's run folder is the one to keep)"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def resume(
    run_dir: str | Path,
    emit: Emit,
    stop_event: threading.Event | None = None,
    *,
    pause_event: threading.Event | None = None,
) -> RunFinished | RunFailed:
    """Continue a stopped, failed or killed run in its own folder, from its last checkpoint."""
    return run(None, emit, stop_event, pause_event=pause_event, resume_from=run_dir)


def _open_for_resume(config: RunConfig | None, path: Path, emit: Emit) -> tuple[RunConfig, RunFolder] | RunFailed:
    """The run folder's config and folder, or a RunFailed ("invalid") that leaves the folder untouched."""
    def refuse(error: str, details: str = "") -> RunFailed:
        event = RunFailed(error=error, details=details, run_dir=str(path), kind="invalid")
        emit(event)
        return event

    if not (path / CONFIG_FILE).is_file():
        return refuse(f"Cannot resume: {path} is not a run folder (it has no {CONFIG_FILE})")
    try:
        saved = load_config(path / CONFIG_FILE)
    except ConfigError as exc:
        return refuse(f"Cannot resume: the run's {CONFIG_FILE} cannot be used", str(exc))
    if config is not None and config != saved:
        return refuse(f"Cannot resume: the settings differ from the run's {CONFIG_FILE}",
                      "A resumed run keeps its own settings; start a new run to change them.")
    problems = validate(saved)
    if problems:
        return refuse("Cannot resume: the run's configuration has problems", "\n".join(str(p) for p in problems))
    epochs = saved.training.epochs
    state = checkpoint.read_state(path / CHECKPOINT_FILE)
    if state is None and (path / CHECKPOINT_FILE).exists():
        return refuse(f"Cannot resume: the checkpoint of run {path.name} is damaged",
                      f"{path / CHECKPOINT_FILE} cannot be read. Workbench writes checkpoints atomically, so "
                      "something else changed it. Delete it to train the run again from the first epoch.")
    summary = load_run(path).summary
    if summary.get("status") == "finished" or (state and state["epochs_done"] >= epochs):
        done = summary.get("epochs_done", state["epochs_done"] if state else epochs)
        why = f" ({summary['reason']})" if summary.get("reason") else ""
        return refuse(f"Nothing to resume: run {path.name} has finished{why} after {done} of {epochs} epochs")
    return saved, RunFolder(path)


def _fail(
    emit: Emit,
    folder: RunFolder | None,
    error: str,
    details: str,
    kind: str = "error",
    summary: dict[str, Any] | None = None,
) -> RunFailed:
    event = RunFailed(error=error, details=details, run_dir=str(folder.path) if folder else "", kind=kind)
    if folder is not None:
        status = "diverged" if kind == "diverged" else "failed"
        try:
            folder.write_summary({**(summary or {}), "status": status, "error": error, "details": details})
        except OSError:
            pass
    emit(event)
    return event


def _describe(exc: BaseException) -> tuple[str, str, str]:
    """A one-line title for a dialog and the details behind it."""
    details = "".join(traceback.format_exception(exc))
    if isinstance(exc, (weights.WeightsUnavailable, weights.WeightsMismatch)):
        return str(exc), details, "invalid"
    if isinstance(exc, DataUnavailable):
        return str(exc).splitlines()[0], str(exc), "error"
    name = type(exc).__name__
    if name in ("UnavailableError", "DeadlineExceededError", "AbortedError") and devices.worker_role()[0]:
        return ("Another worker of the cluster failed, was stopped or stopped answering, so this one stops too "
                f"({name}). Start all workers again; the chief's run folder can be resumed", details, "error")
    if isinstance(exc, distributed.EmptyBatchBug):
        return str(exc), details, "invalid"
    if name == "ResourceExhaustedError" or isinstance(exc, MemoryError):
        return (
            "Out of memory: try a smaller batch size or image size, or a smaller backbone",
            details,
            "out_of_memory",
        )
    return f"Training failed: {name}: {exc}".splitlines()[0][:300], details, "error"


def _train(
    config: RunConfig,
    folder: RunFolder,
    emit: Emit,
    stop_event: threading.Event,
    pause_event: threading.Event | None,
    resume: bool = False,
    strategy: Any = None,
    extra_callbacks: Sequence[Any] = (),
) -> RunFinished | RunFailed:
    # keras.backend.clear_session(), the seed and the precision policy: in perf.run_environment (run()),
    # before the strategy scope opens (clear_session would drop it).
    t = config.training

    emit(Message("info", f"Scanning {config.data.folder}", kind="prepare"))
    skipped, reads = pipeline.SkipCounter(), pipeline.ReadCounter()
    data = pipeline.prepare_data(config.data, t.batch_size, t.seed, skip_counter=skipped, read_counter=reads)
    for problem in data.warnings:
        emit(Message("warning", str(problem)))
    if data.problems:
        return _fail(emit, folder, "The dataset cannot be used for training",
                     "\n".join(str(p) for p in data.problems), "invalid")
    left_out = _left_out_files(data.report, data.val_report)
    if left_out:
        emit(Message("warning", f"Skipping {left_out} unusable file(s) found by the scan (listed above); "
                                f"training on the other {data.train_count + data.val_count} images"))

    spec = backbone_catalogue.get_backbone(config.backbone.name)
    state: dict[str, Any] = {}
    if resume:
        state = checkpoint.read_state(folder.checkpoint_path) or {}
    if state:
        emit(Message("info", f"Loading the checkpoint of run {folder.id} (after epoch {state['epochs_done']})",
                     kind="prepare"))
        try:
            model, state = checkpoint.load(folder.checkpoint_path)
        except checkpoint.CheckpointError as exc:
            return _fail(emit, folder, f"Cannot resume: {exc}", "", "invalid")
        saved_classes = tuple(state.get("class_names") or ())
        if saved_classes and saved_classes != tuple(data.class_names):
            return _fail(emit, folder, "Cannot resume: the dataset's classes have changed since the run started",
                         f"The run trained on {', '.join(saved_classes)}; the folder now has "
                         f"{', '.join(data.class_names)}.", "invalid")
        freeze = model_lib.model_summary_counts(model)
    else:
        if resume:
            emit(Message("warning", f"Run {folder.id} has no checkpoint yet: it starts again from the first epoch"))
        emit(Message("info", f"Building {spec.name} with {_weights_text(config)}", kind="prepare"))
        model = model_lib.build_model(config, len(data.class_names))
        freeze = model_lib.freeze_for(model, config, phase=1 if t.two_phase else 0)
        compile_classifier(model, config)
    initial_epoch = int(state.get("epochs_done", 0))
    if resume:
        folder.load_existing_metrics(through_epoch=initial_epoch)
        if initial_epoch:
            emit(Message("info", f"Resuming after epoch {initial_epoch} of {t.epochs}"))

    emit(
        RunStarted(
            run_id=folder.id,
            run_dir=str(folder.path),
            epochs=t.epochs,
            steps_per_epoch=data.steps_per_epoch,
            class_names=tuple(data.class_names),
            train_images=data.train_count,
            val_images=data.val_count,
            layers_total=freeze.layers_total,
            layers_trainable=freeze.layers_trainable,
            params_trainable=freeze.params_trainable,
            params_frozen=freeze.params_frozen,
            initial_epoch=initial_epoch,
        )
    )
    emit(Message("info", freeze.text))

    # Workers of a cluster stop together, at the same batch (a worker that stopped alone would leave
    # the others waiting in their next collective), and checkpoint at the same epochs.
    multi_worker = strategy is not None and distributed.is_multi_worker(strategy)
    agree = (lambda flag: distributed.any_worker(strategy, flag)) if multi_worker else None
    progress = ProgressCallback(emit, folder, data.steps_per_epoch, stop_event, pause_event, skipped,
                                initial_epoch=initial_epoch, agree=agree)
    guard = DivergenceGuard(t.divergence_factor, first=state.get("divergence_first"),
                            num_classes=len(data.class_names))
    saver = ModelSaver(folder, t.monitor if t.keep_best else "", progress, guard, state,
                       class_names=tuple(data.class_names), every_epoch=multi_worker)
    callbacks: list[Any] = [progress, guard, saver, *extra_callbacks]

    # Warns when the input pipeline starves the model.
    callbacks.append(make_input_wait_monitor(emit, Message, reads=reads, batch_size=t.batch_size,
                                             images_per_epoch=data.train_count))
    dr = config.dropout
    if dr.kind == "dropblock" and dr.ramp_epochs > 0 and dr.rate > 0:
        # First in the list: it restores the full rate at each epoch's end, before the model is saved.
        callbacks.insert(0, make_ramp_callback(model, dr.rate, dr.ramp_epochs, data.steps_per_epoch))
        emit(Message("info", f"DropBlock's rate ramps up from 0 to {dr.rate:g} over {dr.ramp_epochs} epoch(s)"))
    if t.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(folder.path / "tensorboard"), update_freq="epoch"))
        emit(Message("info", f"TensorBoard logs: {folder.path / 'tensorboard'} "
                             f"(open them with: {tensorboard_command(folder.path.parent)})"))
    tracker = MlflowTracker(config, folder.path, emit) if t.mlflow else None
    if tracker is not None:
        callbacks.append(tracker)
    if not phases.freeze_bn_only(model):
        callbacks.append(phases.batchnorm_recalibration(model, data.train, data.train_count, emit))
    if t.early_stopping:
        # Before the saver, so that the checkpoint holds this epoch's early-stopping counters.
        saver.early_stopping = ResumableEarlyStopping(
            monitor=t.monitor, patience=t.patience, mode=monitor_mode(t.monitor), restore=state.get("early_stopping"))
        callbacks.insert(callbacks.index(saver), saver.early_stopping)
    add_schedule(callbacks, saver, emit, t, data.steps_per_epoch, state)  # cosine or plateau
    weights_by_class = class_weights(config, data.class_names, data.train_counts)
    if weights_by_class is not None:
        emit(Message("info", class_weights_text(weights_by_class, data.class_names)))

    emit(Message("info", "Starting training: the first batch traces the model's training step", kind="prepare"))
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Files that became unreadable are filtered out, so the dataset's length is unknown
        # and Keras warns that the input "ran out of data" at each epoch's end: it did not.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        fit = dict(validation_data=data.val, callbacks=callbacks, verbose=0, class_weight=weights_by_class,
                   shuffle=False)  # the training dataset shuffles itself, with the run's seed
        freeze = phases.fit_phases(model, config, data, emit, saver=saver, progress=progress, guard=guard,
                                   stop_event=stop_event, callbacks=callbacks, initial_epoch=initial_epoch,
                                   resumed=bool(state), freeze=freeze, fit=fit)
    seconds = time.perf_counter() - started + float(state.get("seconds", 0.0))

    epochs_done = progress.epochs_done
    if guard.reason:
        saver.keep_last_good()
    else:
        saver.finish(model)
    if guard.reason:
        reason = guard.reason
    elif stop_event.is_set():
        reason = "stopped"
    elif epochs_done < t.epochs:
        reason = "early stopping"
    else:
        reason = ""
    summary = {
        "status": "diverged" if guard.reason else ("stopped" if stop_event.is_set() else "finished"),
        "reason": reason,
        "epochs_done": epochs_done,
        "seconds": round(seconds, 2),
        "best": saver.best_logs,
        "last": progress.last_logs,
        "class_names": list(data.class_names),
        "train_images": data.train_count,
        "val_images": data.val_count,
        "test_images": data.test_count,
        "trainable": freeze.text,
        "model": folder.model_path.name if folder.model_path.is_file() else "",
        "checkpoint": folder.checkpoint_path.name if folder.checkpoint_path.is_file() else "",
        "skipped_files": left_out + skipped.count,
        "checkpoint_seconds": round(saver.checkpoint_seconds, 2),
        "checkpoints": saver.checkpoints,
        "checkpoints_skipped": saver.checkpoints_skipped,  # epochs left out to keep within CHECKPOINT_BUDGET
    }
    if initial_epoch:
        summary["resumed_after_epoch"] = initial_epoch
    if tracker is not None:
        tracker.finish(summary["status"], folder.model_path if folder.model_path.is_file() else None)
    if skipped.count:
        emit(Message("warning", f"Skipped {left_out + skipped.count} file(s) in all: {left_out} found unusable "
                                f"by the scan, {skipped.count} unreadable during training"))
    if guard.reason:
        kept = ("The model from the last good epoch is kept in the run folder." if summary["model"] else
                "No epoch finished before it diverged, so there is no model to keep.")
        return _fail(emit, folder, guard.reason, f"{_DIVERGENCE_HELP} {kept}", "diverged", summary)
    folder.write_summary(summary)
    if reason == "early stopping":
        emit(Message("info", f"Early stopping after {epochs_done} epochs: {t.monitor} stopped improving"))
    finished = RunFinished(
        run_dir=str(folder.path),
        stopped=stop_event.is_set(),
        epochs_done=epochs_done,
        best=saver.best_logs,
        reason=reason,
    )
    emit(finished)
    return finished


_DIVERGENCE_HELP = (
    "The loss became too large or not a number, so the run was stopped to save your time.\n"
    "Usual fixes: lower the learning rate (divide it by 10), use Adam instead of SGD, "
    "or check the images and labels."
)


def _left_out_files(*reports) -> int:
    """How many image files the scans left out (empty, damaged, not images, unsupported)."""
    count = 0
    for report in reports:
        for problem in getattr(report, "warnings", ()):
            # A file's problem reads "<path inside the folder>: <reason>"; the others do not
            # start with an image file's name (class counts, ignored non-images, stray files).
            text, at = problem.message, problem.message.find(": ")
            while at != -1:
                if os.path.splitext(text[:at])[1].lower() in IMAGE_EXTENSIONS:
                    count += 1
                    break
                at = text.find(": ", at + 1)
    return count


def _weights_text(config: RunConfig) -> str:
    """Where the backbone's weights come from, for the log."""
    b = config.backbone
    kind = derived.effective_transfer(b)
    if kind == "zero":
        return "re-initialised weights (zero transfer: same architecture, random weights)"
    text = {"imagenet": "ImageNet weights", "file": f"weights from {b.weights_file}"}[b.weights]
    if kind == "partial":
        rest = "re-initialised" if b.rest == "reinit" else "fine-tuned"
        text += f", transferring its first {b.keep_blocks} block(s) (frozen); the rest {rest}"
    return text
