"""Dropout sweeps: real trials with k-fold, the table from the runs' metrics, stopping,
"apply best" on a hand-made result, the CLI, and Monte-Carlo dropout on the sweep's runs."""

import csv
import json
import math
import pickle
import threading
from pathlib import Path

import pytest
from test_dropout_lab import small_image_tree, vgg_config

from workbench import cli
from workbench.core.analysis.predict import predict_images
from workbench.core.base.events import BatchEnd, EpochEnd, Message, RunFinished, RunStarted
from workbench.core.config import sweep as sweep_config
from workbench.core.config.run import RunConfig, load_config
from workbench.core.config.sweep import SweepConfig
from workbench.core.runs import sweeps as sweep_results
from workbench.core.runs.store import read_metrics
from workbench.core.runs.sweeps import SweepResult, TrialResult, apply_best
from workbench.core.train.sweep import run_sweep


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """2 rates x 2 folds of VGG16 at 32 px (about 2 s a trial)."""
    root = tmp_path_factory.mktemp("sweep")
    data = small_image_tree(root / "data")
    events = []
    plan = SweepConfig(vgg_config(data), rates=[0.0, 0.5], folds=2)
    result = run_sweep(plan, events.append, threading.Event(), root / "runs")
    yield plan, result, events, root / "runs", data
    drop_models(root)


def drop_models(root: Path) -> None:
    """VGG16's model files are ~60 MB each: do not leave them in pytest's kept temporary folders."""
    for path in root.rglob("model.keras"):
        path.unlink()


def test_a_sweep_leaves_one_run_per_rate_and_fold_and_a_sweep_folder(swept):
    plan, result, _, runs, _ = swept
    assert not result.stopped and len(result.trials) == result.planned == 4
    assert all(t.status == "finished" for t in result.trials)
    run_dirs = sorted(p for p in runs.iterdir() if (p / "config.json").is_file())
    assert len(run_dirs) == 4 and {str(p) for p in run_dirs} == {t.run_dir for t in result.trials}
    configs = {t.run_dir: load_config(Path(t.run_dir) / "config.json") for t in result.trials}
    for t in result.trials:
        c = configs[t.run_dir]
        assert (c.dropout.rate, c.data.folds, c.data.fold) == (t.rate, 2, t.fold)
        assert c.name == f"sweep {result.sweep_id[-6:]} rate {t.rate:g} fold {t.fold + 1}"
    folder = Path(result.sweep_dir)
    assert folder == runs / f"sweep-{result.sweep_id}"
    saved = json.loads((folder / "sweep.json").read_text())
    assert saved["status"] == "finished" and saved["rates"] == [0.0, 0.5] and saved["folds"] == 2
    assert len(saved["trials"]) == 4 and saved["best"]["rate"] == result.best().rate
    with open(folder / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["kind"], float(r["rate"]), int(r["folds"])) for r in rows] == [("dropout", 0.0, 2), ("dropout", 0.5, 2)]
    _, loaded = sweep_results.load_sweep(folder)
    assert loaded.table() == result.table()


def test_the_table_is_the_mean_and_std_of_each_runs_best_validation_numbers(swept):
    _, result, _, _, _ = swept
    by_rate: dict[float, list[tuple[float, float]]] = {}
    for t in result.trials:
        metrics = read_metrics(t.run_dir)
        by_rate.setdefault(t.rate, []).append((min(m["val_loss"] for m in metrics),
                                               max(m["val_accuracy"] for m in metrics)))
    table = result.table()
    assert [(r.kind, r.rate, r.folds) for r in table] == [("dropout", 0.0, 2), ("dropout", 0.5, 2)]
    for row in table:
        losses = [v for v, _ in by_rate[row.rate]]
        accuracies = [a for _, a in by_rate[row.rate]]
        mean = sum(losses) / 2
        assert row.val_loss_mean == pytest.approx(mean)
        assert row.val_loss_std == pytest.approx(abs(losses[0] - losses[1]) / 2)  # population std of two
        assert row.val_accuracy_mean == pytest.approx(sum(accuracies) / 2)
    assert result.best() == min(table, key=lambda r: r.val_loss_mean)
    assert "*" in sweep_results.format_table(result)


def test_every_trial_event_is_forwarded_with_its_trial_and_is_picklable(swept):
    _, result, events, _, _ = swept
    kinds = [type(e).__name__ for e in events if not isinstance(e, sweep_results.SweepTrialEvent)]
    assert kinds == ["SweepStarted"] + ["SweepTrialDone"] * 4 + ["SweepFinished"]
    assert events[0].trials == (("dropout", 0.0, 0), ("dropout", 0.0, 1), ("dropout", 0.5, 0), ("dropout", 0.5, 1))
    wrapped = [e for e in events if isinstance(e, sweep_results.SweepTrialEvent)]
    for index, (kind, rate, fold) in enumerate(events[0].trials):
        mine = [e for e in wrapped if e.trial_index == index]
        assert all((e.kind, e.rate, e.fold) == (kind, rate, fold) for e in mine)
        inner = [type(e.event) for e in mine]
        assert RunStarted in inner and BatchEnd in inner and EpochEnd in inner and inner[-1] is RunFinished
    pickle.loads(pickle.dumps(events))


# ---- Monte-Carlo dropout on the sweep's runs ------------------------------------------

def run_of(result, rate):
    return next(t.run_dir for t in result.trials if t.rate == rate and t.fold == 0)


def test_mc_dropout_spread_is_zero_at_rate_0_and_not_at_rate_0_5(swept):
    _, result, _, _, data = swept
    plain = predict_images(run_of(result, 0.0), [data / "red"], mc_passes=5)
    assert all(p.ok and set(p.std.values()) == {0.0} for p in plain)
    noisy = predict_images(run_of(result, 0.5), [data / "red"], mc_passes=5)
    assert max(v for p in noisy for v in p.std.values()) > 1e-3
    assert all(0.0 <= p.entropy <= math.log(3) + 1e-6 for p in noisy)


def test_cli_predict_mc_shows_the_spread(swept, capsys):
    _, result, _, _, data = swept
    image = str(data / "blue" / "000.png")
    spreads = {}
    for rate in (0.0, 0.5):
        assert cli.main(["predict", run_of(result, rate), image, "--mc", "5"]) == 0
        lines = capsys.readouterr().out.splitlines()
        spreads[rate] = [float(line.split("±")[1]) for line in lines if "±" in line]
        assert len(spreads[rate]) == 3 and "entropy" in lines[-1]
    assert spreads[0.0] == [0.0, 0.0, 0.0]
    assert max(spreads[0.5]) > 0


# ---- a hand-made result: apply best ------------------------------------------------

def hand_made() -> SweepResult:
    def t(i, rate, fold, loss, acc, status="finished"):
        return TrialResult(i, "dropout", rate, fold, status, f"/runs/{i}", loss, acc, 5)

    return SweepResult("x", "/runs/sweep-x", [
        t(0, 0.0, 0, 0.90, 0.60), t(1, 0.0, 1, 0.70, 0.70),
        t(2, 0.2, 0, 0.50, 0.80), t(3, 0.2, 1, 0.60, 0.78),   # best mean: 0.55
        t(4, 0.4, 0, 0.40, 0.85), t(5, 0.4, 1, 0.80, 0.70),   # best single fold, mean 0.60
        t(6, 0.6, 0, 0.10, 0.99, "stopped"), t(7, 0.6, 1, None, None, "diverged"),  # never counts
    ], planned=8, folds=2)


def test_apply_best_takes_the_rate_with_the_best_mean_validation_loss():
    result = hand_made()
    table = {r.rate: r for r in result.table()}
    assert table[0.2].val_loss_mean == pytest.approx(0.55) and table[0.2].val_loss_std == pytest.approx(0.05)
    assert table[0.4].val_loss_mean == pytest.approx(0.60) and table[0.4].val_loss_std == pytest.approx(0.20)
    assert table[0.6].folds == 0 and table[0.6].val_loss_mean is None and table[0.6].trials == 2
    assert result.best().rate == 0.2

    config = RunConfig()
    config.dropout.kind, config.dropout.rate = "gaussian", 0.5
    applied = apply_best(config, result)
    assert (applied.dropout.kind, applied.dropout.rate) == ("dropout", 0.2)
    assert (config.dropout.kind, config.dropout.rate) == ("gaussian", 0.5)  # the original is untouched
    with pytest.raises(ValueError, match="no trial"):
        apply_best(config, SweepResult(trials=[TrialResult(0, "dropout", 0.1, 0, "failed")]))


# ---- plan, validation, stopping ---------------------------------------------------------

def test_rates_and_kinds_are_parsed_and_the_plan_is_validated(image_tree):
    assert sweep_config.parse_rates("0, 0.2;0.5  0.2") == [0.0, 0.2, 0.5]
    for bad in ("", "0.2, x", "1.0", "-0.1"):
        with pytest.raises(ValueError):
            sweep_config.parse_rates(bad)
    with pytest.raises(ValueError, match="cutout"):
        sweep_config.parse_kinds("dropout,cutout")

    base = vgg_config(image_tree)
    assert not sweep_config.validate_sweep(SweepConfig(base, [0.1, 0.3], ["dropout", "gaussian"], 3))
    problems = sweep_config.validate_sweep(SweepConfig(base, [0.1], ["dropout", "dropblock"]))
    assert [p.message for p in problems] == [
        "with dropblock at rate 0.1: dropblock dropout works on feature maps: add the 'feature_map' placement"]
    assert sweep_config.validate_sweep(SweepConfig(base, [])) and sweep_config.validate_sweep(SweepConfig(base, [0.1], ["cutout"]))
    assert any("13-fold" in p.message for p in sweep_config.validate_sweep(SweepConfig(base, [0.1], folds=13)))
    plan = SweepConfig(base, [0.1, 0.3], ["dropout", "gaussian"], 2)
    assert [(t.kind, t.rate, t.fold) for t in plan.trials()][:3] == [("dropout", 0.1, 0), ("dropout", 0.1, 1),
                                                                    ("dropout", 0.3, 0)]
    assert len(plan.trials()) == 8
    with_zero = SweepConfig(base, [0.0, 0.3], ["dropout", "gaussian"], 2).trials()  # rate 0 has no kind
    assert [(t.kind, t.rate) for t in with_zero if t.fold == 0] == [("dropout", 0.0), ("dropout", 0.3), ("gaussian", 0.3)]


def fake_train(batches_before_stop=None):
    """A stand-in for training.run that writes no files and obeys stop between its batches."""
    calls = []

    def train(config, emit, stop_event, *, pause_event=None, runs_dir=None):
        calls.append(config)
        for batch in range(3):
            if stop_event.is_set():
                result = RunFinished(run_dir="", stopped=True, epochs_done=0, reason="stopped")
                emit(result)
                return result
            emit(BatchEnd(0, batch, 3, {"loss": 1.0}))
            if batches_before_stop is not None and len(calls) == 2 and batch + 1 == batches_before_stop:
                stop_event.set()  # as if a person pressed Stop during the second trial
        emit(EpochEnd(0, {"val_loss": 1.0 - config.dropout.rate, "val_accuracy": 0.5}))
        result = RunFinished(run_dir="", stopped=False, epochs_done=1,
                             best={"val_loss": 1.0 - config.dropout.rate, "val_accuracy": 0.5})
        emit(result)
        return result

    return train, calls


def test_stop_ends_the_running_trial_and_starts_no_other(image_tree, tmp_path):
    train, calls = fake_train(batches_before_stop=1)
    events, stop = [], threading.Event()
    plan = SweepConfig(vgg_config(image_tree), [0.1, 0.2, 0.3])
    result = run_sweep(plan, events.append, stop, tmp_path, train=train)
    assert len(calls) == 2 and result.stopped
    assert [t.status for t in result.trials] == ["finished", "stopped"]
    assert [(r.rate, r.folds) for r in result.table()] == [(0.1, 1), (0.2, 0)]
    assert json.loads((Path(result.sweep_dir) / "sweep.json").read_text())["status"] == "stopped"
    assert isinstance(events[-1], sweep_results.SweepFinished) and events[-1].stopped

    stop = threading.Event()
    stop.set()  # stopped before it began: nothing trains
    train, calls = fake_train()
    assert run_sweep(plan, lambda e: None, stop, tmp_path, train=train).trials == [] and not calls


def test_an_invalid_sweep_trains_nothing(tmp_path):
    train, calls = fake_train()
    result = run_sweep(SweepConfig(RunConfig(), [0.1]), lambda e: None, None, tmp_path, train=train)
    assert result.problems and not calls and not list(tmp_path.iterdir())


# ---- CLI ------------------------------------------------------------------------------

def test_cli_sweep_with_folds_trains_each_rate_on_each_fold_and_prints_the_table(image_tree, tmp_path, capsys):
    config_file = tmp_path / "base.json"
    config_file.write_text(vgg_config(image_tree).to_json())
    runs = tmp_path / "runs"
    assert cli.main(["sweep", str(config_file), "--rates", "0,0.5", "--folds", "2", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "4 trials (1 kind, 2 rates, 2 folds each)" in out and "4 of 4 trials ran" in out
    table = [line for line in out.splitlines() if line.lstrip("* ").startswith("dropout ")]
    assert len(table) == 2 and sum(line.startswith("*") for line in table) == 1
    assert [line.lstrip("* ").split()[2] for line in table] == ["2", "2"], table  # the folds column
    (folder,) = [p for p in runs.iterdir() if p.name.startswith("sweep-")]
    saved = json.loads((folder / "sweep.json").read_text())
    assert saved["status"] == "finished" and saved["folds"] == 2
    assert [(t["rate"], t["fold"], t["status"]) for t in saved["trials"]] == [
        (0.0, 0, "finished"), (0.0, 1, "finished"), (0.5, 0, "finished"), (0.5, 1, "finished")]
    # each fold validates on its own images: the two folds of a rate split the data differently
    configs = [load_config(Path(t["run_dir"]) / "config.json") for t in saved["trials"]]
    assert [(c.data.folds, c.data.fold, c.dropout.rate) for c in configs] == [
        (2, 0, 0.0), (2, 1, 0.0), (2, 0, 0.5), (2, 1, 0.5)]
    with open(folder / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(float(r["rate"]), int(r["folds"])) for r in rows] == [(0.0, 2), (0.5, 2)]
    for row, rate in zip(rows, (0.0, 0.5), strict=True):
        losses = [min(m["val_loss"] for m in read_metrics(t["run_dir"])) for t in saved["trials"] if t["rate"] == rate]
        assert float(row["val_loss_mean"]) == pytest.approx(sum(losses) / 2)
        assert float(row["val_loss_std"]) == pytest.approx(abs(losses[0] - losses[1]) / 2)
    best = min(rows, key=lambda r: float(r["val_loss_mean"]))
    assert f"Best: dropout at rate {float(best['rate']):g}" in out and "over 2 folds" in out
    drop_models(runs)

    assert cli.main(["sweep", str(config_file), "--rates", "0,1.5"]) == 2
    assert "below 1" in capsys.readouterr().err
    assert cli.main(["sweep", str(config_file), "--rates", "0.2", "--kinds", "dropblock"]) == 2
    assert "feature_map" in capsys.readouterr().err


def test_a_sweep_that_cannot_write_its_results_says_so_and_does_not_end_as_finished(image_tree, tmp_path, capsys,
                                                                                    monkeypatch):
    """A full disk at the sweep folder: the trials still train and keep their run folders, but the sweep
    warns, its end carries the error, and the CLI exits 1 rather than 0."""
    from workbench.core.base import files
    from workbench.core.train import sweep as sweeps

    def disk_full(path, text):
        if Path(path).name in ("sweep.json", "results.csv"):
            raise OSError(28, "No space left on device")
        files.atomic_write_text(path, text)

    monkeypatch.setattr(sweeps, "atomic_write_text", disk_full)
    config_file = tmp_path / "base.json"
    config_file.write_text(vgg_config(image_tree).to_json())
    runs = tmp_path / "runs"
    assert cli.main(["sweep", str(config_file), "--rates", "0", "--runs-dir", str(runs)]) == 1
    err = capsys.readouterr().err
    assert "[warning] The sweep's results could not be written" in err and "No space left on device" in err
    assert err.count("[warning]") == 1  # the same failure is reported once, not at every save
    assert "error: The sweep's results could not be written" in err
    (folder,) = [p for p in runs.iterdir() if p.name.startswith("sweep-")]
    assert list(folder.iterdir()) == []
    (run,) = [p for p in runs.iterdir() if not p.name.startswith("sweep-")]
    assert read_metrics(run)  # the trial kept its work
    drop_models(runs)

    events = []
    result = run_sweep(SweepConfig(vgg_config(image_tree), [0.0]), events.append, threading.Event(), tmp_path / "r2")
    assert "No space left on device" in result.save_error and result.trials[0].status == "finished"
    finished = events[-1]
    assert isinstance(finished, sweep_results.SweepFinished) and finished.error == result.save_error
    warned = [e for e in events if isinstance(e, Message) and "could not be written" in e.text]
    assert [e.level for e in warned] == ["warning", "error"]  # once when it happened, once at the end
    drop_models(tmp_path / "r2")
