"""Greedy layer pruning removes the layer that was made useless, judged on held-aside
training rows."""
from __future__ import annotations

import copy

import numpy as np
import torch

from compress.batching import encode
from compress.layerdrop import greedy_drop
from compress.models import load_tokenizer
from compress.train import TrainConfig, ce_loss, train
from tests._tiny import sst2_slice, tiny_bert


def _identity_layer(layer):
    """Zero both residual branches: with unit LayerNorms the layer passes its input through."""
    layer = copy.deepcopy(layer)
    with torch.no_grad():
        for lin in (layer.attention.output.dense, layer.output.dense):
            lin.weight.zero_()
            lin.bias.zero_()
    return layer


def test_greedy_drop_removes_the_useless_layer():
    data = sst2_slice(train=400, dev=64)
    tok = load_tokenizer()
    rows, dev = list(data.splits["train"]), list(data.splits["dev"])
    held, rest = rows[:160], rows[160:]
    held_enc, rest_enc = encode(tok, held, 48), encode(tok, rest, 48)
    model = tiny_bert(layers=2)
    for name, p in model.named_parameters():  # unit LayerNorms keep the inserted layer an identity
        if "LayerNorm" in name:
            p.requires_grad_(False)
    # fit the held rows well, so that removing a real layer costs accuracy
    train(model, data.spec, held_enc, ce_loss(np.array([ex.label for ex in held])), held, held_enc,
          TrainConfig(epochs=12, lr=3e-3, batch_size=32, progress=False, patience=100, bf16=False))
    layers = model.bert.encoder.layer
    model.bert.encoder.layer = torch.nn.ModuleList([layers[0], _identity_layer(layers[0]), layers[1]])
    model.config.num_hidden_layers = 3

    labels = np.array([ex.label for ex in rest])
    small, drops = greedy_drop(model, 2, data.spec, rest_enc, labels, held, held_enc, steps=0)
    assert [d.original for d in drops] == [1]
    assert small.config.num_hidden_layers == 2 and len(small.bert.encoder.layer) == 2
    assert len(model.bert.encoder.layer) == 3  # the input model is left alone

    smaller, drops = greedy_drop(model, 1, data.spec, rest_enc, labels, held, held_enc, steps=2, batch_size=32)
    assert len(drops) == 2 and drops[0].original == 1
    assert len(smaller.bert.encoder.layer) == 1
