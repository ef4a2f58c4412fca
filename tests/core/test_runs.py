"""Run folders: config first, metrics as they come, atomic files, reloadable records."""

import json

import pytest

from workbench.core.base.events import EpochEnd, Message, RunFinished
from workbench.core.base.files import atomic_replace_with, atomic_write_text
from workbench.core.config.run import RunConfig
from workbench.core.runs.store import RunStore, load_run, read_metrics


def test_create_writes_config_before_anything_else(tmp_path):
    config = RunConfig(name="My run!")
    folder = RunStore(tmp_path).create(config)
    assert folder.path.parent == tmp_path
    assert folder.id.endswith("my-run")
    assert [p.name for p in folder.path.iterdir()] == ["config.json"]
    assert load_run(folder.path).config == config


def test_two_runs_in_the_same_second_get_two_folders(tmp_path):
    store = RunStore(tmp_path)
    a, b = store.create(RunConfig()), store.create(RunConfig())
    assert a.path != b.path


def test_metrics_csv_grows_per_epoch_and_reads_back(tmp_path):
    folder = RunStore(tmp_path).create(RunConfig())
    folder.append_metrics(1, {"loss": 1.5, "accuracy": 0.5})
    folder.append_metrics(2, {"loss": 1.0, "accuracy": 0.75, "val_loss": 1.1})
    header = (folder.path / "metrics.csv").read_text().splitlines()[0]
    assert header == "epoch,loss,accuracy,val_loss"
    rows = read_metrics(folder.path)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["val_loss"] == 1.1 and "val_loss" not in rows[0]


def test_events_jsonl_keeps_non_batch_events(tmp_path):
    folder = RunStore(tmp_path).create(RunConfig())
    folder.append_event(Message("info", "hello"))
    folder.append_event(EpochEnd(epoch=0, logs={"loss": 1.0}, seconds=0.5))
    folder.append_event(RunFinished(run_dir=str(folder.path), stopped=False, epochs_done=1))
    lines = [json.loads(x) for x in (folder.path / "events.jsonl").read_text().splitlines()]
    assert [x["type"] for x in lines] == ["Message", "EpochEnd", "RunFinished"]


def test_list_skips_foreign_folders_and_reports_broken_configs(tmp_path):
    store = RunStore(tmp_path)
    good = store.create(RunConfig())
    broken = store.create(RunConfig())
    (broken.path / "config.json").write_text("{oops")
    (tmp_path / "not-a-run").mkdir()
    records = {r.id: r for r in store.list()}
    assert set(records) == {good.id, broken.id}
    assert records[good.id].config is not None
    assert records[broken.id].config is None and "not valid JSON" in records[broken.id].problem


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failed_replace_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("old")

    def broken_writer(path):
        with open(path, "w") as fh:
            fh.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):  # the failure reaches the caller, never swallowed
        atomic_replace_with(target, broken_writer)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
