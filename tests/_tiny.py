"""Tiny randomly initialised BERT classifiers and real-data slices for the compression tests."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from tests.conftest import DATA


def tiny_bert(layers: int = 4, heads: int = 4, hidden: int = 32, intermediate: int = 64, seed: int = 0,
              act: str = "gelu", init_range: float = 0.02):
    from transformers import BertConfig, BertForSequenceClassification

    from compress.models import load_tokenizer

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=load_tokenizer().vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, intermediate_size=intermediate, num_labels=2, hidden_act=act,
                     max_position_embeddings=128, attn_implementation="eager",
                     initializer_range=init_range)
    model = BertForSequenceClassification(cfg)
    model.config._attn_implementation = "eager"
    return model.eval()


def save_tiny(path: Path, prune: dict[int, list[int]] | None = None, **kwargs) -> Path:
    """``tiny_bert(**kwargs)`` (optionally head-pruned) saved with the packaged tokenizer."""
    from compress.models import load_tokenizer

    model = tiny_bert(**kwargs)
    if prune:
        model.prune_heads(prune)
    model.save_pretrained(path)
    load_tokenizer().save_pretrained(path)
    return Path(path)


def sst2_slice(train: int = 300, dev: int = 100):
    from compress.tasks import load_task

    data = load_task("sst2", DATA)
    return replace(data, splits={"train": data.splits["train"][:train], "dev": data.splits["dev"][:dev]})
