"""Sign-matching attention (AxFormer's attention approximation), as a PyTorch experiment.

Each query attends only to the keys whose sign pattern agrees with its own the most
(sign(q)·sign(k) = head_size − 2 × Hamming distance of the sign bits), a cheap stand-in for
the largest dot products; the other keys get no attention weight. On hardware with bit-level
kernels the agreement costs far less than q·k; in dense PyTorch it costs as much, so this
module measures what the approximation does to accuracy, and benchmarks/sign_matching.py
what it does to speed. It is not a sweep engine: it has not measured faster or more accurate.
"""
from __future__ import annotations

import math
import types

import torch

from compress.distill import _encoder_layers
from compress.errors import UserInputError


def _forward(self, hidden_states, attention_mask=None, head_mask=None, *args, output_attentions=False, **kwargs):
    b, n, _ = hidden_states.shape

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(b, n, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    q, k, v = heads(self.query(hidden_states)), heads(self.key(hidden_states)), heads(self.value(hidden_states))
    scores = q @ k.transpose(-1, -2) / math.sqrt(self.attention_head_size)
    agree = torch.sign(q) @ torch.sign(k).transpose(-1, -2)
    if attention_mask is not None:
        scores = scores + attention_mask
        agree = agree + attention_mask  # padding never ranks among the kept keys
    kept = max(1, math.ceil(self.sign_keep * n))
    if kept < n:
        threshold = agree.topk(kept, dim=-1).values[..., -1:]
        scores = scores.masked_fill(agree < threshold, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1)
    if head_mask is not None:
        probs = probs * head_mask
    context = (probs @ v).transpose(1, 2).reshape(b, n, self.all_head_size)
    return context, probs


def apply(model: torch.nn.Module, keep: float) -> torch.nn.Module:
    """Switch every self-attention of a BERT-family ``model`` to sign matching, in place: each
    query keeps the ``keep`` fraction of keys (ties at the threshold kept) with the most sign agreement."""
    if not 0 < keep <= 1:
        raise UserInputError(f"sign matching: keep must be within (0, 1], not {keep}")
    for layer in _encoder_layers(model):
        attn = layer.attention.self
        if getattr(attn, "position_embedding_type", "absolute") != "absolute":
            raise UserInputError("sign matching: only absolute position embeddings are supported")
        attn.sign_keep = keep
        attn.forward = types.MethodType(_forward, attn)
    return model
