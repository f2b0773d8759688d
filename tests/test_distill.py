"""Distillation: students start from evenly spaced teacher layers, may switch to ReLU, must
stay in the teacher's family, and training with the KD loss lowers it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests._tiny import sst2_slice, tiny_bert
from compress.batching import encode, make_batches
from compress.distill import KDConfig, distill, kd_loss_fn, layer_map, make_student, soft_cross_entropy
from compress.errors import UserInputError
from compress.models import load_tokenizer
from compress.train import TrainConfig, to_tensors


def test_layer_map_is_even_and_ends_on_the_last_layer():
    assert layer_map(3, 6) == [1, 3, 5]
    assert layer_map(2, 4) == [1, 3]
    assert layer_map(4, 4) == [0, 1, 2, 3]
    with pytest.raises(UserInputError):
        layer_map(5, 4)


def test_student_copies_teacher_layers_and_switches_to_relu(tmp_path):
    teacher = tiny_bert(layers=4)
    student = make_student(teacher, 2, activation="relu")
    assert student.config.num_hidden_layers == 2 and student.config.hidden_act == "relu"
    for s, t in zip(student.bert.encoder.layer, (teacher.bert.encoder.layer[1], teacher.bert.encoder.layer[3])):
        assert torch.equal(s.output.dense.weight, t.output.dense.weight)
        assert isinstance(s.intermediate.intermediate_act_fn, torch.nn.ReLU)
    assert teacher.config.num_hidden_layers == 4  # the teacher is left alone
    student.save_pretrained(tmp_path)
    from transformers import AutoModelForSequenceClassification

    again = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert isinstance(again.bert.encoder.layer[0].intermediate.intermediate_act_fn, torch.nn.ReLU)


def test_student_of_another_family_refused():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    other = DistilBertForSequenceClassification(DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64))
    with pytest.raises(UserInputError, match="distilbert model but the teacher is bert"):
        make_student(tiny_bert(), 2, init=other)


def test_soft_cross_entropy_is_lowest_at_the_teacher():
    t = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    assert soft_cross_entropy(t, t, 2.0) < soft_cross_entropy(t.flip(-1), t, 2.0)


def _mean_kd(student, teacher, enc, labels, kd):
    fn = kd_loss_fn(teacher, student.config, kd, labels)
    student.eval()
    with torch.no_grad():
        return sum(fn(student, to_tensors(b), b.indices).item() * len(b.indices) for b in make_batches(enc, 64)) / len(enc)


def test_distillation_lowers_the_kd_loss():
    data = sst2_slice(train=256, dev=32)
    tok = load_tokenizer()
    train_rows, dev_rows = list(data.splits["train"]), list(data.splits["dev"])
    enc, dev_enc = encode(tok, train_rows, 48), encode(tok, dev_rows, 48)
    labels = np.array([ex.label for ex in train_rows])
    teacher = tiny_bert(layers=4, seed=1, init_range=0.2)  # large weights: layers that change the states
    student = make_student(teacher, 2)
    student.bert.encoder.apply(student._init_weights)  # a student that starts far from the teacher
    kd = KDConfig(temperature=2.0, alpha=0.9, hidden_weight=1.0, attention_weight=1.0)
    before = _mean_kd(student, teacher, enc, labels, kd)
    distill(student, teacher, data.spec, enc, labels, dev_rows, dev_enc,
            TrainConfig(epochs=3, lr=2e-3, batch_size=32, progress=False, keep_best=False, bf16=False), kd)
    after = _mean_kd(student, teacher, enc, labels, kd)
    assert after < 0.9 * before, (before, after)


def _train_tiny(dev: int):
    """train() on a fresh 1-layer model, 64 SST-2 rows and ``dev`` dev rows: called with a TrainConfig."""
    from compress.train import ce_loss, train

    data = sst2_slice(train=64, dev=dev)
    tok = load_tokenizer()
    rows, dev_rows = list(data.splits["train"]), list(data.splits["dev"])
    enc, dev_enc = encode(tok, rows, 32), encode(tok, dev_rows, 32)
    loss = ce_loss(np.array([ex.label for ex in rows]))
    return lambda cfg: train(tiny_bert(layers=1), data.spec, enc, loss, dev_rows, dev_enc, cfg)


def test_keep_start_false_never_keeps_the_untrained_weights():
    """With lr 0 no evaluation beats the start: by default the start is kept, with keep_start=False
    the first trained checkpoint is."""
    run = _train_tiny(dev=32)
    cfg = TrainConfig(epochs=2, lr=0.0, batch_size=16, progress=False, bf16=False, evals_per_epoch=2)
    kept = run(cfg)
    assert kept.best_step == 0
    trained = run(TrainConfig(**{**cfg.__dict__, "keep_start": False}))
    assert trained.best_step == 2 and trained.metrics == kept.metrics  # 64 rows / 16 = 4 steps, evals every 2


def test_patience_waits_for_min_steps_and_never_ends_a_keep_last_schedule():
    """At lr 0 no evaluation improves: patience 2, evaluating every step, stops at step 3 by default,
    not before ``min_steps``, and not at all when the last weights are kept (nothing picks a best)."""
    run = _train_tiny(dev=16)

    def steps(**kw) -> int:
        res = run(TrainConfig(epochs=1, lr=0.0, batch_size=8, eval_every=1, patience=2, keep_start=False,
                              progress=False, bf16=False, **kw))
        assert res.total == 8
        return res.steps

    assert steps() == 3 and steps(min_steps=6) == 6 and steps(keep_best=False) == 8


def test_teacher_logits_in_bf16_are_the_fp32_soft_targets_within_bf16_rounding():
    """The cached soft targets are computed as the student's training step computes the teacher
    (bf16 autocast where the CPU has it): really in bf16, and as targets no different."""
    from compress.distill import teacher_logits

    data = sst2_slice(train=64, dev=8)
    enc = encode(load_tokenizer(), list(data.splits["train"]), 32)
    teacher = tiny_bert(layers=2, seed=1, init_range=0.2)
    p32 = torch.softmax(torch.as_tensor(teacher_logits(teacher, enc, bf16=False)), -1)
    p16 = torch.softmax(torch.as_tensor(teacher_logits(teacher, enc, bf16=True)), -1)
    assert not torch.equal(p32, p16)  # the autocast took effect
    assert (p32 - p16).abs().max() < 0.05
    clear = p32.max(-1).values > 0.55  # rows not on the fence: the same class
    assert torch.equal(p32.argmax(-1)[clear], p16.argmax(-1)[clear])
