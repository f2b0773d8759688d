"""Task-specific knowledge distillation as FastFormers uses it (TinyBERT-style).

Loss = alpha * T^2 * soft cross-entropy(student/T, teacher/T) + (1 - alpha) * hard-label CE
     + hidden_weight * MSE(hidden states) + attention_weight * MSE(attention probabilities),
student layer i matched to teacher layer ``layer_map[i]``. Students start from a subset of
the teacher's layers or from another model of the same family; GELU may become ReLU.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers.activations import ACT2FN

from compress.batching import Encoded
from compress.errors import UserInputError
from compress.models import remaining_heads
from compress.tasks import Example, TaskSpec
from compress.train import LossFn, TrainConfig, TrainResult, predict, train

log = logging.getLogger(__name__)

TEACHER_PASSES = 0  # teacher predictions over a training set in this process (tests count them)


@dataclass(frozen=True)
class KDConfig:
    temperature: float = 1.0
    alpha: float = 1.0  # soft-loss weight; 1 - alpha on the hard labels
    hidden_weight: float = 0.0
    attention_weight: float = 0.0


def layer_map(n_student: int, n_teacher: int) -> list[int]:
    """Evenly spaced teacher layers (0-based) for each student layer, the last on the last."""
    if not 1 <= n_student <= n_teacher:
        raise UserInputError(f"a {n_student}-layer student cannot map onto a {n_teacher}-layer teacher")
    return [round((i + 1) * n_teacher / n_student) - 1 for i in range(n_student)]


def _encoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """``<base>.encoder.layer``: BERT, RoBERTa and MPNet (the families the build steps support);
    another layout is refused in one line rather than with an AttributeError mid-build."""
    base = getattr(model, model.base_model_prefix)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise UserInputError(f"a {model.config.model_type} model has no encoder.layer list: layer, head and FFN "
                             f"steps support BERT, RoBERTa and MPNet")
    return layers


def keep_layers(model: torch.nn.Module, layers: Sequence[int]) -> torch.nn.Module:
    """A copy of ``model`` with only ``layers`` (0-based, in order) in its encoder."""
    model = copy.deepcopy(model)
    old = _encoder_layers(model)
    base = getattr(model, model.base_model_prefix)
    base.encoder.layer = torch.nn.ModuleList([old[i] for i in layers])
    pruned = getattr(model.config, "pruned_heads", {}) or {}
    model.config.pruned_heads = {new: pruned[old_i] for new, old_i in enumerate(layers) if old_i in pruned}
    model.config.num_hidden_layers = len(layers)
    for i, layer in enumerate(base.encoder.layer):  # keep layer indices consistent where models track them
        for mod in layer.modules():
            if hasattr(mod, "layer_idx"):
                mod.layer_idx = i
    return model


def set_activation(model: torch.nn.Module, activation: str) -> None:
    """Switch the FFN activation (FastFormers' GELU -> ReLU); the config records it for reloads."""
    if activation not in ("gelu", "relu"):
        raise UserInputError(f"activation must be gelu or relu, not {activation!r}")
    model.config.hidden_act = activation
    for layer in _encoder_layers(model):
        layer.intermediate.intermediate_act_fn = ACT2FN[activation]


def make_student(teacher: torch.nn.Module, n_layers: int | None, activation: str = "gelu",
                 init: torch.nn.Module | None = None) -> torch.nn.Module:
    """Student from ``init`` (same family) or the teacher, keeping evenly spaced layers."""
    source = init if init is not None else teacher
    if init is not None and init.config.model_type != teacher.config.model_type:
        raise UserInputError(
            f"student_init is a {init.config.model_type} model but the teacher is {teacher.config.model_type}")
    depth = source.config.num_hidden_layers
    n = depth if n_layers is None else n_layers
    student = keep_layers(source, layer_map(n, depth))
    set_activation(student, activation)
    log.info("student: %d of %d layers %s, activation %s", n, depth, layer_map(n, depth), activation)
    return student


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy against the teacher's tempered distribution, scaled by T^2 (Hinton et al.)."""
    t = temperature
    target = F.softmax(teacher_logits / t, dim=-1)
    return -(target * F.log_softmax(student_logits / t, dim=-1)).sum(-1).mean() * t * t


def kd_loss_fn(teacher: torch.nn.Module, student_config, cfg: KDConfig, labels: np.ndarray,
               teacher_logits: np.ndarray | None = None) -> LossFn:
    """The distillation loss for ``train``; precomputed teacher logits spare a teacher pass
    when only logits are matched."""
    gold = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    cached = None if teacher_logits is None else torch.as_tensor(teacher_logits, dtype=torch.float32)
    need_hidden, need_attn = cfg.hidden_weight > 0, cfg.attention_weight > 0
    mapping = layer_map(student_config.num_hidden_layers, teacher.config.num_hidden_layers)
    kept_heads = [remaining_heads(student_config, i) for i in range(len(mapping))]
    teacher.eval()

    def loss(model: torch.nn.Module, inputs: dict[str, torch.Tensor], rows: np.ndarray) -> torch.Tensor:
        out = model(**inputs, output_hidden_states=need_hidden, output_attentions=need_attn)
        if cached is not None and not (need_hidden or need_attn):
            t_logits, t_out = cached[rows], None
        else:
            with torch.no_grad():
                t_out = teacher(**inputs, output_hidden_states=need_hidden, output_attentions=need_attn)
            t_logits = t_out.logits
        total = cfg.alpha * soft_cross_entropy(out.logits, t_logits, cfg.temperature)
        if cfg.alpha < 1:
            total = total + (1 - cfg.alpha) * F.cross_entropy(out.logits, gold[rows])
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        if need_hidden:
            pairs = [(0, 0)] + [(i + 1, m + 1) for i, m in enumerate(mapping)]
            mse = sum(((out.hidden_states[s] - t_out.hidden_states[t]) ** 2 * mask).sum() / mask.sum() /
                      out.hidden_states[s].shape[-1] for s, t in pairs)
            total = total + cfg.hidden_weight * mse / len(pairs)
        if need_attn:
            qmask = mask.unsqueeze(1)  # [B, 1, L, 1]: query rows of real tokens
            mse = 0.0
            for i, (m, kept) in enumerate(zip(mapping, kept_heads)):
                t_att = t_out.attentions[m][:, kept]
                mse = mse + ((out.attentions[i] - t_att) ** 2 * qmask).sum() / (qmask.sum() * len(kept))
            total = total + cfg.attention_weight * mse / len(mapping)
        return total

    return loss


def teacher_logits(teacher: torch.nn.Module, enc: Encoded, batch_size: int = 128, bf16: bool = False) -> np.ndarray:
    """The teacher's logits for every training row: the soft targets of logit-only distillation.
    ``bf16``: with bf16 autocast, as a training step computes the teacher for hidden-state KD; on a
    CPU with native bf16 the pass over a large transfer set takes about half the fp32 time."""
    global TEACHER_PASSES
    TEACHER_PASSES += 1
    return predict(teacher, enc, batch_size, bf16=bf16, desc="teacher logits")


def distill(student: torch.nn.Module, teacher: torch.nn.Module, spec: TaskSpec, train_enc: Encoded,
            labels: np.ndarray, dev_examples: Sequence[Example], dev_enc: Encoded,
            train_cfg: TrainConfig, kd: KDConfig, desc: str = "distill", logits: np.ndarray | None = None,
            **train_kw) -> TrainResult:
    """Train ``student`` in place to imitate ``teacher`` on the training rows. ``logits``: the
    teacher's on those rows, computed once by the caller and shared by every student;
    ``train_kw``: ``train``'s hook and checkpoint."""
    if logits is None and not (kd.hidden_weight or kd.attention_weight):
        log.info("%s: teacher logits for %d training rows", desc, len(train_enc))
        logits = teacher_logits(teacher, train_enc, train_cfg.eval_batch_size)
    fn = kd_loss_fn(teacher, student.config, kd, labels, logits)
    return train(student, spec, train_enc, fn, dev_examples, dev_enc, train_cfg, desc=desc, **train_kw)
