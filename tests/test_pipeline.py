"""build(): every step cached by content; a second build trains nothing, a late change rebuilds
only what follows, two processes share one build, and impossible recipes stop before training."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from compress import train as training
from compress.errors import UserInputError
from compress.pipeline import build
from compress.recipe import Recipe
from tests._tiny import DATA, save_tiny, sst2_slice

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("teacher"), layers=4)


def _recipe(teacher_dir: Path, **kw) -> Recipe:
    base = dict(task="sst2", teacher=str(teacher_dir), teacher_epochs=1, teacher_lr=1e-3, student_layers=2,
                kd_epochs=1, kd_lr=1e-3, heads_kept=2, ffn_kept=32, redistill_epochs=1, kd_batch_size=32)
    return Recipe(**{**base, **kw})


def test_build_caches_every_step(teacher_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    data = sst2_slice(train=128, dev=32)
    recipe = _recipe(teacher_dir)
    first = build(recipe, data, tmp_path, progress=False)
    assert [s.name for s in first.steps] == ["teacher", "student", "prune", "redistill"]
    assert not any(s.hit for s in first.steps)
    assert set(first.metrics) == {"accuracy"}
    model = AutoModelForSequenceClassification.from_pretrained(first.model_dir)
    assert model.config.num_hidden_layers == 2 and model.config.intermediate_size == 32
    assert AutoTokenizer.from_pretrained(first.model_dir)("a film")["input_ids"]
    meta = json.loads((first.model_dir / "meta.json").read_text())
    assert meta["step"] == "redistill" and meta["params"]["epochs"] == 1 and "seconds" in meta

    steps_before = training.STEPS_RUN
    again = build(recipe, data, tmp_path, progress=False)
    assert all(s.hit for s in again.steps) and training.STEPS_RUN == steps_before
    assert again.model_dir == first.model_dir and again.metrics == first.metrics

    late = build(replace(recipe, redistill_epochs=2), data, tmp_path, progress=False)
    assert [s.hit for s in late.steps] == [True, True, True, False]
    assert training.STEPS_RUN > steps_before

    layered = build(replace(recipe, redistill_hidden_weight=1.0), data, tmp_path, progress=False)
    assert [s.hit for s in layered.steps] == [True, True, True, False]  # only the re-distillation differs
    assert json.loads((layered.model_dir / "meta.json").read_text())["params"]["hidden_weight"] == 1.0

    other_data = sst2_slice(train=100, dev=32)  # other rows: nothing may be reused
    fresh = build(replace(recipe, student_layers=None, heads_kept=None, ffn_kept=None), other_data, tmp_path,
                  progress=False)
    assert [s.hit for s in fresh.steps] == [False]


def test_gradual_pruning_cuts_in_rounds_each_redistilled(teacher_dir, tmp_path):
    from transformers import AutoConfig

    data = sst2_slice(train=128, dev=32)
    built = build(_recipe(teacher_dir, heads_kept=1, ffn_kept=16, prune_rounds=2), data, tmp_path, progress=False)
    assert [s.name for s in built.steps] == ["teacher", "student", "prune", "redistill", "prune", "redistill"]
    shapes = [AutoConfig.from_pretrained(s.path) for s in built.steps[2:]]
    assert [c.intermediate_size for c in shapes] == [32, 32, 16, 16]  # 64 -> 32 -> 16 neurons
    assert [len(c.pruned_heads[0]) for c in shapes] == [2, 2, 3, 3]  # 4 -> 2 -> 1 heads
    metas = [json.loads((s.path / "meta.json").read_text()) for s in built.steps]
    assert metas[5]["params"]["teacher"] == built.steps[1].key == metas[3]["params"]["teacher"]  # the unpruned student
    one_round = build(_recipe(teacher_dir, heads_kept=1, ffn_kept=16), data, tmp_path, progress=False)
    assert one_round.model_dir != built.model_dir and [s.hit for s in one_round.steps] == [True, True, False, False]


def test_redistill_keep_last_runs_the_whole_schedule_and_keeps_its_end(teacher_dir, tmp_path):
    """"last" trains every planned step with no early stop and keeps the final weights, whatever the
    dev curve did; only the re-distillation's key changes, so the student and its pruning are shared."""
    from compress.pipeline import Progress

    data = sst2_slice(train=128, dev=32)
    recipe = _recipe(teacher_dir, redistill_epochs=3, kd_batch_size=16)
    best = build(recipe, data, tmp_path, progress=False)
    seen: list[Progress] = []
    last = build(replace(recipe, redistill_keep="last"), data, tmp_path, progress=False, on_progress=seen.append)
    assert [s.hit for s in last.steps] == [True, True, True, False]
    train = json.loads((last.model_dir / "meta.json").read_text())["train"]
    assert train["steps"] == train["best_step"] == train["total"] == 24  # 128 rows / 16, 3 epochs
    assert last.metrics["accuracy"] == pytest.approx(train["curve"][-1][1])
    done = [p for p in seen if p.done and p.step == "redistill"]
    assert done and done[-1].keeps_last and done[-1].best == train["curve"][-1][1]
    assert json.loads((best.model_dir / "meta.json").read_text())["params"].get("keep") is None


def test_redistill_keep_auto_keeps_the_end_unless_min_steps_stretched_the_schedule(teacher_dir, tmp_path):
    """"auto" keeps the end of the recipe's own schedule; where ``kd_min_steps`` stretched it (a small
    set run for many epochs) it keeps the best evaluation. Either way the student trains to
    ``kd_min_steps`` at least and keeps a trained checkpoint, not its untrained start."""
    data = sst2_slice(train=128, dev=32)
    recipe = _recipe(teacher_dir, redistill_epochs=1, kd_batch_size=16, redistill_keep="auto")
    metas = {}
    for min_steps in (0, 24):
        built = build(replace(recipe, kd_min_steps=min_steps), data, tmp_path, progress=False)
        metas[min_steps] = [json.loads((s.path / "meta.json").read_text()) for s in built.steps]
    own, stretched = metas[0][3], metas[24][3]
    assert own["params"]["keep"] == "last" and own["params"]["epochs"] == 1
    assert own["train"]["best_step"] == own["train"]["steps"] == own["train"]["total"] == 8  # 128 rows / 16
    assert "keep" not in stretched["params"] and stretched["params"]["epochs"] == 3 and stretched["train"]["total"] == 24
    student = metas[24][1]["train"]
    assert student["total"] == student["steps"] == 24 and student["best_step"] > 0


def test_select_on_train_picks_every_checkpoint_without_seeing_dev(tmp_path):
    """Two dev sets, one training set: the models come out bit-identical, so dev chose nothing;
    each step's stored metrics are a fresh dev evaluation, the selection rows' kept beside them."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from compress.batching import encode
    from compress.pipeline import held_size
    from compress.train import evaluate

    full = sst2_slice(train=128, dev=64)
    halves = [replace(full, splits=dict(full.splits, dev=rows))
              for rows in (full.splits["dev"][:32], full.splits["dev"][32:])]
    teacher_dir = save_tiny(tmp_path / "teacher", layers=2)  # significance scores cost per layer
    recipe = _recipe(teacher_dir, select_on="train", student_layers=None, heads_kept=None, ffn_kept=None,
                     approx="significance-drop", approx_layers=1, approx_epochs=1)  # the student steps train alike
    a, b = (build(recipe, data, tmp_path / "cache", progress=False) for data in halves)
    assert [s.name for s in a.steps] == ["teacher", "significance", "approx"]
    assert not any(s.hit for s in b.steps)  # dev is part of every step's data identity
    models = [AutoModelForSequenceClassification.from_pretrained(x.model_dir).eval() for x in (a, b)]
    sa, sb = (m.state_dict() for m in models)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

    for step in a.steps:
        meta = json.loads((step.path / "meta.json").read_text())
        assert meta["data"]["select"] == held_size(128) == 12 and meta["data"]["train"] == 116
        if step.name != "significance":  # the trained steps
            assert set(meta["select_metrics"]) == {"accuracy"}
    dev = halves[0].splits["dev"]
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    assert a.metrics == evaluate(models[0], full.spec, dev, encode(tok, dev, full.spec.max_length))
    assert "dropped_metrics" in json.loads((a.model_dir / "meta.json").read_text())

    on_dev = build(Recipe(task="sst2", teacher=str(teacher_dir), teacher_epochs=1, teacher_lr=1e-3), halves[0],
                   tmp_path / "cache", progress=False)
    meta = json.loads((on_dev.steps[0].path / "meta.json").read_text())
    assert "select" not in meta["data"] and "select_metrics" not in meta and meta["data"]["train"] == 128


def test_impossible_recipe_refused_before_training(teacher_dir, tmp_path):
    data = sst2_slice(train=50, dev=20)
    steps_before = training.STEPS_RUN
    for recipe, words in [(_recipe(teacher_dir, heads_kept=5), "heads_kept=5"),
                          (_recipe(teacher_dir, student_layers=6), "deeper than the teacher"),
                          (_recipe(teacher_dir, ffn_kept=100), "intermediate size 64")]:
        with pytest.raises(UserInputError, match=words) as err:
            build(recipe, data, tmp_path, progress=False)
        assert "\n" not in str(err.value)
    roberta = tmp_path / "roberta"
    from transformers import RobertaConfig, RobertaForSequenceClassification

    RobertaForSequenceClassification(RobertaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                   intermediate_size=64, vocab_size=100)).save_pretrained(roberta)
    with pytest.raises(UserInputError, match="roberta model but the teacher is bert"):
        build(_recipe(teacher_dir, student_init=str(roberta)), data, tmp_path, progress=False)
    assert training.STEPS_RUN == steps_before
    assert not [p for p in tmp_path.iterdir() if (p / "meta.json").exists()]


def test_carved_train_split_is_noted(teacher_dir, tmp_path):
    from compress.tasks import load_task

    boolq = load_task("boolq", DATA)
    boolq = replace(boolq, splits={"dev": boolq.splits["dev"][:40]})
    built = build(Recipe(task="boolq", teacher=str(teacher_dir), teacher_epochs=0, max_length=64), boolq, tmp_path,
                  progress=False)
    meta = json.loads((built.model_dir / "meta.json").read_text())
    assert any("carved" in n for n in meta["notes"])
    assert meta["data"]["train"] == 32 and meta["data"]["dev"] == 8


def test_two_processes_build_once(teacher_dir, tmp_path):
    recipe = Recipe(task="sst2", teacher=str(teacher_dir), teacher_epochs=0)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from compress.pipeline import build
        from compress.recipe import Recipe
        from tests._tiny import sst2_slice
        built = build(Recipe.from_json({recipe.to_json()!r}), sst2_slice(200, 32), Path({str(tmp_path)!r}),
                      progress=False)
        print("HIT" if built.steps[0].hit else "BUILT", built.model_dir)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-1500:] for o in outs]
    words = sorted(o[0].split()[-2] for o in outs)
    assert words == ["BUILT", "HIT"]
    assert len({o[0].split()[-1] for o in outs}) == 1
    assert not list(tmp_path.glob(".tmp-*"))
