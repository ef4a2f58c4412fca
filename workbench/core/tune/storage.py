"""Opening a study's Optuna storage and the study in it, with every failure worded for a person.

A study lives in an RDB storage: by default a SQLite file in its folder; given a URL, a
database several machines share. Heartbeats mark a silent process's running trials failed
(after two intervals) and queue them again once, so a killed process loses nothing but time.
"""

from __future__ import annotations

import contextlib
import random
import time
import warnings
from collections.abc import Iterator

import optuna

from workbench.core.config.tune import DIRECTION, METRIC, TuneConfig, fingerprint
from workbench.core.runs.studies import mask_storage
from workbench.core.tune.records import masked_tune

FINGERPRINT_ATTR = "workbench_fingerprint"


CONFIG_ATTR = "workbench_tune_config"


RETRIES = 2  # a trial whose process died is queued again at most this many times


SQLITE_TIMEOUT_S = 60  # SQLite waits this long for another process's write lock before giving up


class StudyUnavailable(Exception):
    """The storage cannot be opened, or the study there belongs to another config."""


def open_storage(url: str, heartbeat_s: int, attempts: int = 5) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats; StudyUnavailable (the password masked) when it cannot be reached.

    Processes that create the same new database at once race to make its tables (Optuna makes them
    without a lock: "table studies already exists", a duplicate Alembic version row) or find it
    locked. For a SQLite file they take turns (a lock file beside it); any database is tried again
    a moment later after those errors.
    """
    for attempt in range(attempts):
        try:
            with sqlite_turn(url):
                return _open_storage(url, heartbeat_s)
        except StudyUnavailable as exc:
            if attempt == attempts - 1 or not any(s in str(exc) for s in RACES):
                raise
            time.sleep(0.2 + random.random() * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


RACES = ("UNIQUE constraint", "already exists", "database is locked", "duplicate key")


@contextlib.contextmanager
def sqlite_turn(url: str) -> Iterator[None]:
    """Hold `<file>.lock` (an advisory lock, POSIX) while a SQLite file's tables are made; else nothing."""
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
    if not path or path.startswith(":memory:"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: the retries alone
        yield
        return
    try:
        handle = open(f"{path}.lock", "a")  # noqa: SIM115 - held until the end of the block
    except OSError:  # a folder that does not exist: let the storage say so
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open_storage(url: str, heartbeat_s: int) -> optuna.storages.RDBStorage:
    engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else {}
    if url.startswith(("postgresql", "mysql")):
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_s, grace_period=2 * heartbeat_s,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=RETRIES))
            if url.startswith("sqlite"):
                write_ahead_log(storage.engine)
            return storage
        except Exception as exc:  # noqa: BLE001 - a bad URL, a missing driver, an unreachable server, a locked file
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StudyUnavailable(f"Cannot open the study's database {mask_storage(url)}: "
                                   f"{reason[:300]}") from None


def write_ahead_log(engine) -> None:
    """SQLite in WAL mode, synced at checkpoints: a commit without an fsync (most of a trial's cost to the
    study: docs/measured.md), and readers that do not wait for a writer. Same machine only, as SQLite is."""
    import sqlalchemy

    def pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(engine, "connect", pragmas)
    engine.dispose()  # connections opened while the tables were made: reopened with the pragmas


def open_study(tune: TuneConfig, name: str, storage, sampler, pruner) -> tuple[optuna.Study, bool]:
    """The study `name` (created if new) and whether it existed; StudyUnavailable when it was created
    for another base config or search space (its fingerprint differs)."""
    mine = fingerprint(tune)
    try:
        existing = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
        study = optuna.create_study(storage=storage, study_name=name, sampler=sampler, pruner=pruner,
                                    direction=DIRECTION, load_if_exists=True)
    except Exception as exc:  # noqa: BLE001 - the database went away, or holds something else
        raise StudyUnavailable(f"Cannot open study {name!r}: {str(exc).splitlines()[0][:300]}") from None
    theirs = study.user_attrs.get(FINGERPRINT_ATTR)
    if theirs is None and name in existing and study.trials:
        raise StudyUnavailable(f"Study {name!r} in {mask_storage(storage.url)} was not created by Workbench: "
                               "choose another study name")
    if theirs is not None and theirs != mine:
        raise StudyUnavailable(
            f"Study {name!r} was created for another config or search space (fingerprint {theirs}, this one "
            f"{mine}): the base config (apart from its name and dataset paths), the searched parameters and "
            "their ranges, the folds and the sampler must be the same to join it. Choose another study name "
            "to start a new study.")
    if study.directions[0] != optuna.study.StudyDirection.MAXIMIZE:
        raise StudyUnavailable(f"Study {name!r} minimizes its value; Workbench's studies maximize {METRIC}")
    if theirs is None:
        study.set_user_attr(FINGERPRINT_ATTR, mine)
        study.set_user_attr(CONFIG_ATTR, masked_tune(tune))
    return study, name in existing
