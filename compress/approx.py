"""Approximations driven by significance scores (AxFormer): drop the least significant blocks
and heads in one shot, and keep only the most significant layers in fp32 when quantising.

Dropping needs no search (greedy layer pruning fine-tunes one candidate per layer per drop);
selective int8 spends the accuracy budget where the loss is least sensitive.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from compress.distill import _encoder_layers, keep_layers
from compress.errors import UserInputError
from compress.models import fit_position_bias
from compress.significance import Significance

log = logging.getLogger(__name__)

_LAYER = re.compile(r"(?:^|[/.])layer\.(\d+)[/.]")


def drop(model: torch.nn.Module, sig: Significance, layers_kept: int | None = None,
         heads_kept: int | None = None) -> torch.nn.Module:
    """A copy of ``model`` without its least significant heads (``heads_kept`` per layer, via
    ``prune_heads``) and layers (the ``layers_kept`` most significant stay, in order)."""
    n_layers = len(_encoder_layers(model))
    if len(sig.layers) != n_layers:
        raise UserInputError(f"significance scores are for {len(sig.layers)} layers but the model has {n_layers}")
    if heads_kept is not None:
        model = keep_layers(model, range(n_layers))  # a copy, so the caller's model stays whole
        drop_heads = {}
        for i, scores in enumerate(sig.heads):
            if not 1 <= heads_kept <= len(scores):
                raise UserInputError(f"approx: heads kept {heads_kept} but layer {i} has {len(scores)} heads")
            gone = sorted(int(h) for h in np.argsort(-np.asarray(scores), kind="stable")[heads_kept:])
            if gone:
                drop_heads[i] = gone
        if drop_heads:
            if any((getattr(model.config, "pruned_heads", {}) or {}).values()):
                raise UserInputError("approx: the model is already head-pruned; drop heads from an unpruned model")
            model.prune_heads(drop_heads)
            fit_position_bias(model)  # MPNet: each layer keeps its own heads' position-bias columns
        log.info("approx: dropped heads %s", drop_heads)
    if layers_kept is not None:
        if not 1 <= layers_kept <= n_layers:
            raise UserInputError(f"approx: layers kept {layers_kept} must be within 1..{n_layers}")
        keep = sig.top_layers(layers_kept)
        model = keep_layers(model, keep)
        log.info("approx: kept layers %s of %d", keep, n_layers)
    elif heads_kept is None:
        model = keep_layers(model, range(n_layers))
    return model


def restrict(sig: Significance, layers_kept: int | None = None, heads_kept: int | None = None) -> Significance:
    """The scores of what ``drop`` keeps, re-indexed for the smaller model: one-shot, as measured
    in the whole model (re-scoring the dropped model would cost a second full pass)."""
    keep = sig.top_layers(layers_kept) if layers_kept is not None else list(range(len(sig.layers)))

    def heads(scores: tuple[float, ...]) -> tuple[float, ...]:
        if heads_kept is None:
            return scores
        kept = sorted(int(h) for h in np.argsort(-np.asarray(scores), kind="stable")[:heads_kept])
        return tuple(scores[h] for h in kept)

    return replace(sig, layers=tuple(sig.layers[i] for i in keep), heads=tuple(heads(sig.heads[i]) for i in keep),
                   ffn_groups=tuple(sig.ffn_groups[i] for i in keep))


def layer_nodes(onnx_path: str | Path) -> dict[int, list[str]]:
    """Encoder layer index -> names of its quantisable nodes (MatMul, fused Attention) in an
    exported graph. MatMuls carry ``layer.N`` in their names; fused Attention nodes do not, so
    the k-th Attention node in graph order is layer k's."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    out: dict[int, list[str]] = {}
    attention = 0
    for node in graph.node:
        if node.op_type == "Attention":
            out.setdefault(attention, []).append(node.name)
            attention += 1
        elif node.op_type == "MatMul":
            m = _LAYER.search(node.name)
            if m:
                out.setdefault(int(m.group(1)), []).append(node.name)
    return out


def fp32_nodes(onnx_path: str | Path, sig: Significance, keep_fp32: int) -> tuple[str, ...]:
    """Nodes of the ``keep_fp32`` most significant layers: excluded from int8 quantisation."""
    nodes = layer_nodes(onnx_path)
    if nodes and max(nodes) + 1 != len(sig.layers):
        raise UserInputError(
            f"significance scores are for {len(sig.layers)} layers but {onnx_path} has {max(nodes) + 1}")
    return tuple(sorted(n for i in sig.top_layers(keep_fp32) for n in nodes.get(i, ())))
