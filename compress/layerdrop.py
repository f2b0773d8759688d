"""Greedy layer pruning (Peer et al. 2021): drop one layer at a time, always the one whose
removal costs least, judged after a short fine-tune on a part of the training data held aside
(never dev, which stays for the final score)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from compress.batching import Encoded
from compress.distill import _encoder_layers, keep_layers
from compress.tasks import Example, TaskSpec, score
from compress.train import TrainConfig, ce_loss, predict, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drop:
    layer: int  # index in the model it was removed from
    original: int  # index in the starting model
    held_metric: float
    held_loss: float


def _cost(model: torch.nn.Module, spec: TaskSpec, held: Sequence[Example], held_enc: Encoded) -> tuple[float, float]:
    logits = predict(model, held_enc)
    labels = np.array([ex.label for ex in held])
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    loss = float(-logp[np.arange(len(labels)), labels].mean())
    return score(spec, held, logits)[spec.primary_metric], loss


def greedy_drop(model: torch.nn.Module, target_layers: int, spec: TaskSpec, train_enc: Encoded,
                train_labels: np.ndarray, held: Sequence[Example], held_enc: Encoded, steps: int = 100,
                lr: float = 5e-5, batch_size: int = 32, seed: int = 0) -> tuple[torch.nn.Module, list[Drop]]:
    """Return a ``target_layers``-deep model and the drops made, in order.

    Each candidate (the model without layer i) is fine-tuned for ``steps`` steps on
    ``train_enc`` and scored on ``held`` by the task's primary metric, ties broken by loss.
    """
    cfg = TrainConfig(epochs=1.0, lr=lr, batch_size=batch_size, seed=seed, max_steps=steps,
                      evals_per_epoch=1, patience=10**9, progress=False)
    loss_fn = ce_loss(train_labels)
    origin = list(range(len(_encoder_layers(model))))
    drops: list[Drop] = []
    while len(origin) > target_layers:
        best = None
        for i in range(len(origin)):
            cand = keep_layers(model, [j for j in range(len(origin)) if j != i])
            if steps > 0:
                train(cand, spec, train_enc, loss_fn, held, held_enc, cfg, desc=f"layerdrop-{origin[i]}")
            metric, loss = _cost(cand, spec, held, held_enc)
            log.info("layerdrop: without layer %d (of the original): held %s=%.4f loss %.4f",
                     origin[i], spec.primary_metric, metric, loss)
            if best is None or (metric, -loss) > (best[1], -best[2]):
                best = (i, metric, loss, cand)
        i, metric, loss, model = best
        drops.append(Drop(i, origin.pop(i), metric, loss))
        log.info("layerdrop: dropped original layer %d; %d layers left", drops[-1].original, len(origin))
    return model, drops
