"""Per-task trust: a teacher fitted to the data, the weak-teacher refusal, custom tasks swept
end to end, and teachers that arrive already fine-tuned. Real processes, real data slices."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from compress.errors import UserInputError
from tests.conftest import ROOT
from tests.test_sweep import RECIPE, RETIME_ONCE, run_sweep, tiny  # noqa: F401 -- the tiny teacher fixture

TINY_SPACE = ["--student-layers", "1", "--heads", "4", "--ffn", "64", "--engines", "ort-fp32", "--batch-sizes", "16",
              "--layouts", "1x1", "--heartbeat", "1", "--floor-below-teacher", "100", *RETIME_ONCE]


def args(tiny: Path, run: str, task: str, *extra: str, data_dir: Path | None = None) -> list[str]:
    data = ["--data-dir", str(data_dir)] if data_dir else []
    return [sys.executable, str(ROOT / "run_sweep.py"), "sweep", "--task", task, *data,
            "--teacher", str(tiny / "teacher"), "--recipe-json", str(tiny / "recipe.json"),
            "--run-dir", str(tiny / run), "--cache-dir", str(tiny / "cache"), *TINY_SPACE, *extra]


def test_a_teacher_no_better_than_chance_is_refused_before_any_student(tiny, data_dir):
    out = run_sweep(args(tiny, "weak", "copa", "--n-trials", "2", data_dir=data_dir))
    assert out.returncode == 2, out.stderr[-2000:]
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("error: task copa: the teacher (") and "not better than chance (0.50)" in line
    assert "held-out questions" in line and "--allow-weak-teacher" in line and "Traceback" not in out.stderr
    outcome = json.loads((tiny / "weak" / "outcome.json").read_text())
    assert outcome["refused"] == line.removeprefix("error: ") and outcome["trivial_heldout"]["value"] == 0.5
    assert outcome["teacher_heldout"]["units"] == 50 and outcome["pick_heldout"] is None
    study = optuna.load_study(study_name="copa-quick", storage=f"sqlite:///{tiny / 'weak' / 'study.db'}")
    assert study.trials == []  # nothing was searched, so no student was built
    assert not (tiny / "weak" / "deploy").exists()


def _write_csv(path: Path, rows, bom: bool = False) -> None:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["review", "verdict"])
        for ex in rows:
            w.writerow([ex.text_a, ("bad", "good")[ex.label]])


def test_a_custom_csv_task_is_swept_end_to_end_through_deploy_config_and_report(tiny, data_dir, tmp_path):
    from compress.tasks import load_task

    sst2 = load_task("sst2", data_dir)
    _write_csv(tmp_path / "train.csv", sst2.splits["train"][:300], bom=True)  # as spreadsheets export it
    _write_csv(tmp_path / "dev.csv", sst2.splits["dev"][:120])
    spec = {"name": "reviews", "text_columns": ["review"], "label_column": "verdict",
            "files": {"train": "train.csv", "dev": "dev.csv"}, "label_names": ["bad", "good"]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = run_sweep(args(tiny, "custom", str(tmp_path / "spec.json"), "--n-trials", "2", "--allow-weak-teacher"))
    assert out.returncode == 0, out.stderr[-3000:]
    deploy = json.loads((tiny / "custom" / "deploy" / "reviews.json").read_text())
    assert deploy["task"] == "reviews" and deploy["trivial_heldout"]["kind"].startswith("majority class")
    assert deploy["heldout_interval"]["low"] <= deploy["heldout_score"] <= deploy["heldout_interval"]["high"]
    outcome = json.loads((tiny / "custom" / "outcome.json").read_text())
    assert outcome["task"] == "reviews" and outcome["deploy_config"].endswith("reviews.json")
    assert outcome["trivial_heldout"]["units"] == 60 and outcome["pick_minus_teacher"] is not None
    html = (tiny / "custom" / "report" / "report.html").read_text()
    assert "Task reviews" in html and "Trivial baseline (majority class" in html
    # the same task from options instead of a spec file: the same sweep definition
    from autotune.cli import build_parser
    from autotune.commands.sweep_cmd import config_from_args

    opts = build_parser().parse_args(["sweep", "--task", "reviews", "--custom-train", str(tmp_path / "train.csv"),
                                      "--custom-dev", str(tmp_path / "dev.csv"), "--text-columns", "review",
                                      "--label-column", "verdict", "--label-names", "bad,good"])
    from_spec = build_parser().parse_args(["sweep", "--task", str(tmp_path / "spec.json")])
    a, b = config_from_args(opts), config_from_args(from_spec)
    assert a.task == b.task == "reviews" and a.custom_task == b.custom_task and a.run_dir == "runs/reviews-quick"


def _classifier(path: Path, tokenizer, labels: list[str] | None, n: int = 2, arch: str = "classifier") -> str:
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    kw = {"id2label": dict(enumerate(labels)), "label2id": {x: i for i, x in enumerate(labels)}} if labels else {}
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, num_labels=n, **kw)
    (BertForSequenceClassification if arch == "classifier" else BertModel)(cfg).save_pretrained(path)
    return str(path)


def test_a_teacher_fine_tuned_on_the_task_is_used_as_it_is_and_a_foreign_head_refused(tmp_path, tokenizer):
    from autotune.teacher_head import finetuned_for
    from compress.tasks import get_task

    sst2, cb = get_task("sst2"), get_task("cb")
    assert finetuned_for(_classifier(tmp_path / "a", tokenizer, ["negative", "positive"]), sst2)
    assert finetuned_for(_classifier(tmp_path / "b", tokenizer, None), sst2)  # LABEL_0/1: assumed in order
    assert not finetuned_for(_classifier(tmp_path / "c", tokenizer, None, arch="backbone"), sst2)
    assert not finetuned_for("packaged", sst2)
    with pytest.raises(UserInputError, match=r"has 2 labels but task cb has 3"):
        finetuned_for(str(tmp_path / "a"), cb)
    with pytest.raises(UserInputError, match=r"its labels are \['positive', 'negative'\]"):
        finetuned_for(_classifier(tmp_path / "d", tokenizer, ["positive", "negative"]), sst2)
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "config.json").write_text("{not json")
    with pytest.raises(UserInputError, match=r"config.json: not a valid model config"):
        finetuned_for(str(tmp_path / "e"), sst2)


def test_the_teacher_schedule_grows_with_small_sets_and_restarts_only_them():
    from compress.teacher_fit import MAX_EPOCHS, SMALL_TRAIN, held_fraction, plan

    cb = plan(200, 32, epochs=1.0, min_steps=150, restarts=2)
    assert cb.steps >= 150 and cb.epochs > 20 and cb.restarts == 2 and cb.eval_every == cb.steps // 20
    big = plan(10_000, 32, epochs=1.0, min_steps=150, restarts=2)
    assert big.steps == 313 and big.epochs == 1.0 and big.restarts == 1
    assert plan(10, 32, 1.0, 10_000, 1).epochs == MAX_EPOCHS
    assert plan(SMALL_TRAIN - 1, 32, 1.0, 0, 3).restarts == 3
    assert round(held_fraction(250) * 250) == 50 and round(held_fraction(50_000) * 50_000) == 1000


def test_long_held_aside_rows_are_capped_by_tokens_in_whole_groups_and_short_ones_are_not():
    from compress.tasks import Example
    from compress.teacher_fit import cap_tokens

    rows = [Example(f"q{i // 5} a{i}", group=f"q{i // 5}", label=i % 2) for i in range(100)]  # 20 questions
    kept, surplus = cap_tokens(rows, [380] * 100, budget=5 * 380 * 6, seed=3)
    assert len(kept) == 30 and sorted(kept + surplus) == list(range(100))
    assert not {rows[i].group for i in kept} & {rows[i].group for i in surplus}  # questions stay whole
    assert cap_tokens(rows, [380] * 100, 5 * 380 * 6, 3) == (kept, surplus)  # seeded
    assert cap_tokens(rows, [25] * 100, 96_000, 3) == (list(range(100)), [])  # SST-2-like: untouched
    assert len(cap_tokens(rows, [380] * 100, budget=10, seed=0)[0]) == 5  # one whole group at least


def test_a_fitted_teacher_keeps_the_best_restart_on_rows_held_aside_from_train(tmp_path, data_dir):
    from compress import cache
    from compress.pipeline import build
    from compress.recipe import Recipe
    from compress.tasks import hold_out, load_task
    from tests._tiny import save_tiny

    teacher = save_tiny(tmp_path / "tiny", layers=1, heads=2, hidden=16, intermediate=32)
    data = load_task("copa", data_dir)
    data = type(data)(data.spec, {"train": data.splits["train"][:120], "dev": data.splits["dev"][:40]}, data.source)
    recipe = Recipe(task="copa", teacher=str(teacher), teacher_epochs=1.0, teacher_min_steps=12, teacher_restarts=2)
    built = build(recipe, hold_out(data, 0.5, 0), tmp_path / "cache", progress=False)
    fit = cache.read_meta(built.model_dir)["fit"]
    assert fit["plan"]["steps"] >= 12 and [r["seed"] for r in fit["restarts"]] == [0, 1]
    assert fit["held_rows"] % 2 == 0  # whole COPA records: both choices of a question held aside together
    scores = [r["held_metrics"]["accuracy"] for r in fit["restarts"]]
    assert fit["chosen_seed"] == int(np.argmax(scores))
    from autotune.sweep import fit_summary

    assert fit["held_trivial"]["kind"] == "chance (1 of 2 choices)"  # what patience had to see beaten
    assert fit_summary(built, "accuracy").endswith(f"on {fit['held_rows']} train rows; chance (1 of 2 choices) "
                                                   f"{fit['held_trivial']['metrics']['accuracy']:.4f})")
    assert Recipe(task="copa").key() == Recipe.from_dict({"task": "copa"}).key()  # plain recipes keep their keys
    assert "teacher_min_steps" not in Recipe(task="copa").to_dict()



def test_a_fitted_teacher_is_never_its_untrained_start():
    """At lr 0 no evaluation beats the start. The start used to be kept then (MultiRC kept a fresh head
    whose lucky held-aside F1a beat every trained checkpoint); now each restart keeps a trained step."""
    from compress.batching import encode
    from compress.models import load_tokenizer
    from compress.teacher_fit import fit_teacher
    from tests._tiny import sst2_slice, tiny_bert

    data, tok = sst2_slice(train=120, dev=8), load_tokenizer()
    model, fit = fit_teacher(data.spec, list(data.splits["train"]), lambda rows: encode(tok, list(rows), 32),
                             lambda: tiny_bert(layers=1), epochs=1.0, min_steps=8, restarts=2, lr=0.0, batch_size=16,
                             seed=0, progress=False)
    assert [r["best_step"] for r in fit["restarts"]] == [1, 1]  # 8 steps, evaluated every step
    # the frozen random model never beats the held rows' majority class: no early stop, the whole schedule
    assert [(r["steps"], r["beat_trivial"]) for r in fit["restarts"]] == [(8, False), (8, False)]
    assert fit["held_trivial"]["kind"].startswith("majority class")


def test_patience_counts_only_once_the_best_is_above_the_trivial_score():
    """At lr 0 every evaluation scores the same. Patience 2, counted from the first trained evaluation,
    stops at step 3 when that score is above ``patience_above``; at or below it (a model answering the
    majority class has not started) the whole schedule runs."""
    from compress.batching import encode
    from compress.models import load_tokenizer
    from compress.train import TrainConfig, ce_loss, train
    from tests._tiny import sst2_slice, tiny_bert

    data, tok = sst2_slice(train=64, dev=16), load_tokenizer()
    rows, dev = list(data.splits["train"]), list(data.splits["dev"])
    enc, dev_enc, labels = encode(tok, rows, 32), encode(tok, dev, 32), np.array([ex.label for ex in rows])

    def run(above):
        cfg = TrainConfig(epochs=1, lr=0.0, batch_size=8, eval_every=1, patience=2, patience_above=above,
                          keep_start=False, progress=False, bf16=False)
        return train(tiny_bert(layers=1), data.spec, enc, ce_loss(labels), dev, dev_enc, cfg)

    plain = run(None)
    score = plain.metrics["accuracy"]
    assert (plain.steps, plain.total) == (3, 8)
    assert run(score - 0.01).steps == 3
    assert run(score).steps == run(score + 0.01).steps == 8

_KILLED_FIT = """
import os, signal, sys
from pathlib import Path
import compress.teacher_fit as fitting, compress.train as training
from compress.pipeline import build
from compress.recipe import Recipe
from compress.tasks import hold_out, load_task

fitting.CHECKPOINT_S = 0.0  # save at every evaluation
real, saves = training.save_checkpoint, []

def save_then_die(path, state):
    real(path, state)
    saves.append(Path(path).name)
    if sum(n.endswith(".seed1.pt") for n in saves) == 2:  # restart 1 done, restart 2 part-way
        os.kill(os.getpid(), signal.SIGKILL)

training.save_checkpoint = save_then_die
teacher, data_dir, cache_dir = sys.argv[1:4]
data = load_task("copa", data_dir)
data = type(data)(data.spec, {"train": data.splits["train"][:120], "dev": data.splits["dev"][:40]}, data.source)
recipe = Recipe(task="copa", teacher=teacher, teacher_epochs=1.0, teacher_min_steps=40, teacher_restarts=2)
build(recipe, hold_out(data, 0.5, 0), Path(cache_dir), progress=False)
"""


def test_a_teacher_fit_killed_mid_restart_resumes_to_the_same_teacher(tmp_path, data_dir):
    """kill -9 in the second restart of a fit; the rerun trains only what was left, and its teacher
    (weights, restarts tried, seed chosen) is the one an uninterrupted fit gives."""
    import subprocess
    import sys

    import torch

    from compress import cache
    from compress import train as training
    from compress.models import load_classifier
    from compress.pipeline import build
    from compress.recipe import Recipe
    from compress.tasks import hold_out, load_task
    from tests._tiny import save_tiny

    teacher = save_tiny(tmp_path / "tiny", layers=1, heads=2, hidden=16, intermediate=32)
    killed = subprocess.run([sys.executable, "-c", _KILLED_FIT, str(teacher), str(data_dir), str(tmp_path / "a")],
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    left = sorted(p.name for p in (tmp_path / "a" / "partial").glob("*.pt"))
    assert len(left) == 2 and left[1].endswith(".seed1.pt"), left  # the fit's record and restart 2's state

    data = load_task("copa", data_dir)
    data = hold_out(type(data)(data.spec, {"train": data.splits["train"][:120], "dev": data.splits["dev"][:40]},
                               data.source), 0.5, 0)
    recipe = Recipe(task="copa", teacher=str(teacher), teacher_epochs=1.0, teacher_min_steps=40, teacher_restarts=2)
    before = training.STEPS_RUN
    resumed = build(recipe, data, tmp_path / "a", progress=False)
    resumed_steps = training.STEPS_RUN - before
    before = training.STEPS_RUN
    whole = build(recipe, data, tmp_path / "b", progress=False)
    whole_steps = training.STEPS_RUN - before

    fit, fit_whole = cache.read_meta(resumed.model_dir)["fit"], cache.read_meta(whole.model_dir)["fit"]
    assert fit["restarts"] == fit_whole["restarts"] and fit["chosen_seed"] == fit_whole["chosen_seed"]
    first = fit_whole["restarts"][0]["steps"]
    assert 0 < resumed_steps < whole_steps - first  # neither restart 1 nor restart 2's first steps trained again
    a, b = load_classifier(str(resumed.model_dir)).state_dict(), load_classifier(str(whole.model_dir)).state_dict()
    for k, v in b.items():
        torch.testing.assert_close(a[k], v, rtol=0, atol=1e-6)
    assert not list((tmp_path / "a" / "partial").glob("*.pt"))  # done: nothing left to resume


def test_eval_limit_keeps_groups_whole(data_dir):
    from compress.tasks import limit_rows as whole_groups
    from compress.tasks import load_task

    rows = load_task("copa", data_dir).splits["dev"]
    cut = whole_groups(rows, 5)
    assert len(cut) == 6 and cut[-1].group == cut[-2].group
    assert whole_groups(rows, 10_000) == rows and len(whole_groups(rows, 4)) == 4


def test_a_resolution_note_says_when_the_heldout_split_cannot_resolve_the_floor():
    from autotune.trust import resolution_note
    from compress.intervals import Interval
    from compress.tasks import get_task

    wide = Interval(-0.02, -0.09, 0.05, 28)
    note = resolution_note(wide, 0.01, get_task("cb"))
    assert "too small to resolve a 1-point floor" in note and "28 rows" in note and "--holdout-fraction" in note
    assert resolution_note(Interval(-0.002, -0.008, 0.004, 5000), 0.01, get_task("cb")) is None


def test_teacher_only_judges_the_teacher_and_stops_before_any_student(tiny, data_dir):
    from autotune.outcome import SweepOutcome

    out = run_sweep(args(tiny, "teacher-only", "copa", "--teacher-only", "--allow-weak-teacher", data_dir=data_dir))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "teacher held-out accuracy" in out.stdout and "does NOT beat the trivial baseline" in out.stdout
    o = SweepOutcome.read(tiny / "teacher-only")
    assert o.teacher_only and o.refused is None and o.pick_heldout is None and o.teacher_beats_trivial is False
    assert o.teacher_minus_trivial.units == o.teacher_heldout.units == 50
    assert o.teacher_minus_trivial.low <= o.teacher_minus_trivial.value <= o.teacher_minus_trivial.high
    study = optuna.load_study(study_name="copa-quick", storage=f"sqlite:///{tiny / 'teacher-only' / 'study.db'}")
    assert study.trials == [] and not (tiny / "teacher-only" / "deploy").exists()
    # without --allow-weak-teacher the same teacher is refused, and the outcome says it was teacher-only
    out = run_sweep(args(tiny, "teacher-only-refused", "copa", "--teacher-only", data_dir=data_dir))
    assert out.returncode == 2 and "not better than chance" in out.stderr.strip().splitlines()[-1]
    o = SweepOutcome.read(tiny / "teacher-only-refused")
    assert o.teacher_only and o.refused.startswith("task copa: the teacher (")
