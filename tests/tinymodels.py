"""Tiny random BERT classifiers and slices of the shared data for fast, real tests."""
from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import DATA


def make_tiny(path: Path, prune: dict[int, list[int]] | None = None, layers: int = 2, seed: int = 0) -> Path:
    """A 2-layer, 4-head, hidden-64 BertForSequenceClassification (optionally head-pruned) + the packaged tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from compress.models import load_tokenizer

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=layers, num_attention_heads=4,
                     intermediate_size=128, num_labels=2, max_position_embeddings=128)
    model = BertForSequenceClassification(cfg)
    if prune:
        model.prune_heads(prune)
    model.save_pretrained(path)
    load_tokenizer().save_pretrained(path)
    return Path(path)


def sst2_rows(n: int):
    from compress.tasks import load_task

    data = load_task("sst2", DATA)
    return data.spec, data.splits["dev"][:n]


# ---- plug-in engines for the failure tests (loaded by name inside the workers)

class _Raising:
    def predict(self, batch_features):
        raise RuntimeError("boom: engine exploded on purpose")


def raising_engine(spec, threads):
    return _Raising()


def dying_engine(spec, threads):
    os._exit(7)
