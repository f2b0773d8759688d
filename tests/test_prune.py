"""Structured pruning: importance finds what was made to matter; pruning removes the rest for
real, and the saved model reloads as a stock model with the same logits."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import torch

from tests._tiny import tiny_bert
from compress.batching import encode
from compress.models import load_tokenizer
from compress.prune import expected_parameters, importance, prune
from compress.train import predict

SENTENCES = ["a gripping , beautiful film", "dull and lifeless", "the plot is thin but the acting shines",
             "i would not watch it again", "an utter delight from start to finish", "boring", "moving",
             "it never quite finds its footing"] * 4


def _data():
    from compress.tasks import Example

    rows = [Example(s, None, i % 2) for i, s in enumerate(SENTENCES)]
    return rows, encode(load_tokenizer(), rows, 32), np.array([r.label for r in rows])


def test_importance_finds_the_head_and_neurons_that_matter():
    model = tiny_bert(layers=2, heads=4)
    layer = model.bert.encoder.layer[0]
    hd = 8  # 32 hidden / 4 heads
    with torch.no_grad():
        # only head 2 of layer 0 passes values on; only FFN neurons 0..9 can fire
        for h in (0, 1, 3):
            layer.attention.self.value.weight[h * hd:(h + 1) * hd] = 0
            layer.attention.self.value.bias[h * hd:(h + 1) * hd] = 0
        layer.intermediate.dense.weight[10:] = 0
        layer.intermediate.dense.bias[10:] = 0
    _, enc, labels = _data()
    imp = importance(model, enc, labels, batch_size=8)
    assert imp.heads.shape == (2, 4) and imp.ffn.shape == (2, 64)
    assert int(np.argmax(imp.heads[0])) == 2
    assert imp.heads[0, 2] > 0 and np.allclose(imp.heads[0, [0, 1, 3]], 0)
    assert set(np.argsort(-imp.ffn[0])[:10]) == set(range(10))
    prune(model, imp, heads_kept=1, ffn_kept=10)
    assert set(model.config.pruned_heads[0]) == {0, 1, 3}
    assert sorted(model.bert.encoder.layer[0].intermediate.dense.weight.abs().sum(1).nonzero().flatten().tolist()) \
        == list(range(10))


def test_pruning_again_ranks_the_remaining_heads_by_their_original_numbers(tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = tiny_bert(layers=2, heads=4)
    layer = model.bert.encoder.layer[0]
    with torch.no_grad():  # head 2 of layer 0 is the only one there that passes values on
        for h in (0, 1, 3):
            layer.attention.self.value.weight[h * 8:(h + 1) * 8] = 0
            layer.attention.self.value.bias[h * 8:(h + 1) * 8] = 0
    _, enc, labels = _data()
    prune(model, importance(model, enc, labels, batch_size=8), heads_kept=2, ffn_kept=32)
    assert 2 not in model.config.pruned_heads[0]
    model.save_pretrained(tmp_path / "once")  # the second round starts from a reload, as in the pipeline
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path / "once")
    imp = importance(again, enc, labels, batch_size=8)
    assert imp.heads.shape == (2, 2) and imp.ffn.shape == (2, 32)
    prune(again, imp, heads_kept=1, ffn_kept=16)
    assert sorted(again.config.pruned_heads[0]) == [0, 1, 3]
    assert all(len(v) == 3 for v in again.config.pruned_heads.values())
    assert again.bert.encoder.layer[1].attention.self.query.weight.shape == (8, 32)
    assert sum(p.numel() for p in again.parameters()) == expected_parameters(again.config, 2)
    again.save_pretrained(tmp_path / "twice")
    back = AutoModelForSequenceClassification.from_pretrained(tmp_path / "twice")
    np.testing.assert_allclose(predict(back, enc), predict(again, enc), atol=1e-5)


def test_pruned_model_has_asked_shapes_and_reloads_with_same_logits(tmp_path):
    model = tiny_bert(layers=3, heads=4)
    rows, enc, labels = _data()
    imp = importance(model, enc, labels, batch_size=8)
    prune(model, imp, heads_kept=2, ffn_kept=16)
    for layer in model.bert.encoder.layer:
        assert layer.attention.self.query.weight.shape == (16, 32)
        assert layer.attention.output.dense.weight.shape == (32, 16)
        assert layer.intermediate.dense.weight.shape == (16, 32)
        assert layer.output.dense.weight.shape == (32, 16)
    assert model.config.intermediate_size == 16
    assert all(len(v) == 2 for v in model.config.pruned_heads.values())
    n = sum(p.numel() for p in model.parameters())
    assert n == expected_parameters(model.config, 2)
    assert n < sum(p.numel() for p in tiny_bert(layers=3, heads=4).parameters())

    model.save_pretrained(tmp_path / "m")
    logits = predict(model, enc)
    ids = tmp_path / "ids.npy"
    np.save(ids, np.stack([np.pad(x, (0, 32 - len(x))) for x in enc.features["input_ids"]]))
    code = textwrap.dedent(f"""
        import numpy as np, torch
        from transformers import AutoModelForSequenceClassification
        m = AutoModelForSequenceClassification.from_pretrained({str(tmp_path / 'm')!r}).eval()
        ids = torch.from_numpy(np.load({str(ids)!r}))
        with torch.no_grad():
            out = m(input_ids=ids, attention_mask=(ids != 0).long()).logits
        np.save({str(tmp_path / 'out.npy')!r}, out.numpy())
        print(sum(p.numel() for p in m.parameters()))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert int(res.stdout.split()[-1]) == n
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), logits, atol=1e-5)
