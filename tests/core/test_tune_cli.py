"""`workbench tune` as people run it: real processes sharing one SQLite study, a killed process whose
trial is failed by the heartbeat and run again, Ctrl-C, and bad input with exit code 2."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from test_dropout_lab import small_image_tree, vgg_config
from test_sweep import drop_models

from workbench import cli
from workbench.core.config.tune import SearchRange, TuneConfig
from workbench.core.runs.store import read_metrics
from workbench.core.runs.studies import read_study
from workbench.core.tune.storage import FINGERPRINT_ATTR

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune-cli")
    yield small_image_tree(root / "data", per_class=8)
    drop_models(root)


def write_tune_config(path: Path, data: Path, epochs: int = 1) -> Path:
    """A study config (no pruning: these tests count complete trials)."""
    config = TuneConfig(vgg_config(data, **{"training.epochs": epochs}),
                        {"learning_rate": SearchRange(1e-4, 1e-2, log=True), "dropout_rate": SearchRange(0.0, 0.5)},
                        pruner="none")
    path.write_text(config.to_json())
    return path


def tune_command(config: Path, runs: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "workbench", "tune", str(config), "--runs-dir", str(runs), *flags]


def stored_trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials as the database holds them, without those that never ran (over budget)."""
    study = optuna.load_study(study_name=name, storage=url)
    return [t for t in study.get_trials() if not t.user_attrs.get("over_budget")]


def test_two_processes_on_one_sqlite_storage_share_the_trials(data, tmp_path):
    config = write_tune_config(tmp_path / "tune.json", data)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    flags = ("--trials", "4", "--storage", url, "--study", "shared")
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = []
    for name, log in zip(("a", "b"), logs, strict=True):
        with open(log, "wb") as out:
            procs.append(subprocess.Popen(tune_command(config, tmp_path / f"runs-{name}", *flags), cwd=REPO,
                                          stdout=out, stderr=subprocess.STDOUT))
    try:
        codes = [p.wait(600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    printed = [log.read_text() for log in logs]
    assert codes == [0, 0], printed
    trials = stored_trials(url, "shared")
    assert sorted(t.number for t in trials) == [t.number for t in trials] and len(trials) == 4, printed
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    run_dirs = [d for t in trials for d in t.user_attrs["run_dirs"]]
    on_disk = sorted(str(p.parent) for p in tmp_path.glob("runs-*/*/config.json"))
    assert sorted(run_dirs) == on_disk and len(on_disk) == 4  # no trial lost, none run twice
    lines = [line for text in printed for line in text.splitlines() if line.startswith("trial ")]
    assert len(lines) == 4 and all("complete" in line for line in lines)
    assert all("Storage: sqlite:///" in text for text in printed)


def test_processes_that_create_one_new_database_at_once_all_open_it(tmp_path):
    """Optuna makes a new database's tables without a lock; Workbench's processes take turns."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code = ("import sys; from workbench.core.tune.storage import open_storage; import optuna; "
            "s = open_storage(sys.argv[1], 10); "
            "optuna.create_study(storage=s, study_name='x', direction='maximize', load_if_exists=True)")
    procs = [subprocess.Popen([sys.executable, "-c", code, url], cwd=REPO, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [(p.wait(120), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _ in results), results
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["x"]


def wait_for_first_epoch(child, runs: Path, log: Path, timeout=300) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        found = [p.parent for p in runs.glob("*/metrics.csv")]
        if found and read_metrics(found[0]):
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no epoch finished (exit code {child.poll()}):\n{log.read_text()}")


def test_a_killed_process_trial_is_failed_by_the_heartbeat_and_run_again(data, tmp_path):
    config = write_tune_config(tmp_path / "tune.json", data, epochs=20)
    runs, log = tmp_path / "runs", tmp_path / "killed.log"
    flags = ("--trials", "1", "--study", "k", "--heartbeat", "1")
    with open(log, "wb") as out:
        child = subprocess.Popen(tune_command(config, runs, *flags), cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            killed_run = wait_for_first_epoch(child, runs, log)
        finally:
            child.kill()
            child.wait()
    url = f"sqlite:///{runs / 'study-k' / 'study.db'}"
    (running,) = stored_trials(url, "k")
    assert running.state == optuna.trial.TrialState.RUNNING and running.user_attrs["run_dirs"] == [str(killed_run)]
    time.sleep(3)  # two heartbeats missed: the trial is stale
    done = subprocess.run(tune_command(config, runs, *flags), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "joining 1 earlier trial" in done.stdout
    first, again = stored_trials(url, "k")
    assert first.state == optuna.trial.TrialState.FAIL and again.state == optuna.trial.TrialState.COMPLETE
    assert again.params == first.params  # the same trial, queued again by the heartbeat's callback
    record = read_study(runs / "study-k")
    assert [(t.number, t.state) for t in record.trials] == [(0, "failed"), (1, "complete")]
    assert record.status == "finished" and record.best_number == 1


def test_ctrl_c_stops_the_study_cleanly_and_exits_130(data, tmp_path):
    config = write_tune_config(tmp_path / "tune.json", data, epochs=30)
    runs, log = tmp_path / "runs", tmp_path / "stopped.log"
    with open(log, "wb") as out:
        child = subprocess.Popen(tune_command(config, runs, "--trials", "3", "--study", "c"), cwd=REPO, stdout=out,
                                 stderr=subprocess.STDOUT)
        try:
            run = wait_for_first_epoch(child, runs, log)
            child.send_signal(signal.SIGINT)
            code = child.wait(120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    printed = log.read_text()
    assert code == 130, printed
    assert "Traceback" not in printed and "Study ended (stopped)" in printed
    record = read_study(runs / "study-c")
    assert record.status == "stopped"
    assert [(t.state, t.error, t.run_dirs) for t in record.trials if t.state != "waiting"] == [
        ("failed", "stopped", [str(run)])]
    assert json.loads((run / "summary.json").read_text())["status"] == "stopped"
    assert len(read_metrics(run)) < 30


def test_bad_input_exits_2_with_a_message(data, tmp_path, capsys):
    config = write_tune_config(tmp_path / "tune.json", data)
    runs = tmp_path / "runs"

    def tune(*flags) -> tuple[int, str]:
        code = cli.main(["tune", str(config), "--runs-dir", str(runs), *flags])
        return code, capsys.readouterr().err

    code, err = tune("--search", "lr,colour")
    assert code == 2 and "unknown parameter 'colour'" in err
    code, err = tune("--storage", "postgresql://ann:s3cret@127.0.0.1:1/studies")
    assert code == 2 and "Cannot open the study's database postgresql://ann:***@127.0.0.1:1/studies" in err
    assert "s3cret" not in err

    foreign = f"sqlite:///{tmp_path / 'other.db'}"
    study = optuna.create_study(study_name="theirs", storage=foreign, direction="maximize")
    study.set_user_attr(FINGERPRINT_ATTR, "0123456789abcdef")
    code, err = tune("--storage", foreign, "--study", "theirs")
    assert code == 2 and "created for another config" in err
    optuna.create_study(study_name="plain", storage=foreign).enqueue_trial({"x": 1})
    code, err = tune("--storage", foreign, "--study", "plain")
    assert code == 2 and "not created by Workbench" in err
    assert not runs.exists() or not any(runs.glob("*/config.json"))

    empty = json.loads(config.read_text())
    empty["tune"]["search"]["dropout_rate"] = {"low": 0.6, "high": 0.2}
    config.write_text(json.dumps(empty))
    code, err = tune()
    assert code == 2 and "tune.search.dropout_rate: the range is empty" in err
    one_class = tmp_path / "one-class"
    (one_class / "only").mkdir(parents=True)
    for image in sorted((data / "red").iterdir()):
        (one_class / "only" / image.name).write_bytes(image.read_bytes())
    write_tune_config(config, one_class)
    code, err = tune("--study", "one")
    assert code == 2 and "trial 0:" in err  # the trial's run refused the dataset: the study stops there
    assert read_study(runs / "study-one").trials[0].state == "failed"

    config.write_text("{not json")
    assert tune()[0] == 2
    assert cli.main(["tune", str(tmp_path / "missing.json")]) == 2
