"""Structured pruning (FastFormers section 3): rank every attention head and FFN neuron by
first-order importance, keep the same number in every layer, and remove the rest for real.

Importance = accumulated |d loss / d mask| over a dataset, where a head mask multiplies each
head's attention probabilities and a neuron mask multiplies the FFN intermediate activations.
Equal counts per layer keep the result a stock config: heads go through ``prune_heads``
(``config.pruned_heads`` is saved and replayed on load), FFN neurons by slicing the two dense
layers and setting ``config.intermediate_size``. A pruned model can be pruned again (gradual
pruning): importance is then per remaining head, mapped back to the original head numbers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from compress.batching import Encoded, make_batches
from compress.distill import _encoder_layers
from compress.errors import UserInputError
from compress.models import fit_position_bias, remaining_heads
from compress.train import set_threads, to_tensors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Importance:
    heads: np.ndarray  # [layers, remaining heads], in the order of remaining_heads()
    ffn: np.ndarray  # [layers, intermediate]


def importance(model: torch.nn.Module, enc: Encoded, labels: np.ndarray, batch_size: int = 32) -> Importance:
    """First-order importance of every head and FFN neuron on the rows of ``enc``."""
    set_threads()
    cfg = model.config
    layers = _encoder_layers(model)
    counts = {len(remaining_heads(cfg, i)) for i in range(len(layers))}
    if len(counts) != 1:
        raise UserInputError(f"importance: layers keep unequal head counts {sorted(counts)}; prune gives equal counts")
    n_layers, n_heads = len(layers), counts.pop()
    head_mask = torch.ones(n_layers, n_heads, requires_grad=True)
    ffn_masks = [torch.ones(layer.intermediate.dense.out_features, requires_grad=True) for layer in layers]
    hooks = [layer.intermediate.register_forward_hook(lambda mod, inp, out, m=m: out * m)
             for layer, m in zip(layers, ffn_masks)]
    if getattr(cfg, "_attn_implementation", "eager") != "eager":
        model.set_attn_implementation("eager")  # head_mask multiplies explicit attention probabilities
    gold = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    head_imp = torch.zeros(n_layers, n_heads)
    ffn_imp = [torch.zeros_like(m) for m in ffn_masks]
    was_training = model.training
    model.eval()
    try:
        for batch in make_batches(enc, batch_size, "dynamic"):
            logits = model(**to_tensors(batch), head_mask=head_mask).logits
            loss = torch.nn.functional.cross_entropy(logits, gold[batch.indices])
            grads = torch.autograd.grad(loss, [head_mask, *ffn_masks])
            head_imp += grads[0].abs()
            for acc, g in zip(ffn_imp, grads[1:]):
                acc += g.abs()
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return Importance(head_imp.numpy(), torch.stack(ffn_imp).numpy())


def prune(model: torch.nn.Module, imp: Importance, heads_kept: int | None, ffn_kept: int | None) -> torch.nn.Module:
    """Keep the ``heads_kept`` most important heads and ``ffn_kept`` neurons in every layer (in place)."""
    cfg = model.config
    layers = _encoder_layers(model)
    if heads_kept is not None:
        n_heads = imp.heads.shape[1]
        if not 1 <= heads_kept <= n_heads:
            raise UserInputError(f"heads_kept={heads_kept}: must be within 1..{n_heads}")
        drop = {}
        for i in range(len(layers)):  # importance columns follow the heads still there, by original number
            have = remaining_heads(cfg, i)
            gone = sorted(have[int(h)] for h in np.argsort(-imp.heads[i], kind="stable")[heads_kept:])
            if gone:
                drop[i] = gone
        if drop:
            model.prune_heads(drop)
            fit_position_bias(model)  # MPNet: each layer keeps its own heads' position-bias columns
        log.info("pruned heads per layer: %s", drop)
    if ffn_kept is not None:
        size = cfg.intermediate_size
        if not 1 <= ffn_kept <= size:
            raise UserInputError(f"ffn_kept={ffn_kept}: must be within 1..{size}")
        for i, layer in enumerate(layers):
            keep = torch.as_tensor(np.sort(np.argsort(-imp.ffn[i], kind="stable")[:ffn_kept]), dtype=torch.long)
            layer.intermediate.dense = _slice(layer.intermediate.dense, keep, dim=0)
            layer.output.dense = _slice(layer.output.dense, keep, dim=1)
        cfg.intermediate_size = ffn_kept
        log.info("kept %d of %d FFN neurons per layer", ffn_kept, size)
    return model


def _slice(linear: torch.nn.Linear, keep: torch.Tensor, dim: int) -> torch.nn.Linear:
    """A new Linear with only the ``keep`` outputs (dim 0) or inputs (dim 1)."""
    weight = linear.weight.detach().index_select(dim, keep).clone()
    bias = linear.bias.detach().clone() if linear.bias is not None else None
    if dim == 0 and bias is not None:
        bias = bias[keep].clone()
    out = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        out.weight.copy_(weight)
        if bias is not None:
            out.bias.copy_(bias)
    return out


def expected_parameters(config, num_labels: int) -> int:
    """Parameter count of a BERT, RoBERTa or MPNet classifier with this (possibly pruned) config.
    RoBERTa's and MPNet's classification head (dense + out_proj) counts as BERT's pooler + classifier;
    MPNet has no segment table but a relative-position bias of every original head (never pruned)."""
    h, i, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    head = h // config.num_attention_heads
    pruned = getattr(config, "pruned_heads", {}) or {}
    emb = (config.vocab_size + config.max_position_embeddings + getattr(config, "type_vocab_size", 0)) * h + 2 * h
    total = emb
    if config.model_type == "mpnet":
        total += config.relative_attention_num_buckets * config.num_attention_heads
    for layer in range(L):
        a = (config.num_attention_heads - len(pruned.get(layer, pruned.get(str(layer), ())))) * head
        total += 3 * (h * a + a) + (a * h + h) + 2 * h  # q, k, v; output dense; LayerNorm
        total += (h * i + i) + (i * h + h) + 2 * h  # FFN + LayerNorm
    total += h * h + h  # pooler
    total += h * num_labels + num_labels
    return total
