"""Optuna storage: SQLite under the run directory by default; a PostgreSQL (any RDB) URL or a
journal file for several machines.

Heartbeats let a rerun detect a trial left RUNNING by a killed process; the retry
callback re-enqueues it with the same parameters, so no completed trial is lost and
the killed one is run again. Optuna's JournalStorage has no heartbeats: there a killed
worker's trial stays RUNNING (it spends no budget; another trial runs in its place).

Forms of ``--storage`` (the same strings open the study in ``optuna-dashboard``):
``sqlite:///PATH.db``, ``postgresql://USER@HOST:PORT/DB`` (``postgresql+psycopg://`` names
the psycopg 3 driver explicitly; plain ``postgresql://`` picks it from SQLAlchemy 2.1 on),
another SQLAlchemy URL Optuna supports (MySQL), or ``PATH.log``: a journal file, which
needs only a shared file system (NFS) between machines.
"""
from __future__ import annotations

import logging
import time
import warnings
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

import optuna
from optuna.storages import (
    BaseStorage,
    JournalStorage,
    RDBStorage,
    RetryHeartbeatStaleTrialCallback,
)
from optuna.storages._rdb import models as rdb_models
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from autotune.trial_record import TrialRecord
from compress.errors import UserInputError
from compress.locks import file_lock

log = logging.getLogger(__name__)
# heartbeats and their retry callback are marked experimental; they are what resume relies on
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
FORMS = "sqlite:///PATH.db, postgresql://USER@HOST:PORT/DB or a journal file PATH.log"


def default_url(run_dir: Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / 'study.db'}"


def is_journal(url: str) -> bool:
    """A journal file is named by its path, as optuna-dashboard and Optuna's CLI take it."""
    return "://" not in url and url.endswith(".log")


def check_url(url: str) -> None:
    """Refuse, in one line and before anything is created, a URL of no known form or whose file
    would go in a folder that does not exist (SQLite and the journal would create it silently)."""
    if is_journal(url):
        return _folder_exists(url, Path(url).parent)
    try:
        parsed = make_url(url)
        parsed.get_dialect()  # the dialect only: a missing driver is reported when it is opened
    except NoSuchModuleError:
        raise UserInputError(f"--storage {url}: unknown scheme {url.split(':', 1)[0]}; use {FORMS}") from None
    except ArgumentError:
        raise UserInputError(f"--storage {url}: not a storage URL; use {FORMS}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _folder_exists(url, Path(parsed.database).parent)


def _folder_exists(url: str, folder: Path) -> None:
    if not folder.is_dir():
        raise UserInputError(f"--storage {url}: folder {folder} does not exist; create it first")


def open_storage(url: str | None, run_dir: Path, heartbeat_s: int = 30) -> BaseStorage:
    """Open (and create) the storage, or refuse a malformed or unreachable one with one line.
    Only the default SQLite file's folder (the run dir) is created here."""
    if url is None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        url = default_url(run_dir)
    else:
        check_url(url)
    if is_journal(url):
        log.warning("--storage %s: a journal file has no trial heartbeats (Optuna %s), so a trial left RUNNING "
                    "by a killed worker stays RUNNING and is not retried; its budget is not spent", url,
                    optuna.__version__)
        return open_journal(url)
    try:
        with _creation_lock(url):
            storage = _open(url, heartbeat_s)
    except ImportError as exc:
        driver = exc.name or make_url(url).drivername  # Optuna re-raises the driver's ImportError without a name
        raise UserInputError(f"--storage {url}: its database driver is not installed ({driver})") from None
    except Exception as exc:  # sqlalchemy raises many kinds; the user needs one line
        raise UserInputError(f"--storage {url}: cannot open the Optuna storage ({_reason(exc)})") from None
    return storage


def open_existing(url: str) -> BaseStorage:
    """Open a storage that already exists, to read it (reports): a missing SQLite or journal file is
    refused in one line, never created empty."""
    if is_journal(url):
        return open_journal(url, create=False)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise UserInputError(f"--storage {url}: no such database file")
    try:
        storage = RDBStorage(url)
        storage.get_all_studies()
    except Exception as exc:  # sqlalchemy raises many kinds; the user needs one line
        raise UserInputError(f"--storage {url}: cannot read the Optuna storage ({_reason(exc)})") from None
    return storage


def _reason(exc: Exception) -> str:
    """An exception's first line (its type's name if it has no message), at most 200 characters."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return reason[:200]


def open_journal(path: str, create: bool = True) -> JournalStorage:
    """The journal file's storage; ``create=False`` (reports) refuses a missing file rather than
    leave an empty one behind."""
    if not create and not Path(path).is_file():
        raise UserInputError(f"--storage {path}: no such journal file")
    try:
        return JournalStorage(JournalFileBackend(path))
    except OSError as exc:
        raise UserInputError(f"--storage {path}: cannot open the journal file ({exc.strerror})") from None


@contextmanager
def _creation_lock(url: str) -> Iterator[None]:
    """Two workers starting at once on a new SQLite file would both create its schema."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        yield
        return
    db = Path(parsed.database)
    with file_lock(db.with_name(db.name + ".lock")):
        yield


class HeartbeatStorage(RDBStorage):
    """RDBStorage that also fails a RUNNING trial which never recorded a heartbeat.

    Optuna fails a trial by its stale heartbeat row only, so a worker killed between asking for a
    trial and its heartbeat thread's first beat (milliseconds) left a trial RUNNING that no rerun
    failed or retried. Such a trial older than the grace period is stale too: a live worker beats
    at once. Its start is the asking worker's clock, so it is compared with this one's."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        grace = timedelta(seconds=self.grace_period or 2 * (self.heartbeat_interval or 0))
        session = self.scoped_session()
        try:  # Optuna's own table; its storage API does not expose heartbeats
            beating = {tid for (tid,) in session.query(rdb_models.TrialHeartbeatModel.trial_id)
                       .join(rdb_models.TrialModel)
                       .filter(rdb_models.TrialModel.study_id == study_id)}
        finally:
            session.close()
        now = datetime.now()
        silent = [t for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
                  if t._trial_id not in beating and t.datetime_start is not None and now - t.datetime_start > grace]
        if silent:
            log.warning("trial(s) %s RUNNING with no heartbeat since they started (their worker died before its "
                        "first beat): failed as stale", ", ".join(str(t.number) for t in silent))
        return stale + [t._trial_id for t in silent if t._trial_id not in stale]


def _open(url: str, heartbeat_s: int) -> RDBStorage:
    # a schema race resolves on retry: another worker, machine, dashboard or report reader that
    # opened the same new database a moment earlier is creating its tables ("already exists")
    for attempt in range(3):
        try:
            storage = HeartbeatStorage(
                url,
                engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True},
                heartbeat_interval=heartbeat_s,
                grace_period=2 * heartbeat_s,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
            )
            storage.get_all_studies()  # forces a real connection now, not at the first trial
            return storage
        except Exception as exc:
            racing = "IntegrityError" in type(exc).__name__ or "already exists" in str(exc)
            if not racing or attempt == 2:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def used_budget(t: optuna.trial.FrozenTrial) -> bool:
    """Counts as one of the budget's trials (autotune/trial_record.py says which)."""
    return TrialRecord.from_trial(t).used_budget


def spent_time(t: optuna.trial.FrozenTrial) -> bool:
    """Its time counts in the time budget and the sweep's length (autotune/trial_record.py)."""
    return TrialRecord.from_trial(t).spent_time


def fail_reason(t: optuna.trial.FrozenTrial) -> str:
    """Why a trial did not complete: its error, or the stop signal that ended it ("" if neither)."""
    return TrialRecord.from_trial(t).reason


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that used up budget: the trial count (the time budget counts ``spent_time`` ones)."""
    return [t for t in study.get_trials(deepcopy=False) if used_budget(t)]


def finished_count(study: optuna.Study) -> int:
    return len(finished(study))


def stored_study(storage: BaseStorage, name: str) -> tuple[dict, int] | None:
    """An existing study's user attrs and finished-trial count, read without creating the study
    (None if there is no such study yet), so a run can refuse to resume it before any work."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    trials = storage.get_all_trials(study_id, deepcopy=False)
    return storage.get_study_user_attrs(study_id), sum(used_budget(t) for t in trials)
