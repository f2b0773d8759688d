"""Speed-ups re-timed beside the pick, and busy references re-timed: a real sweep on a tiny random
teacher (real onnxruntime/PyTorch sessions in pinned processes, a real sqlite study). Speeds are
never asserted, only the records' structure and that their ratios follow from their throughputs."""
from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from autotune.deploy import DeployConfig
from autotune.retime import MAX_PASSES, ROWS, Retimed, passes_for, rounds_for
from autotune.runtime import Runtime
from tests.conftest import ROOT

optuna.logging.set_verbosity(optuna.logging.WARNING)
# the plain one-epoch fine-tune and distillation: the tiny teacher is at chance anyway
RECIPE = {"teacher_epochs": 1, "max_train_examples": 200, "kd_epochs": 1, "redistill_epochs": 1,
          "teacher_min_steps": 0, "teacher_restarts": 1, "kd_min_steps": 0}
ROUNDS = rounds_for(2)  # the quick preset's measure_repeats


def test_retimed_json_round_trip_and_derived_ratios():
    r = Retimed(rows=48, runtime=Runtime(engine="ort-fp32", batch_size=16, instances=2, threads=1),
                pick=(100.0, 120.0, 90.0), baseline=(10.0, 10.0, 12.0), int8_teacher=(50.0, 40.0, 45.0),
                busy_pct=(3.0, 80.0, 0.0))
    back = Retimed.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r and back.rounds == 3
    assert r.over_baseline == 10.0 and r.over_baseline_range == (7.5, 12.0)  # ratios 10, 12, 7.5
    assert r.over_int8_teacher == 2.0 and r.over_int8_teacher_range == (2.0, 3.0)  # 2, 3, 2
    assert r.pick_throughput == 100.0 and r.busiest_pct == 80.0
    assert "(3 rounds, median): pick 100.0 ex/s = 10.0x" in r.describe(11.0, 2.5) and "11.0x" in r.describe(11.0)
    with pytest.raises(ValueError, match="unequal"):
        Retimed(rows=1, runtime=r.runtime, pick=(1.0,), baseline=(), int8_teacher=(1.0,), busy_pct=(0.0,))
    assert [rounds_for(n) for n in (1, 2, 3)] == [3, 3, 5]
    # a timing covers at least MIN_TIMED_S: one pass for the slow baseline, several for a fast pick, capped
    assert [passes_for(t, 256) for t in (None, 35.0, 1124.6, 1e6)] == [1, 1, 9, MAX_PASSES]


def test_an_old_deploy_config_loads_with_its_stored_figures():
    old = {"task": "sst2", "metric": "accuracy", "recipe": {}, "recipe_key": "k", "model_dir": "m", "runtime": {},
           "core_sets": [[0]], "throughput": 300.0, "latency_p50_ms": 1.0, "latency_p99_ms": 2.0, "dev_score": 0.9,
           "heldout_score": 0.9, "baseline_throughput": 20.0, "teacher_score": 0.9, "hardware": {},
           "hardware_id": "h", "study": "s", "storage": "x", "trial": 3, "speedup_over_baseline": 15.0}
    c = DeployConfig.from_dict(old)
    assert c.retimed is None and c.int8_teacher_throughput is None
    assert c.speedup_over_baseline == c.stored_speedup_over_baseline == 15.0 and c.speedup_over_int8_teacher is None
    assert "stored trial figures" in c.describe_speedup()
    assert DeployConfig.from_dict(json.loads(c.to_json())) == c


def sweep(tiny: Path, data_dir: Path, run: str, *extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, str(ROOT / "run_sweep.py"), "sweep", "--task", "sst2", "--data-dir", str(data_dir),
            "--teacher", str(tiny / "teacher"), "--recipe-json", str(tiny / "recipe.json"),
            "--run-dir", str(tiny / run), "--cache-dir", str(tiny / "cache"), "--student-layers", "1",
            "--heads", "4,2", "--ffn", "64", "--engines", "ort-fp32", "--batch-sizes", "16",
            "--layouts", "1x1,2x1", "--eval-limit", "48", "--confirm-top", "1", "--floor-below-teacher", "100",
            "--allow-weak-teacher", "--no-report", *extra]
    env = dict(os.environ, FASTFORMERS_LOCK_DIR=str(tiny))  # not the lock of other work on this machine
    return subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tokenizer, data_dir):
    """One real two-trial sweep: (root, its stderr)."""
    from tests.test_sweep import tiny_root

    root = tiny_root(tmp_path_factory.mktemp("retime"), tokenizer, RECIPE)
    out = sweep(root, data_dir, "run", "--n-trials", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    return root, out.stderr


def test_the_deploy_config_holds_stored_and_retimed_speedups(swept):
    root, err = swept
    raw = json.loads((root / "run" / "deploy" / "sst2.json").read_text())
    cfg = DeployConfig.from_dict(raw)
    r = cfg.retimed
    assert r is not None and r.rounds == raw["retimed"]["rounds"] == ROUNDS
    assert len(r.pick) == len(r.baseline) == len(r.int8_teacher) == len(r.busy_pct) == ROUNDS
    assert r.rows == min(ROWS, 48) and r.runtime == Runtime.from_dict(cfg.runtime)  # the pick's runtime
    # the shipped figures are the medians of the per-round ratios of the throughputs it holds
    assert raw["speedup_over_baseline"] == pytest.approx(statistics.median(
        p / b for p, b in zip(raw["retimed"]["pick"], raw["retimed"]["baseline"])))
    assert raw["speedup_over_int8_teacher"] == pytest.approx(statistics.median(
        p / i for p, i in zip(raw["retimed"]["pick"], raw["retimed"]["int8_teacher"])))
    lo, hi = raw["retimed"]["over_baseline_range"]
    assert lo <= raw["speedup_over_baseline"] <= hi
    # the stored figures beside: the trial's throughput over the study's stored references
    refs = optuna.load_study(study_name="sst2-quick", storage=f"sqlite:///{root / 'run' / 'study.db'}"
                             ).user_attrs["references"]
    assert cfg.int8_teacher_throughput == refs["teacher_ort_int8"]["throughput"]
    assert cfg.int8_teacher_runtime["batch_size"] == 1  # the stored int8 reference is at batch 1
    assert raw["stored_speedup_over_baseline"] == pytest.approx(cfg.throughput / refs["baseline"]["throughput"])
    assert raw["stored_speedup_over_int8_teacher"] == pytest.approx(cfg.throughput / cfg.int8_teacher_throughput)
    assert DeployConfig.from_dict(json.loads(cfg.to_json())) == cfg
    # outcome.json: the re-timed figures, the stored ones beside
    outcome = json.loads((root / "run" / "outcome.json").read_text())
    assert outcome["speedup_vs_baseline"] == raw["speedup_over_baseline"] and outcome["retimed_rounds"] == ROUNDS
    assert outcome["speedup_vs_int8_teacher"] == raw["speedup_over_int8_teacher"]
    assert outcome["stored_speedup_vs_baseline"] == raw["stored_speedup_over_baseline"]
    assert outcome["stored_speedup_vs_int8_teacher"] == raw["stored_speedup_over_int8_teacher"]
    assert f"re-timed beside each other ({ROUNDS} rounds, median): pick" in err and "stored trial figures:" in err
    dep = subprocess.run([sys.executable, str(ROOT / "run_sweep.py"), "deploy", "--results", str(root / "run"),
                          "--task", "sst2"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert dep.returncode == 0, dep.stderr
    assert json.loads(dep.stdout)["retimed"] == raw["retimed"]
    assert f"re-timed beside the pick ({ROUNDS} rounds, median)" in dep.stderr


def test_a_busy_stored_reference_is_retimed_on_resume(swept, caplog, monkeypatch):
    """The stored baseline is marked as timed on a busy machine (an input), the int8 one as quiet:
    resuming re-times the first before it is used, stores the new figure, and leaves the second."""
    from autotune.storage import open_storage
    from autotune.sweep import Sweep, SweepConfig

    root, _ = swept
    monkeypatch.setenv("FASTFORMERS_LOCK_DIR", str(root))
    config = SweepConfig.from_dict(json.loads((root / "run" / "sweep_config.json").read_text()))
    url = f"sqlite:///{root / 'run' / 'study.db'}"
    study = optuna.load_study(study_name=config.name, storage=url)
    refs = study.user_attrs["references"]
    refs["baseline"]["busy_before_pct"], refs["teacher_ort_int8"]["busy_before_pct"] = 99.0, 0.0
    study.set_user_attr("references", refs)
    s = Sweep(config)
    _, data, _ = s.check()
    caplog.set_level(logging.INFO, logger="autotune")
    got = s.references(optuna.load_study(study_name=config.name, storage=open_storage(url, root / "run")), data)
    assert "the out-of-the-box baseline was timed with the machine 99% busy" in caplog.text
    assert "the ORT-int8 teacher was timed" not in caplog.text
    assert got["teacher_ort_int8"] == refs["teacher_ort_int8"]  # quiet: used as stored
    assert got["baseline"]["wall_s"] != refs["baseline"]["wall_s"]  # a new timing, of the same model and runtime
    assert got["baseline"]["runtime"] == refs["baseline"]["runtime"] and got["baseline"]["metrics"] == refs[
        "baseline"]["metrics"]
    stored = optuna.load_study(study_name=config.name, storage=url).user_attrs["references"]
    assert stored == json.loads(json.dumps(got))  # the new figure is stored
