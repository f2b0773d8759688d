"""The suite: records and table from hand-made outcomes, refusals before any work, one task's
failure or refusal not stopping the others, and kill -9 then rerun with real processes."""
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

from autotune.outcome import SweepOutcome
from autotune.commands.sweep_cmd import config_from_args
from autotune.suite import Suite, SuiteRecord
from autotune.suite import run_suite as _run_suite
from compress.errors import UserInputError
from compress.intervals import Interval
from tests.conftest import ROOT
from tests.test_sweep import RETIME_ONCE

optuna.logging.set_verbosity(optuna.logging.WARNING)
# the plain one-epoch teacher fine-tune (no data-sized schedule, no restarts): a tiny teacher is at chance anyway
RECIPE = {"teacher_epochs": 1, "max_train_examples": 200, "kd_epochs": 1, "redistill_epochs": 1,
          "teacher_min_steps": 0, "teacher_restarts": 1}


def outcome(task: str, run_dir: Path, **kw) -> SweepOutcome:
    base = dict(task=task, metric="accuracy", run_dir=str(run_dir), trivial_kind="majority class (entailment)",
                trivial_heldout=Interval(0.5, 0.32, 0.68, 28), teacher_heldout=Interval(0.82, 0.68, 0.93, 28),
                pick_heldout=Interval(0.79, 0.64, 0.93, 28), speedup_vs_baseline=12.34,
                speedup_vs_int8_teacher=2.5, heldout_confirmed=True, notes=("a note",))
    return SweepOutcome(**{**base, **kw})


def run_suite(args):
    return _run_suite(args, config_from_args)


def parse(*argv: str):
    from autotune.cli import build_parser

    return build_parser().parse_args(["suite", *argv])


def test_record_round_trip_and_table_from_hand_made_outcomes(tmp_path):
    from reports.suite import write, write_markdown

    cb = SuiteRecord.from_outcome(outcome("cb", tmp_path / "cb"))
    wic = SuiteRecord.from_outcome(outcome("wic", tmp_path / "wic", pick_heldout=None, heldout_confirmed=None,
                                           refused="teacher not better than chance | beyond noise"))
    assert SuiteRecord.from_dict(json.loads(json.dumps(cb.to_dict()))) == cb
    assert cb.published.teacher_dev == 87.96 and cb.teacher_heldout.units == 28
    suite = Suite(("cb", "wic", "multirc"), (cb, wic), "quick")
    suite.write(tmp_path)
    assert Suite.read(tmp_path) == suite
    md = write_markdown(tmp_path).read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert "82.0 (95% 68.0–93.0, n=28)" in rows["cb"] and "12.3×" in rows["cb"] and "2.5×" in rows["cb"]
    assert "majority class (entailment): 50.0" in rows["cb"] and "87.96" in rows["cb"]
    assert "held-out confirmed" in rows["cb"]
    assert "teacher not better than chance \\| beyond noise" in rows["wic"] and "72.41" in rows["wic"]
    assert "not run yet" in rows["multirc"] and "Table 1, BERT-base teacher, SuperGLUE dev" in md
    html = write(tmp_path)["html"].read_text()
    assert "<table>" in html and "Suite (quick preset): 2 of 3 tasks run" in html and "<script" not in html


def test_unknown_task_is_refused_before_any_work(tmp_path, data_dir):
    run = tmp_path / "suite"
    out = subprocess.run([sys.executable, str(ROOT / "run_sweep.py"), "suite", "--tasks", "cb,nosuchtask",
                          "--data-dir", str(data_dir), "--run-dir", str(run)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --tasks nosuchtask: unknown task 'nosuchtask'")
    assert not run.exists()


@pytest.mark.parametrize("argv, message", [
    (["--tasks", "cb,copa,cb"], "--tasks cb: task cb is named twice"),
    (["--tasks", " , "], "--tasks: name at least one task"),
    (["--tasks", "missing.json"], "--tasks missing.json: no such custom task spec file"),
    (["--tasks", "cb", "--data-dir", "/nonexistent"], "--data-dir /nonexistent: no such directory"),
    (["--tasks", "cb,sst2", "--data-dir", "{sg}"], "no glue/SST-2 folder for task sst2"),
    (["--tasks", "cb", "--task-spec", "x.json"], "--task-spec/--custom-*"),
    (["--tasks", "cb", "--layouts", "two"], "--layouts two"),
    (["--tasks", "cb", "--n-trials", "0"], "--n-trials 0"),
])
def test_bad_input_is_refused_before_any_folder_is_made(tmp_path, data_dir, argv, message):
    argv = [a.replace("{sg}", str(data_dir / "superglue")) for a in argv]
    if "--data-dir" not in argv:
        argv += ["--data-dir", str(data_dir)]
    with pytest.raises(UserInputError, match=message.replace("*", r"\*")) as err:
        run_suite(parse(*argv, "--run-dir", str(tmp_path / "suite")))
    assert "\n" not in str(err.value) and not (tmp_path / "suite").exists()


class FakeSweep:
    """Stands in for autotune.sweep.Sweep: cb ships, copa refuses as a weak teacher, wic crashes."""
    ran: list[str] = []

    def __init__(self, config):
        self.config = config

    def check_inputs(self, announce=True):
        return None, None

    def run(self):
        task, run_dir = self.config.task, Path(self.config.run_dir)
        FakeSweep.ran.append(task)
        if task == "wic":
            raise RuntimeError("boom\nsecond line")
        refused = "teacher not better than the trivial baseline held out" if task == "copa" else None
        outcome(task, run_dir, refused=refused).write(run_dir)
        if refused:
            raise UserInputError(refused + "; --allow-weak-teacher to go on")
        return {"best": {}}


def test_refusals_and_failures_are_results_and_a_rerun_retries_only_the_failed(tmp_path, data_dir, monkeypatch):
    import autotune.sweep

    monkeypatch.setattr(autotune.sweep, "Sweep", FakeSweep)
    args = parse("--tasks", "cb,copa,wic", "--data-dir", str(data_dir), "--run-dir", str(tmp_path))
    records = run_suite(args)
    assert FakeSweep.ran == ["cb", "copa", "wic"]
    assert [r.refused for r in records] == [None, "teacher not better than the trivial baseline held out",
                                            "failed: RuntimeError: boom"]
    assert not (tmp_path / "wic" / "outcome.json").exists()  # so the rerun retries it
    assert [r.task for r in Suite.read(tmp_path).records] == ["cb", "copa", "wic"]
    assert "failed: RuntimeError: boom" in (tmp_path / "suite.md").read_text()
    assert json.loads((tmp_path / "suite.json").read_text())["records"][0]["pick_heldout"]["value"] == 0.79
    FakeSweep.ran = []
    run_suite(args)
    assert FakeSweep.ran == ["wic"]


def test_a_teacher_only_outcome_finishes_a_teacher_only_suite_but_not_a_full_one(tmp_path, data_dir, monkeypatch):
    import autotune.sweep
    from reports.suite import write_markdown

    monkeypatch.setattr(autotune.sweep, "Sweep", FakeSweep)
    outcome("cb", tmp_path / "cb", pick_heldout=None, heldout_confirmed=None, speedup_vs_baseline=None,
            speedup_vs_int8_teacher=None, teacher_only=True, teacher_beats_trivial=True,
            teacher_minus_trivial=Interval(0.286, 0.071, 0.5, 28),
            teacher_fit="400 steps (57 epochs) x 4 seed(s), kept seed 0").write(tmp_path / "cb")
    FakeSweep.ran = []
    records = run_suite(parse("--tasks", "cb", "--data-dir", str(data_dir), "--run-dir", str(tmp_path),
                              "--teacher-only"))
    assert FakeSweep.ran == [] and records[0].teacher_only and records[0].teacher_minus_trivial.units == 28
    md = write_markdown(tmp_path).read_text()
    assert "teacher only: the teacher beats the trivial baseline beyond noise (teacher − trivial +28.6 points, " \
           "95% +7.1 to +50.0); no student searched; fit: 400 steps" in md
    run_suite(parse("--tasks", "cb", "--data-dir", str(data_dir), "--run-dir", str(tmp_path)))
    assert FakeSweep.ran == ["cb"]  # the full sweep is run: a teacher-only outcome does not finish it


# ------------------------------------------------------------ real processes, tiny random teacher


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tokenizer):
    """A tiny random BERT backbone (with the packaged tokenizer) as the teacher: a fresh head per task
    (CB has 3 labels, COPA 2), at chance on every task."""
    import torch
    from transformers import BertConfig, BertModel

    root = tmp_path_factory.mktemp("suite")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=512)
    BertModel(cfg).save_pretrained(root / "teacher")
    tokenizer.save_pretrained(root / "teacher")
    (root / "recipe.json").write_text(json.dumps(RECIPE))
    return root


def suite_args(tiny: Path, data_dir: Path, run: str, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "run_sweep.py"), "suite", "--data-dir", str(data_dir),
            "--teacher", str(tiny / "teacher"), "--recipe-json", str(tiny / "recipe.json"),
            "--run-dir", str(tiny / run), "--cache-dir", str(tiny / "cache"), "--student-layers", "2,1",
            "--heads", "4,2", "--ffn", "64", "--engines", "ort-fp32", "--batch-sizes", "16", "--layouts", "1x1",
            "--eval-limit", "48", "--heartbeat", "1", "--floor-below-teacher", "100", "--no-report", *RETIME_ONCE, *extra]


def env(tiny: Path) -> dict:
    return dict(os.environ, FASTFORMERS_LOCK_DIR=str(tiny))


def trials(run_dir: Path, task: str) -> list:
    try:
        study = optuna.load_study(study_name=f"{task}-quick", storage=f"sqlite:///{run_dir / task / 'study.db'}")
        return study.get_trials(deepcopy=False)
    except Exception:  # the storage or the study is not created yet
        return []


def test_kill_9_mid_suite_then_rerun_finishes_without_redoing_a_task(tiny, data_dir):
    args = suite_args(tiny, data_dir, "killed", "--tasks", "cb,copa", "--n-trials", "2", "--allow-weak-teacher")
    run = tiny / "killed"
    proc = subprocess.Popen(args, cwd=ROOT, env=env(tiny), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 480
        while time.time() < deadline and proc.poll() is None:
            if (run / "cb" / "outcome.json").exists() and trials(run, "copa"):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the suite ended before it could be killed"
        assert (run / "cb" / "outcome.json").exists() and trials(run, "copa"), "timed out before the kill point"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first = (run / "cb" / "outcome.json").stat().st_mtime_ns
    assert [r.task for r in Suite.read(run).records] == ["cb"]  # written after the first task, before the kill
    time.sleep(3)  # heartbeat grace period (2 × 1 s)
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env(tiny), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "task cb (1/2) already done; skipped" in out.stderr
    assert (run / "cb" / "outcome.json").stat().st_mtime_ns == first  # not rewritten
    suite = Suite.read(run)
    assert [r.task for r in suite.records] == ["cb", "copa"]
    # a random teacher's picks are shipped or refused by the held-out check: either is a finished task
    assert all((r.pick_heldout is not None) != bool(r.refused) and r.teacher_heldout for r in suite.records)
    assert SweepOutcome.read(run / "copa") is not None
    states = [t.state.name for t in trials(run, "copa")]
    assert states.count("COMPLETE") == 2 and "RUNNING" not in states
    assert "| copa |" in out.stdout and "| cb |" in out.stdout  # the table on stdout
    assert (run / "suite.md").read_text().count("| cb |") == 1
    html = (run / "report" / "report.html").read_text()
    assert "Suite (quick preset): 2 of 2 tasks run" in html and "<td>copa</td>" in html


def test_a_refused_task_does_not_stop_the_suite(tiny, data_dir):
    run = tiny / "refused"
    out = subprocess.run(suite_args(tiny, data_dir, "refused", "--tasks", "cb,copa", "--n-trials", "1"),
                         capture_output=True, text=True, cwd=ROOT, env=env(tiny), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    suite = Suite.read(run)
    assert [r.task for r in suite.records] == ["cb", "copa"]
    assert all("is not better than" in (r.refused or "") and "--allow-weak-teacher" in r.refused
               for r in suite.records), [r.refused for r in suite.records]
    assert all(r.teacher_heldout and r.trivial_heldout for r in suite.records)  # the evidence is kept
    assert all(SweepOutcome.read(run / t).refused for t in ("cb", "copa"))  # stored: a rerun skips them
    assert not trials(run, "cb")  # refused before any trial
    from reports.markdown import esc

    assert esc(suite.records[0].refused) in out.stdout
