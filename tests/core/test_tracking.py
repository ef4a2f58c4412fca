"""Experiment tracking: a run with training.mlflow on is logged to a real local MLflow store."""

import threading

import pytest
from core_helpers import tiny_config

from workbench.core.base.events import Message, RunFinished
from workbench.core.config.validate import warnings
from workbench.core.train import run as training

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is part of the test extras")


def test_a_tracked_run_logs_its_settings_metrics_and_model(image_tree, tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    config = tiny_config(image_tree, epochs=2, **{"training.mlflow": True, "training.mlflow_uri": uri,
                                                   "training.learning_rate": 0.002})
    events = []
    result = training.run(config, events.append, threading.Event(), runs_dir=tmp_path / "runs")
    assert isinstance(result, RunFinished), result
    assert any(isinstance(e, Message) and "MLflow: tracking this run" in e.text for e in events)
    client = mlflow.tracking.MlflowClient(uri)
    experiment = client.get_experiment_by_name("workbench")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["training.learning_rate"] == "0.002"
    assert run.data.params["backbone.name"] == "MobileNetV2"
    assert run.data.tags["workbench.status"] == "finished" and run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model")] == ["model/model.keras"]


def test_an_unreachable_store_warns_and_the_run_still_trains(image_tree, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = tiny_config(image_tree, epochs=1, **{"training.mlflow": True,
                                                   "training.mlflow_uri": f"sqlite:///{blocker / 'x.db'}"})
    events = []
    result = training.run(config, events.append, threading.Event(), runs_dir=tmp_path / "runs")
    assert isinstance(result, RunFinished), result
    assert any(isinstance(e, Message) and e.level == "warning" and "MLflow tracking stopped" in e.text
               for e in events)


def test_no_warning_when_mlflow_is_installed():
    config = tiny_config("/tmp", **{"training.mlflow": True})
    assert not [p for p in warnings(config) if p.field == "training.mlflow"]
