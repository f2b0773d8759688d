"""The sweep with real processes, a real sqlite Optuna storage and a tiny random teacher."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from autotune.budget import spent_s
from autotune.trial_record import TrialRecord
from tests.conftest import ROOT

optuna.logging.set_verbosity(optuna.logging.WARNING)
RECIPE = {"teacher_epochs": 1, "max_train_examples": 200, "kd_epochs": 1, "redistill_epochs": 1}
# tests about other things re-time the pick once (the preset's 3 rounds: tests/test_retime.py); each round
# starts three pools, the baseline's importing torch: ~11 s a round on 2 cores
RETIME_ONCE = ("--retime-rounds", "1")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tokenizer):
    """A tiny random BERT teacher (with the packaged tokenizer) and a shared artifact cache."""
    return tiny_root(tmp_path_factory.mktemp("sweep"), tokenizer, RECIPE)


def tiny_root(root: Path, tokenizer, recipe: dict) -> Path:
    """``root/teacher`` (tiny, random, seeded) and ``root/recipe.json``, for sweeps on real processes."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=128, num_labels=2)
    BertForSequenceClassification(cfg).save_pretrained(root / "teacher")
    tokenizer.save_pretrained(root / "teacher")
    (root / "recipe.json").write_text(json.dumps(recipe))
    return root


def sweep_args(tiny: Path, data_dir: Path, run: str, *extra: str, weak_ok: bool = True) -> list[str]:
    """The tiny random teacher is no better than chance: sweeps that test other things allow it."""
    floor = [] if "--floor" in extra else ["--floor-below-teacher", "100"]
    floor += ["--allow-weak-teacher"] if weak_ok else []
    return [sys.executable, str(ROOT / "run_sweep.py"), "sweep", "--task", "sst2", "--data-dir", str(data_dir),
            "--teacher", str(tiny / "teacher"), "--recipe-json", str(tiny / "recipe.json"),
            "--run-dir", str(tiny / run), "--cache-dir", str(tiny / "cache"), "--student-layers", "2,1",
            "--heads", "4,2", "--ffn", "64", "--engines", "ort-fp32", "--batch-sizes", "16",
            "--layouts", "1x1,2x1", "--eval-limit", "48", "--heartbeat", "1", *floor, *RETIME_ONCE, *extra]


def run_sweep(*args, timeout=600):
    env = dict(os.environ, FASTFORMERS_LOCK_DIR=str(Path(args[0][args[0].index("--run-dir") + 1]).parent))
    return subprocess.run(args[0], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def load(tiny: Path, run: str) -> optuna.Study:
    return optuna.load_study(study_name="sst2-quick", storage=f"sqlite:///{tiny / run / 'study.db'}")


def wait_for(tiny: Path, run: str, proc: subprocess.Popen, until, timeout_s: float = 400) -> list:
    """Poll the running sweep's storage until ``until(trials)`` holds (or the sweep or the time ends)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            trials = load(tiny, run).get_trials(deepcopy=False)
        except Exception:  # the storage or the study is not created yet
            continue
        if until(trials):
            return trials
    return []


def states(study):
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_sweep_end_to_end_writes_deploy_config_and_failed_trial_reason(tiny, data_dir):
    out = run_sweep(sweep_args(tiny, data_dir, "e2e", "--n-trials", "4", "--engines", "ort-fp32,ort-cuda-fp16"))
    assert out.returncode == 0, out.stderr[-3000:]
    st = load(tiny, "e2e")
    failed = [t for t in st.trials if t.state.name == "FAIL"]
    complete = [t for t in st.trials if t.state.name == "COMPLETE"]
    assert len(failed) + len(complete) == 4 and complete
    assert failed, "the seeded sampler picks the CUDA engine at least once"
    assert all("CUDA" in TrialRecord.from_trial(t).error for t in failed)  # the reason is stored, the sweep went on
    cfg = json.loads((tiny / "e2e" / "deploy" / "sst2.json").read_text())
    assert cfg["runtime"]["engine"] == "ort-fp32"
    assert 0.0 <= cfg["heldout_score"] <= 1.0 and cfg["throughput"] > 0
    assert cfg["hardware_id"] and cfg["core_sets"]
    import torch  # where the shipped model was trained, read back from its cache entry

    assert cfg["built_with"]["torch"] == torch.__version__ and cfg["built_with"]["cpu"]
    # the pick was re-scored held out against the teacher's own held-out score (floor: teacher − 100 points)
    assert cfg["heldout_confirmed"] is True and cfg["heldout_checks"][-1]["trial"] == cfg["trial"]
    assert cfg["retimed"]["rounds"] == 1 and "re-timed beside each other (1 round): pick" in out.stderr
    assert cfg["heldout_floor"] == pytest.approx(cfg["teacher_heldout_score"] - 1.0)
    assert st.user_attrs["teacher_heldout"]["accuracy"] == cfg["teacher_heldout_score"]
    refs = st.user_attrs["references"]
    assert refs["baseline"]["runtime"]["padding"] == "fixed" and refs["baseline"]["runtime"]["batch_size"] == 1
    # deploy picks the config for this hardware
    dep = subprocess.run([sys.executable, str(ROOT / "run_sweep.py"), "deploy", "--results", str(tiny / "e2e"),
                          "--task", "sst2"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert dep.returncode == 0, dep.stderr
    assert json.loads(dep.stdout)["trial"] == cfg["trial"]


def test_kill_9_then_rerun_loses_nothing_and_finishes_budget(tiny, data_dir):
    # its own seed: nothing cached, so trials take long enough to be caught mid-run
    args = sweep_args(tiny, data_dir, "killed", "--n-trials", "5", "--seed", "1")
    env = dict(os.environ, FASTFORMERS_LOCK_DIR=str(tiny))
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        trials = wait_for(tiny, "killed", proc, lambda ts: any(t.state.name == "COMPLETE" for t in ts)
                          and any(t.state.name == "RUNNING" for t in ts))
        before = {t.number: t.values for t in trials if t.state.name == "COMPLETE"}
        assert proc.poll() is None, "the sweep ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert before, "no completed trial before the kill"
    time.sleep(3)  # heartbeat grace period (2 × 1 s)
    out = run_sweep(args)
    assert out.returncode == 0, out.stderr[-3000:]
    st = load(tiny, "killed")
    after = {t.number: t.values for t in st.trials if t.state.name == "COMPLETE"}
    assert all(after[n] == v for n, v in before.items())  # no completed trial lost or changed
    assert len(after) == 5  # the budget is finished
    stale = [t for t in st.trials if t.state.name == "FAIL"]
    assert stale and all(TrialRecord.from_trial(t).error is None for t in stale)  # the killed trial, failed by heartbeat
    assert "RUNNING" not in states(st)


def test_sigterm_finishes_the_running_trial_then_writes_the_pick(tiny, data_dir):
    """A scheduler's SIGTERM mid-trial: that trial completes, no more start, the pick is still written."""
    args = sweep_args(tiny, data_dir, "stopped", "--n-trials", "6", "--seed", "2")
    env = dict(os.environ, FASTFORMERS_LOCK_DIR=str(tiny))
    log = tiny / "stopped.log"  # a file, not a pipe: an unread pipe would fill up and stall the sweep
    with open(log, "w") as fh:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=fh)
        try:
            trials = wait_for(tiny, "stopped", proc, lambda ts: any(t.state.name == "RUNNING" for t in ts))
            running = next((t.number for t in trials if t.state.name == "RUNNING"), None)
            assert running is not None and proc.poll() is None, "no running trial to stop"
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=400)
        finally:
            proc.kill()
    err = log.read_text()
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM: stopping after the running trial" in err
    st = load(tiny, "stopped")
    assert st.trials[running].state.name == "COMPLETE"  # the trial it was in finished
    assert len(st.trials) < 6 and "RUNNING" not in states(st)
    assert (tiny / "stopped" / "deploy" / "sst2.json").exists()


def test_second_sigterm_stops_the_trial_between_steps_and_queues_it_again(tiny, data_dir):
    """Two signals while a step builds: that step is cached, the trial stops before the next one, is
    failed with the reason, its time counts, and its point reruns first from the cached steps."""
    slow = tiny / "slow.json"  # a student step long enough to be caught while it builds
    # at chance, a tiny student stops early after 3 evaluations: more rows per epoch keep it building for
    # seconds, not the 0.2 s in which both signals could miss it
    slow.write_text(json.dumps({**RECIPE, "kd_epochs": 30, "max_train_examples": 8000, "kd_transfer_examples": None}))
    # every trial: student, then prune and re-distil
    common = ("--seed", "3", "--recipe-json", str(slow), "--student-layers", "1", "--heads", "2")
    args = sweep_args(tiny, data_dir, "stepstop", "--n-trials", "3", *common)
    env = dict(os.environ, FASTFORMERS_LOCK_DIR=str(tiny))
    log = tiny / "stepstop.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=fh)
        try:
            deadline = time.time() + 300
            while "step student (" not in log.read_text() and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None, "the sweep ended before its student step"
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=400)
        finally:
            proc.kill()
    err = log.read_text()
    # nothing completed yet, so there is no pick: the sweep says so and exits 1, as any run without one
    assert proc.returncode == 1 and "no deployment config written" in err, err[-3000:]
    assert "SIGTERM again: stopping the running trial before it builds another step" in err
    st = load(tiny, "stepstop")
    (stopped,) = [t for t in st.trials if t.state.name == "FAIL"]
    record = TrialRecord.from_trial(stopped)
    assert record.error is None and "before building step" in record.stopped
    assert "step student" not in record.stopped  # the step it was in finished and was cached
    (queued,) = [t for t in st.trials if t.state.name == "WAITING"]
    assert TrialRecord.from_trial(queued).requeued_from == stopped.number
    assert not [t for t in st.trials if t.state.name == "COMPLETE"]
    spent = (stopped.datetime_complete - stopped.datetime_start).total_seconds()
    assert spent_s(st) == pytest.approx(spent)  # its time counts, though it is not a finished trial
    out = run_sweep(sweep_args(tiny, data_dir, "stepstop", "--n-trials", "1", *common))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "step student: cache hit" in out.stderr
    st = load(tiny, "stepstop")
    rerun = st.trials[queued.number]
    assert rerun.state.name == "COMPLETE" and rerun.params == stopped.params
    from reports.length import sweep_length
    from reports.load import trials_frame

    length = sweep_length(trials_frame(st, "sst2", "accuracy"))  # the report counts as the budget does
    assert length.trials == 1 and sum(x.trials for x in length.stretches) == 2  # the stopped trial's time too
    assert length.seconds == pytest.approx(spent_s(st), abs=2.0)  # the report keeps whole seconds
    assert (tiny / "stepstop" / "deploy" / "sst2.json").exists()


def test_timeout_is_per_run_and_time_budget_counts_every_run(tiny, data_dir):
    def finished(run):
        return sum(s == "COMPLETE" for s in states(load(tiny, run)))

    out = run_sweep(sweep_args(tiny, data_dir, "budget", "--n-trials", "20", "--timeout", "1", "--no-report"))
    assert out.returncode == 0, out.stderr[-3000:]
    first = finished("budget")
    assert 1 <= first < 20  # Optuna checks --timeout between trials: it stopped after the trial that crossed 1 s
    # a resume whose study-wide time budget the first run already spent runs nothing and keeps the pick
    spent = spent_s(load(tiny, "budget"))  # the stored start-to-end times of its trials
    assert spent > 0
    out = run_sweep(sweep_args(tiny, data_dir, "budget", "--n-trials", "20", "--time-budget", f"{spent / 2:.3f}",
                               "--no-report"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "already used; nothing to run" in out.stderr, out.stderr[-3000:]
    assert finished("budget") == first and (tiny / "budget" / "deploy" / "sst2.json").exists()


def test_two_workers_share_one_study(tiny, data_dir):
    env = dict(os.environ, FASTFORMERS_LOCK_DIR=str(tiny))
    args = sweep_args(tiny, data_dir, "two", "--n-trials", "4", "--no-report")
    procs = [subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs[0][-2000:] + errs[1][-2000:]
    st = load(tiny, "two")
    numbers = [t.number for t in st.trials]
    assert len(numbers) == len(set(numbers))
    assert sum(s == "COMPLETE" for s in states(st)) >= 4
    assert "RUNNING" not in states(st)


@pytest.mark.parametrize("extra, message", [
    (["--heads", ""], "search space: heads_kept is empty"),
    (["--layouts", "2x2"], "2 instances x 2 threads needs 4 physical cores; this machine has 2"),
    (["--storage", "postgresql://nobody@127.0.0.1:1/x"], "cannot open the Optuna storage"),
    (["--time-budget", "0"], "--time-budget 0: must be a positive number of seconds"),
    (["--retime-rounds", "0"], "--retime-rounds 0: must be 1 or more rounds"),
    (["--floor", "0.99"], "is above the teacher's own dev score"),  # last: it trains the teacher first
])
def test_bad_input_is_refused_with_one_line(tiny, data_dir, extra, message):
    out = run_sweep(sweep_args(tiny, data_dir, "bad", "--n-trials", "1", *extra))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert message in lines[-1] and lines[-1].startswith("error: ")
    assert not any("Traceback" in ln for ln in lines)
    if "--floor" not in extra:  # refused before any work: nothing trained, nothing stored
        assert not (tiny / "bad" / "study.db").exists() or "--storage" in extra


def _study_from_another_machine(tiny: Path, run: str, config: dict | None = None) -> str:
    """A stored study as another machine would leave it: its hardware attr and one finished trial
    (and the config attr a run stores, where given)."""
    (tiny / run).mkdir()
    url = f"sqlite:///{tiny / run / 'study.db'}"
    study = optuna.create_study(storage=url, study_name="sst2-quick", directions=["maximize", "maximize"])
    study.set_user_attr("hardware", {"cpu_model": "Intel Xeon", "cores": [[0, 1]] * 8, "hash": "0123456789ab"})
    if config is not None:
        study.set_user_attr("config", config)
    study.add_trial(optuna.trial.create_trial(values=[0.9, 100.0], params={}, distributions={}))
    return url


def test_resuming_with_another_floor_is_refused(tiny, data_dir):
    """Stored trials hold constraints against the floor they ran under: a new floor would mix them."""
    _study_from_another_machine(tiny, "refloored", config={"floor": {"absolute": None, "below_teacher": 100.0}})
    out = run_sweep(sweep_args(tiny, data_dir, "refloored", "--n-trials", "2", "--floor", "0.5"))
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert "its 1 finished trials ran with other settings" in line
    assert ('--floor/--floor-below-teacher {"absolute": null, "below_teacher": 100.0} then, '
            '{"absolute": 0.5, "below_teacher": null} now') in line
    assert len(load(tiny, "refloored").trials) == 1


def test_resume_keeps_the_study_definition_and_lets_budgets_and_space_change(tiny, caplog):
    from dataclasses import replace

    from autotune.hardware import detect
    from autotune.space import SearchSpace
    from autotune.storage import open_storage
    from autotune.sweep import Sweep, SweepConfig
    from compress.errors import UserInputError

    first = SweepConfig(task="sst2", run_dir=str(tiny / "defined"), study_name="sst2-quick",  # kept with --preset
                        recipe={"kd_epochs": 1}, n_trials=5,
                        space=SearchSpace(student_layers=(2, 1), heads_kept=(4,), ffn_kept=(64,)))
    url = _study_from_another_machine(tiny, "defined", config=json.loads(json.dumps(first.to_dict())))
    optuna.load_study(study_name="sst2-quick", storage=url).set_user_attr("hardware", detect().fingerprint())
    storage = open_storage(url, tiny / "defined")
    Sweep(replace(first, n_trials=50, timeout_s=60.0, time_budget_s=600.0, confirm_top=0)).check_resume(storage)
    wider = SearchSpace(student_layers=(2, 1, 3), heads_kept=(4,), ffn_kept=(64,))
    Sweep(replace(first, space=wider)).check_resume(storage)
    assert "search space differs" in caplog.text
    for changed, words in ((dict(recipe={"kd_epochs": 2}), "--recipe-json/--teacher"), (dict(seed=1), "--seed"),
                           (dict(preset="overnight"), "--preset"), (dict(objective="throughput"), "--objective"),
                           (dict(p99_limit_ms=5.0), "--p99-limit-ms"), (dict(eval_limit=10), "--eval-limit")):
        with pytest.raises(UserInputError, match=words) as err:
            Sweep(replace(first, **changed)).check_resume(storage)
        assert "\n" not in str(err.value) and "1 finished trials ran with other settings" in str(err.value)


def test_resuming_a_study_timed_on_other_hardware_is_refused(tiny, data_dir):
    _study_from_another_machine(tiny, "other")
    out = run_sweep(sweep_args(tiny, data_dir, "other", "--n-trials", "2"))
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert "its 1 finished trials were timed on Intel Xeon, 8 cores (0123456789ab)" in line
    assert "--allow-other-hardware" in line
    assert len(load(tiny, "other").trials) == 1  # nothing added, nothing lost


def test_other_hardware_is_resumed_when_allowed(tiny, caplog):
    from autotune.storage import open_storage
    from autotune.sweep import Sweep, SweepConfig
    from compress.errors import UserInputError

    url = _study_from_another_machine(tiny, "allowed")
    storage = open_storage(url, tiny / "allowed")
    with pytest.raises(UserInputError):
        Sweep(SweepConfig(task="sst2", run_dir=str(tiny / "allowed"))).check_resume(storage)
    Sweep(SweepConfig(task="sst2", run_dir=str(tiny / "allowed"), allow_other_hardware=True)).check_resume(storage)
    assert "were timed on Intel Xeon" in caplog.text
