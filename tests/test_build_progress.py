"""The build's training hook: a stopped training step resumes where it stopped (same weights as an
uninterrupted one), teacher logits are computed once per (teacher, rows), and a transfer set
distils on more rows than the teacher was fine-tuned on."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from compress import distill as distillation
from compress import train as training
from compress.batching import encode
from compress.models import load_classifier, load_tokenizer
from compress.pipeline import Progress, build, prepare
from compress.recipe import Recipe
from compress.train import TrainConfig, ce_loss, train
from tests._tiny import save_tiny, sst2_slice


class Halt(Exception):
    pass


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("teacher"), layers=4)


def _recipe(teacher_dir, **kw) -> Recipe:
    base = dict(task="sst2", teacher=str(teacher_dir), teacher_epochs=1, teacher_lr=1e-3, student_layers=2,
                kd_epochs=3, kd_lr=1e-3, kd_batch_size=16)
    return Recipe(**{**base, **kw})


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_a_stopped_training_resumes_to_the_same_weights(teacher_dir, tmp_path):
    data = sst2_slice(train=96, dev=32)
    tok = load_tokenizer(str(teacher_dir))
    train_rows, dev = data.splits["train"], data.splits["dev"]
    enc, dev_enc = encode(tok, train_rows, 64), encode(tok, dev, 64)
    labels = np.array([ex.label for ex in train_rows])
    cfg = TrainConfig(epochs=3, lr=1e-3, batch_size=16, evals_per_epoch=2, patience=100, progress=False)

    whole = load_classifier(str(teacher_dir))
    done = train(whole, data.spec, enc, ce_loss(labels), dev, dev_enc, cfg)
    assert done.total == 18

    def halt_at_7(step, total, history):
        assert history[0]["step"] == 0 and history[-1]["step"] == step
        if step >= 7:  # evaluations every 3 steps: stops at step 9, mid-epoch
            raise Halt(step)

    stopped = load_classifier(str(teacher_dir))
    ckpt = tmp_path / "partial.pt"
    with pytest.raises(Halt):
        train(stopped, data.spec, enc, ce_loss(labels), dev, dev_enc, cfg, on_eval=halt_at_7, checkpoint=ckpt)
    assert ckpt.is_file()

    resumed = load_classifier(str(teacher_dir))  # a fresh process would start from the saved dir like this
    before = training.STEPS_RUN
    again = train(resumed, data.spec, enc, ce_loss(labels), dev, dev_enc, cfg, checkpoint=ckpt)
    assert training.STEPS_RUN - before == 18 - 9  # only what was left
    assert again.best_step == done.best_step and again.metrics == done.metrics
    assert [h["step"] for h in again.history] == [h["step"] for h in done.history]
    for k, v in _state(whole).items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=1e-6)

    other = TrainConfig(epochs=2, lr=1e-3, batch_size=16, evals_per_epoch=2, patience=100, progress=False)
    before = training.STEPS_RUN
    train(load_classifier(str(teacher_dir)), data.spec, enc, ce_loss(labels), dev, dev_enc, other, checkpoint=ckpt)
    assert training.STEPS_RUN - before == 12  # another schedule ignores the checkpoint


def test_a_build_stopped_by_its_hook_resumes_the_step(teacher_dir, tmp_path):
    data = sst2_slice(train=96, dev=32)
    recipe = _recipe(teacher_dir)
    seen: list[Progress] = []

    def stop_student(p: Progress) -> None:
        seen.append(p)
        if p.step == "student" and p.train_step >= 6:
            raise Halt(p)

    with pytest.raises(Halt):
        build(recipe, data, tmp_path / "a", progress=False, on_progress=stop_student)
    last = seen[-1]
    assert last.step == "student" and not last.done and last.total == 18 and last.curve[0][0] == 0
    assert last.best == max(s for _, s in last.curve)
    assert (tmp_path / "a" / "partial" / f"{last.key}.pt").is_file()

    before = training.STEPS_RUN
    seen.clear()
    resumed = build(recipe, data, tmp_path / "a", progress=False, on_progress=seen.append)
    assert [s.hit for s in resumed.steps] == [True, False]
    stored = json.loads((resumed.model_dir / "meta.json").read_text())["train"]
    assert training.STEPS_RUN - before == stored["steps"] - last.train_step  # (early stopping may end it early)
    assert not (tmp_path / "a" / "partial" / f"{last.key}.pt").exists()
    assert seen[-1].done and not seen[-1].cached and seen[-1].step == "student"
    assert seen[-1].curve[: len(last.curve)] == last.curve  # the resumed curve goes on from the stopped one
    full = seen[-1].curve
    assert stored["total"] == 18 and stored["curve"][0][0] == 0

    fresh = build(recipe, data, tmp_path / "b", progress=False)
    assert fresh.metrics == resumed.metrics
    a, b = load_classifier(resumed.model_dir), load_classifier(fresh.model_dir)
    for k, v in b.state_dict().items():
        torch.testing.assert_close(a.state_dict()[k], v, rtol=0, atol=1e-6)

    seen.clear()
    build(recipe, data, tmp_path / "a", progress=False, on_progress=seen.append)  # all cached
    assert len(seen) == 1 and seen[0].done and seen[0].cached and seen[0].curve == full


def test_teacher_logits_computed_once_for_two_students(teacher_dir, tmp_path):
    """Once, and before the students: ``prepare`` (what a sweep runs before its first trial) computes
    them, and no student build computes them again."""
    data = sst2_slice(train=96, dev=32)
    before = distillation.TEACHER_PASSES
    prepare(_recipe(teacher_dir, kd_epochs=1), data, tmp_path, progress=False)
    assert distillation.TEACHER_PASSES - before == 1
    two = build(_recipe(teacher_dir, kd_epochs=1), data, tmp_path, progress=False)
    three = build(_recipe(teacher_dir, kd_epochs=1, student_layers=3), data, tmp_path, progress=False)
    assert two.steps[0].key == three.steps[0].key and two.steps[1].key != three.steps[1].key
    assert distillation.TEACHER_PASSES - before == 1
    pruned = build(_recipe(teacher_dir, kd_epochs=1, heads_kept=2, redistill_epochs=1), data, tmp_path,
                   progress=False)
    pruned_ffn = build(_recipe(teacher_dir, kd_epochs=1, ffn_kept=64, redistill_epochs=1), data, tmp_path,
                       progress=False)
    assert pruned.steps[1].hit and pruned_ffn.steps[1].hit  # both prunings reuse the distilled student
    assert distillation.TEACHER_PASSES - before == 2  # and its logits, for their re-distillations


def test_bf16_soft_targets_are_a_recipe_choice_with_their_own_keys(teacher_dir, tmp_path):
    data = sst2_slice(train=96, dev=32)
    fp32 = build(_recipe(teacher_dir, kd_epochs=1), data, tmp_path, progress=False)
    before = distillation.TEACHER_PASSES
    bf16 = build(_recipe(teacher_dir, kd_epochs=1, kd_logits_bf16=True), data, tmp_path, progress=False)
    assert bf16.steps[0].hit and not bf16.steps[1].hit and bf16.steps[1].key != fp32.steps[1].key
    assert distillation.TEACHER_PASSES - before == 1  # its own logits, not the fp32 ones
    assert "kd_logits_bf16" not in _recipe(teacher_dir).to_dict()  # recipes without it keep their keys


def test_transfer_set_distils_on_more_rows_than_the_teacher_saw(teacher_dir, tmp_path):
    data = sst2_slice(train=160, dev=32)
    plain = build(_recipe(teacher_dir, kd_epochs=1, max_train_examples=64), data, tmp_path, progress=False)
    wide = build(_recipe(teacher_dir, kd_epochs=1, max_train_examples=64, kd_transfer_examples=128), data,
                 tmp_path, progress=False)
    assert wide.steps[0].hit and wide.steps[0].key == plain.steps[0].key  # the same teacher
    steps = [json.loads((b.model_dir / "meta.json").read_text())["train"]["steps"] for b in (plain, wide)]
    assert steps == [4, 8]  # 64 rows, then 128 rows, at batch 16
    meta = json.loads((wide.model_dir / "meta.json").read_text())
    assert meta["params"]["transfer"]["rows"] == 128
    assert Recipe.from_dict(plain.recipe.to_dict()).key() == plain.recipe.key()
    assert "kd_transfer_examples" not in plain.recipe.to_dict()  # older recipes keep their keys
