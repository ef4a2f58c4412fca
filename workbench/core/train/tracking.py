"""Experiment tracking with MLflow, when a run asks for it (training.mlflow) and MLflow is installed.

A Keras callback: the run's settings as parameters when training starts, each epoch's metrics as
they come, and at the end its summary and model file. Tracking never stops a run: a store that
cannot be reached becomes one warning in the log.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import keras

from workbench.core.base.events import Message
from workbench.core.config.run import RunConfig

EXPERIMENT = "workbench"
DATABASE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlruns"


def default_uri(runs_dir: str | Path) -> str:
    """A SQLite store beside the run folders: embedded, nothing to start."""
    return f"sqlite:///{Path(runs_dir).resolve() / DATABASE_FILE}"


def flat_params(config: RunConfig) -> dict[str, str]:
    """The config as MLflow parameters ("training.learning_rate": "0.001")."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        else:
            out[prefix] = str(value)[:500]

    walk("", config.to_dict())
    return out


class MlflowTracker(keras.callbacks.Callback):
    """Logs one Workbench run as one MLflow run."""

    def __init__(self, config: RunConfig, run_dir: Path, emit):
        super().__init__()
        self.config, self.run_dir, self.emit = config, Path(run_dir), emit
        self.uri = config.training.mlflow_uri.strip() or default_uri(self.run_dir.parent)
        self.client = None
        self.run_id = ""

    def _fail(self, what: str, exc: BaseException) -> None:
        self.emit(Message("warning", f"MLflow tracking stopped: {what}: {exc}"))
        self.client = None

    def start(self) -> None:
        if importlib.util.find_spec("mlflow") is None:
            self.emit(Message("warning", "MLflow is not installed, so this run is not tracked: "
                                         "pip install 'workbench[mlflow]'"))
            return
        try:
            from mlflow.tracking import MlflowClient

            self.client = MlflowClient(self.uri)
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
            if experiment is None:
                artifacts = None
                if self.uri.startswith("sqlite:///"):
                    artifacts = (Path(self.uri[len("sqlite:///"):]).parent / ARTIFACTS_DIR).as_uri()
                experiment_id = self.client.create_experiment(EXPERIMENT, artifact_location=artifacts)
            else:
                experiment_id = experiment.experiment_id
            run = self.client.create_run(experiment_id, run_name=self.run_dir.name,
                                         tags={"workbench.run_dir": str(self.run_dir)})
            self.run_id = run.info.run_id
            for key, value in flat_params(self.config).items():
                self.client.log_param(self.run_id, key, value)
            self.emit(Message("info", f"MLflow: tracking this run in {self.uri} (experiment '{EXPERIMENT}')"))
        except Exception as exc:  # noqa: BLE001 - tracking must never stop training
            self._fail(f"cannot use {self.uri}", exc)

    def on_train_begin(self, logs=None):
        if self.client is None and not self.run_id:
            self.start()

    def on_epoch_end(self, epoch, logs=None):
        if self.client is None:
            return
        try:
            for key, value in (logs or {}).items():
                self.client.log_metric(self.run_id, key, float(value), step=epoch + 1)
        except Exception as exc:  # noqa: BLE001
            self._fail("cannot log metrics", exc)

    def finish(self, status: str, model_path: Path | None) -> None:
        """At the run's end: its model file and how it ended."""
        if self.client is None:
            return
        try:
            if model_path is not None and model_path.is_file():
                self.client.log_artifact(self.run_id, str(model_path), artifact_path="model")
            self.client.set_tag(self.run_id, "workbench.status", status)
            self.client.set_terminated(self.run_id, "FINISHED" if status == "finished" else
                                       "KILLED" if status == "stopped" else "FAILED")
        except Exception as exc:  # noqa: BLE001
            self._fail("cannot log the model", exc)
