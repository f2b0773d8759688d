"""Storage forms as users run them: two sweep workers (separate processes, one killed with kill -9
mid-trial) on one study in a real, throwaway PostgreSQL server; a sweep on a journal file; the
studies opened by the real optuna-dashboard server; bad ``--storage`` values refused before
anything is created."""
from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import optuna
import pytest
import sqlalchemy
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from autotune.storage import finished_count, open_storage
from autotune.study import open_study
from autotune.trial_record import TrialRecord
from tests.conftest import ROOT
from tests.test_sweep import run_sweep, sweep_args, tiny  # noqa: F401 -- tiny: the tiny teacher fixture

STUDY = "sst2-quick"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path:
    """The server's binaries: on PATH, or where Debian's package puts them (not on PATH)."""
    found = shutil.which("initdb") or max(glob.glob("/usr/lib/postgresql/*/bin/initdb"), default=None,
                                          key=lambda p: int(Path(p).parts[-3].split(".")[0]))
    if not found:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under "
                    "/usr/lib/postgresql/*/bin: run `make test`, which installs them")
    return Path(found).resolve().parent


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway server on a free local port; yields the URL of an empty database in it. initdb and
    postgres refuse to run as root, so as root they run as ``postgres`` (Debian's package creates it)
    or ``nobody``. The data dir is not under pytest's base temp dir: that is private to its owner
    (mode 0700), so the server's user could not enter it."""
    bindir, port = pg_bindir(), free_port()
    user = None
    if os.geteuid() == 0:
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        assert user, "running as root, and no postgres or nobody user to run the server as"
    as_user = ["runuser", "-u", user, "--"] if user else []
    root = Path(tempfile.mkdtemp(prefix="pg-"))
    data, log = root / "data", root / "server.log"
    try:
        if user:
            os.chown(root, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
        init = subprocess.run([*as_user, bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E",
                               "UTF8", "--no-sync"], capture_output=True, text=True, timeout=120)
        assert init.returncode == 0, init.stderr
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = subprocess.run([*as_user, bindir / "pg_ctl", "-D", data, "-l", log, "-o", opts, "-w", "-t", "60",
                                "start"], capture_output=True, text=True, timeout=120)
        assert start.returncode == 0, start.stderr + (log.read_text() if log.exists() else "")
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE sweep")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/sweep"
    finally:
        subprocess.run([*as_user, bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        return bool(pwd.getpwnam(name))
    except KeyError:
        return False


def worker(args: list[str], log: Path, tiny: Path) -> subprocess.Popen:
    """One sweep worker in its own process group (so kill -9 takes its timing processes too)."""
    env = dict(os.environ, FASTFORMERS_LOCK_DIR=str(tiny))
    with open(log, "w") as fh:  # a file, not a pipe: an unread pipe would fill up and stall the worker
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def poll(read, until, procs: dict[Path, subprocess.Popen], timeout_s: float = 400):
    """``read()`` from the server until ``until`` holds for it; fails with the workers' logs if one
    ends first or the time runs out."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and all(p.poll() is None for p in procs.values()):
        try:
            value = read()
            if until(value):
                return value
        except KeyError:  # the study is not created yet
            pass
        time.sleep(0.1)
    pytest.fail("the workers never reached the state waited for:\n" + "\n".join(
        f"--- {log.name} (exit {p.poll()}):\n{log.read_text()[-2500:]}" for log, p in procs.items()))


def states(trials) -> list[str]:
    return [t.state.name for t in trials]


def beating(server: RDBStorage, trials) -> bool:
    """Every RUNNING trial has recorded a heartbeat, so the kill tests the heartbeat path (a trial
    killed before its first beat is failed by its start time instead: the test below)."""
    with server.engine.connect() as conn:  # Optuna's own table; its storage API does not expose heartbeats
        ids = {row[0] for row in conn.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))}
    return all(t._trial_id in ids for t in trials if t.state.name == "RUNNING")


@contextmanager
def dashboard(storage: str) -> Iterator[str]:
    """The real optuna-dashboard server on a free local port; yields its base URL."""
    exe = Path(sys.executable).with_name("optuna-dashboard")
    assert exe.exists(), f"{exe} missing: pip install -e . (pyproject lists optuna-dashboard)"
    port = free_port()
    proc = subprocess.Popen([exe, storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/meta", timeout=2)
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, proc.communicate(timeout=5)[1][-2000:]
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def dashboard_trials(storage: str, name: str = STUDY) -> int:
    """How many trials optuna-dashboard shows for the study, read through its HTTP API."""
    with dashboard(storage) as base:
        studies = json.load(urllib.request.urlopen(f"{base}/api/studies", timeout=30))["study_summaries"]
        (study,) = [s for s in studies if s["study_name"] == name]
        detail = json.load(urllib.request.urlopen(f"{base}/api/studies/{study['study_id']}", timeout=60))
    return len(detail["trials"])


def fast(tiny: Path) -> tuple[str, ...]:
    """Sweep options for tests about the storage, not the models: the tiny recipe without the teacher
    fine-tune and the quick preset's minimum KD steps, a small held-out split, no report."""
    recipe = tiny / "fast.json"
    recipe.write_text(json.dumps({**json.loads((tiny / "recipe.json").read_text()), "teacher_epochs": 0,
                                  "kd_min_steps": 0}))
    return "--recipe-json", str(recipe), "--holdout-fraction", "0.1", "--no-report"


def report(run: Path, storage: str) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "run_sweep.py"), "report", "--run", str(run),
                          "--storage", storage], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (run / "report" / "report.html").is_file()


@pytest.mark.parametrize("storage, message", [
    ("{tmp}/nowhere/dir/x.db", "not a storage URL; use sqlite:///PATH.db"),
    ("sqlite:///{tmp}/nowhere/dir/x.db", "folder {tmp}/nowhere/dir does not exist; create it first"),
    ("{tmp}/nowhere/study.log", "folder {tmp}/nowhere does not exist; create it first"),
    ("mongodb://127.0.0.1/x", "unknown scheme mongodb; use sqlite:///PATH.db"),
])
def test_bad_storage_is_refused_before_anything_is_created(tiny, data_dir, capsys, storage, message):
    """The real command line, in-process (a process each would spend its time importing torch)."""
    from autotune.cli import main

    tmp = tiny / "refused"
    tmp.mkdir(exist_ok=True)
    storage, message = storage.format(tmp=tmp), message.format(tmp=tmp)
    files = set(tiny.rglob("*"))
    code = main(sweep_args(tiny, data_dir, "refused/run", "--n-trials", "1", "--storage", storage)[2:])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"error: --storage {storage}: {message}") and "\n" not in err, err
    assert set(tiny.rglob("*")) == files  # no storage folder, no run dir, no cache


def test_two_workers_on_postgres_survive_kill_9_mid_trial(tiny, data_dir, postgres):
    """As across machines: each worker has its own run dir, both share the study on the server. One
    is killed with its trial RUNNING and the other goes on; the server then holds every completed
    trial once, the killed trial failed by its heartbeat and retried, and the budget done; the report
    and optuna-dashboard read the study from the server."""
    n = 6
    args = {run: sweep_args(tiny, data_dir, run, "--storage", postgres, "--n-trials", str(n), "--seed", "7",
                            *fast(tiny)) for run in ("pg-a", "pg-b")}
    logs = {run: tiny / f"{run}.log" for run in args}
    server = RDBStorage(postgres)  # the schema, as an admin would create it; and our view of the server
    study_id = lambda: server.get_study_id_from_name(STUDY)  # noqa: E731 -- KeyError until created
    procs = {logs["pg-a"]: worker(args["pg-a"], logs["pg-a"], tiny)}
    try:
        # the second worker joins once the first stored the study's references: it reuses them
        poll(lambda: server.get_study_user_attrs(study_id()), lambda attrs: "references" in attrs, procs)
        procs[logs["pg-b"]] = worker(args["pg-b"], logs["pg-b"], tiny)
        # both in a trial (each runs one at a time) and one done, with budget left for the survivor to
        # start trials past the heartbeat grace period (2 s): there it fails the stale trial
        trials = poll(lambda: server.get_all_trials(study_id(), deepcopy=False),
                      lambda ts: states(ts).count("RUNNING") == 2 and "COMPLETE" in states(ts) and beating(server, ts)
                      or states(ts).count("COMPLETE") > n - 3, procs)
        assert states(trials).count("COMPLETE") <= n - 3, "the workers never ran trials side by side"
        a = procs.pop(logs["pg-a"])
        os.killpg(a.pid, signal.SIGKILL)
        a.wait()
        trials = server.get_all_trials(study_id())
        before = {t.number: t.values for t in trials if t.state.name == "COMPLETE"}
        running = {t.number for t in trials if t.state.name == "RUNNING"}  # the killed worker's among them
        b = procs[logs["pg-b"]]
        assert b.wait(timeout=400) == 0, logs["pg-b"].read_text()[-3000:]
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    study = optuna.load_study(study_name=STUDY, storage=postgres)
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in trials] == list(range(len(trials)))  # no duplicate (or missing) trial number
    assert all(trials[k].state.name == "COMPLETE" and trials[k].values == v for k, v in before.items())
    (stale,) = [t for t in trials if t.state.name == "FAIL"]
    assert stale.number in running and TrialRecord.from_trial(stale).error is None  # failed by its heartbeat
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == stale.number]
    # retried from the parameters it had drawn when it was killed
    assert retry.state.name == "COMPLETE" and stale.params.items() <= retry.params.items()
    assert finished_count(study) == n and "RUNNING" not in states(trials)
    report(tiny / "pg-b", postgres.replace("+psycopg", ""))  # plain postgresql:// picks psycopg 3 too
    assert dashboard_trials(postgres) == len(trials)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed_and_retried(tmp_path, backend, request):
    """Optuna fails a RUNNING trial only by a stale heartbeat row; one asked for by a worker killed
    before its heartbeat thread's first beat has none. A rerun fails it once it is older than the
    grace period and re-queues its parameters; a trial asked for just now is left running."""
    url = request.getfixturevalue("postgres") if backend == "postgres" else None
    storage = open_storage(url, tmp_path, heartbeat_s=1)  # grace period 2 s
    name = f"silent-{backend}"
    study = open_study(storage, name, multi=True, seed=0, n_trials=4)
    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    dead = study.ask(space)  # asked, never beaten: no heartbeat thread runs outside optimize()
    time.sleep(2.5)
    live = study.ask(space)
    rerun = open_study(storage, name, multi=True, seed=0, n_trials=4)
    by_number = {t.number: t for t in rerun.get_trials(deepcopy=False)}
    assert by_number[dead.number].state.name == "FAIL" and by_number[live.number].state.name == "RUNNING"
    (retry,) = [t for t in by_number.values() if t.system_attrs.get("failed_trial") == dead.number]
    assert retry.state.name == "WAITING" and retry.params == by_number[dead.number].params


def test_sweep_on_a_journal_file_reports_and_opens_in_the_dashboard(tiny, data_dir):
    run = tiny / "journal"
    run.mkdir()
    journal = str(run / "study.log")
    out = run_sweep(sweep_args(tiny, data_dir, "journal", "--storage", journal, "--n-trials", "2", *fast(tiny)))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "a journal file has no trial heartbeats" in out.stderr
    study = optuna.load_study(study_name=STUDY, storage=JournalStorage(JournalFileBackend(journal)))
    assert finished_count(study) == 2 and "RUNNING" not in states(study.trials)
    report(run, journal)
    assert dashboard_trials(journal) == len(study.trials)


def test_dashboard_opens_the_default_sqlite_study(tmp_path):
    """The README's command on the default storage our code creates in a run dir."""
    study = optuna.create_study(storage=open_storage(None, tmp_path / "run"), study_name="t",
                                directions=["maximize", "maximize"])
    study.set_user_attr("hardware", {"cores": [[0, 1]]})
    study.add_trial(optuna.trial.create_trial(values=[0.9, 100.0], params={}, distributions={}))
    assert dashboard_trials(f"sqlite:///{tmp_path / 'run' / 'study.db'}", "t") == 1
