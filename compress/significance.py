"""Significance of every block, attention head and FFN weight group (AxFormer, Nagarajan et al.
2022): how much the loss on held-aside training rows rises when that one component is removed.

Removal is exact, not a gradient estimate: a layer is skipped (the encoder's ModuleList runs
without it), a head's context is zeroed before the attention output projection (what
``head_mask`` does, but it also works on head-pruned layers), an FFN group's intermediate
activations are zeroed by a forward hook. The scores then drive one-shot dropping and
selective quantisation (compress/approx.py). Cost: one no-grad pass over a few hundred rows
per component, batched.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from compress.batching import Encoded, make_batches
from compress.distill import _encoder_layers
from compress.errors import UserInputError
from compress.models import attention_output, self_attention
from compress.train import set_threads, to_tensors

log = logging.getLogger(__name__)

FILE = "significance.json"
FFN_GROUPS = 8
ROWS = 512  # held-aside rows scored per component: enough to rank, cheap enough to run per build


@dataclass(frozen=True)
class Significance:
    """Loss increase (held-aside CE) when each component is removed; larger = more significant."""

    layers: tuple[float, ...]
    heads: tuple[tuple[float, ...], ...]  # per layer; head-pruned layers have fewer
    ffn_groups: tuple[tuple[float, ...], ...]  # per layer, contiguous intermediate-neuron groups
    base_loss: float
    rows: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Significance":
        try:
            return cls(tuple(float(x) for x in d["layers"]),
                       tuple(tuple(float(x) for x in row) for row in d["heads"]),
                       tuple(tuple(float(x) for x in row) for row in d["ffn_groups"]),
                       float(d["base_loss"]), int(d["rows"]), int(d["seed"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserInputError(f"significance: malformed scores ({exc!r})") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Significance":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise UserInputError(f"significance: not valid JSON ({exc})") from None

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / FILE
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> "Significance":
        path = Path(model_dir) / FILE
        if not path.is_file():
            raise UserInputError(f"model {model_dir}: no {FILE} (build it with a recipe whose approx is not 'none')")
        return cls.from_json(path.read_text())

    def top_layers(self, k: int) -> list[int]:
        """The ``k`` most significant layers, in model order."""
        if not 0 <= k <= len(self.layers):
            raise UserInputError(f"significance: cannot keep {k} of {len(self.layers)} layers")
        return sorted(int(i) for i in np.argsort(-np.asarray(self.layers), kind="stable")[:k])


def compute(model: torch.nn.Module, enc: Encoded, labels: np.ndarray, seed: int = 0, groups: int = FFN_GROUPS,
            batch_size: int = 64) -> Significance:
    """Score every layer, head and FFN group of ``model`` on the rows of ``enc``.

    ``labels``: class ids, or class probabilities [rows, classes] (e.g. the model's own softmax,
    against which every removal that changes anything costs loss). ``seed`` is only recorded:
    it chose the rows; the scoring itself is deterministic."""
    if len(enc) == 0:
        raise UserInputError("significance: no rows to score on")
    set_threads()
    was_training = model.training
    model.eval()
    gold = torch.as_tensor(np.asarray(labels))
    gold = gold.float() if gold.is_floating_point() else gold.long()
    batches = [(to_tensors(b), gold[b.indices]) for b in make_batches(enc, batch_size, "dynamic")]

    @torch.no_grad()
    def loss() -> float:
        total = sum(float(torch.nn.functional.cross_entropy(model(**x).logits.float(), y, reduction="sum"))
                    for x, y in batches)
        return total / len(enc)

    base = getattr(model, model.base_model_prefix).encoder
    layers = list(_encoder_layers(model))
    try:
        base_loss = loss()
        layer_scores = []
        for i in range(len(layers)):
            base.layer = torch.nn.ModuleList(layers[:i] + layers[i + 1:])
            layer_scores.append(loss() - base_loss)
        base.layer = torch.nn.ModuleList(layers)
        heads = [tuple(s - base_loss for s in _scores(loss, attention_output(layer), _head_slices(layer), pre=True))
                 for layer in layers]
        ffn = [tuple(s - base_loss for s in _scores(loss, layer.intermediate, _groups(layer, groups), pre=False))
               for layer in layers]
    finally:
        base.layer = torch.nn.ModuleList(layers)
        model.train(was_training)
    sig = Significance(tuple(layer_scores), tuple(heads), tuple(ffn), base_loss, len(enc), seed)
    log.info("significance: base loss %.4f; layers %s", base_loss, np.round(layer_scores, 4).tolist())
    return sig


def _head_slices(layer: torch.nn.Module) -> list[slice]:
    attn = self_attention(layer)  # BERT/RoBERTa attention.self, MPNet attention.attn
    d = attn.attention_head_size
    return [slice(h * d, (h + 1) * d) for h in range(attn.num_attention_heads)]


def _groups(layer: torch.nn.Module, n: int) -> list[slice]:
    size = layer.intermediate.dense.out_features
    if not 1 <= n <= size:
        raise UserInputError(f"significance: {n} FFN groups for an FFN of {size} neurons")
    edges = np.linspace(0, size, n + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _scores(loss: Callable[[], float], module: torch.nn.Module, parts: list[slice], pre: bool) -> list[float]:
    """Loss with each slice of ``module``'s input (pre) or output zeroed in turn."""
    return [_masked(loss, module, part, pre) for part in parts]


def _masked(loss: Callable[[], float], module: torch.nn.Module, part: slice, pre: bool) -> float:
    def zero(x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[..., part] = 0
        return x

    if pre:
        handle = module.register_forward_pre_hook(lambda mod, args: (zero(args[0]), *args[1:]))
    else:
        handle = module.register_forward_hook(lambda mod, args, out: zero(out))
    try:
        return loss()
    finally:
        handle.remove()
