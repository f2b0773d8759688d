"""Significance scores (AxFormer): a component made useless scores lowest, scores are
deterministic and round-trip through JSON, selective int8 keeps the chosen layers fp32, and
the pipeline's significance-drop recipe builds a shallower model with its own scores."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from compress.approx import drop, fp32_nodes, layer_nodes
from compress.cache import read_meta
from compress.errors import UserInputError
from compress.significance import Significance, compute
from tests._tiny import save_tiny, sst2_slice, tiny_bert

DEAD_LAYER, DEAD_HEAD, DEAD_GROUP = 1, (2, 3), (3, 5)


def _crippled():
    """A tiny model with one identity layer, one silent head and one silent FFN group."""
    model = tiny_bert(layers=4, heads=4, hidden=32, intermediate=64, init_range=0.2)
    layers = model.bert.encoder.layer
    with torch.no_grad():
        dead = layers[DEAD_LAYER]
        for lin in (dead.attention.output.dense, dead.output.dense):  # residual + unit LayerNorm: identity
            lin.weight.zero_()
            lin.bias.zero_()
        layer, head = DEAD_HEAD
        d = layers[layer].attention.self.attention_head_size
        value = layers[layer].attention.self.value
        value.weight[head * d:(head + 1) * d].zero_()
        value.bias[head * d:(head + 1) * d].zero_()
        layer, group = DEAD_GROUP
        inter = layers[layer].intermediate.dense
        inter.weight[group * 8:(group + 1) * 8].zero_()  # 64 neurons in 8 groups of 8; GELU(0) = 0
        inter.bias[group * 8:(group + 1) * 8].zero_()
    return model


@pytest.fixture(scope="module")
def scored(tokenizer):
    from compress.batching import encode
    from compress.train import predict

    data = sst2_slice(train=48, dev=8)
    enc = encode(tokenizer, data.splits["train"], 64)
    model = _crippled()
    # the model's own soft answers: any removal that changes the output raises the loss
    labels = torch.softmax(torch.from_numpy(predict(model, enc)), -1).numpy()
    return model, enc, labels, compute(model, enc, labels, seed=3)


def test_useless_components_score_lowest(scored):
    _, _, _, sig = scored
    assert len(sig.layers) == 4 and all(len(h) == 4 for h in sig.heads) and all(len(g) == 8 for g in sig.ffn_groups)
    assert int(np.argmin(sig.layers)) == DEAD_LAYER and abs(sig.layers[DEAD_LAYER]) < 1e-3
    live = [i for i in range(4) if i != DEAD_LAYER]  # inside the identity layer everything scores 0
    heads = np.asarray(sig.heads)
    assert heads[DEAD_HEAD] == 0.0 and np.all(heads[DEAD_LAYER] == 0.0)
    assert np.sort(heads[live].ravel())[1] > 1e-4  # only the silent head scores (near) zero
    groups = np.asarray(sig.ffn_groups)
    assert groups[DEAD_GROUP] == 0.0 and np.sort(groups[live].ravel())[1] > 1e-5
    assert sig.rows == 48 and sig.seed == 3 and sig.base_loss > 0


def test_scores_round_trip_and_repeat(scored, tmp_path):
    model, enc, labels, sig = scored
    assert Significance.from_json(sig.to_json()) == sig
    sig.save(tmp_path)
    assert Significance.load(tmp_path) == sig
    assert compute(model, enc, labels, seed=3) == sig
    with pytest.raises(UserInputError):
        Significance.load(tmp_path / "missing")
    with pytest.raises(UserInputError):
        Significance.from_json('{"layers": [1]}')


def test_drop_removes_least_significant(scored):
    model, _, _, sig = scored
    small = drop(model, sig, layers_kept=3, heads_kept=3)
    assert small.config.num_hidden_layers == 3 and len(small.bert.encoder.layer) == 3
    assert model.config.num_hidden_layers == 4  # the original is untouched
    pruned = {int(k): v for k, v in small.config.pruned_heads.items()}
    # layer 2 (index 1 after dropping layer 1) lost its silent head 3
    assert 3 in pruned[1] and all(len(v) == 1 for v in pruned.values())
    assert small.bert.encoder.layer[0] is not model.bert.encoder.layer[0]
    with pytest.raises(UserInputError):
        drop(model, sig, layers_kept=5)


def test_selective_int8_keeps_significant_layers_fp32(tmp_path):
    import onnx

    from autotune.backends.ort_export import export_onnx
    from autotune.backends.ort_quantize import quantize_int8
    from autotune.engines import prepare

    model_dir = save_tiny(tmp_path / "m", layers=3)
    exported = export_onnx(model_dir, tmp_path / "cache")
    nodes = layer_nodes(exported.path)
    assert sorted(nodes) == [0, 1, 2] and all(len(v) == 4 for v in nodes.values())  # Attention + 3 MatMul
    sig = Significance((0.1, 0.9, 0.2), ((0.0,) * 4,) * 3, ((0.0,) * 8,) * 3, 0.5, 10, 0)
    keep = fp32_nodes(exported.path, sig, 1)
    assert set(keep) == set(nodes[1])
    q = quantize_int8(exported, tmp_path / "cache", exclude_nodes=keep)
    full = quantize_int8(exported, tmp_path / "cache")
    assert q.key != full.key and "exclude_nodes" not in full.params
    graph = onnx.load(str(q.path)).graph
    ops = {n.name: n.op_type for n in graph.node}
    assert all(ops[name] in ("Attention", "MatMul") for name in keep)
    counts = {op: sum(1 for n, o in ops.items() if o == op and ("layer." in n or "Attention" in op))
              for op in ("Attention", "QAttention", "MatMulInteger")}
    assert counts["Attention"] == 1 and counts["QAttention"] == 2 and counts["MatMulInteger"] == 6

    with pytest.raises(UserInputError, match="significance.json"):
        prepare("ort-int8-selective", model_dir, tmp_path / "cache")
    sig.save(model_dir)
    spec = prepare("ort-int8-selective", model_dir, tmp_path / "cache")
    assert spec.meta["quantize"]["exclude_nodes"] == sorted(keep)
    assert spec.meta["export_key"] == exported.key  # significance.json does not change the export


def test_pipeline_significance_drop(tmp_path):
    from transformers import AutoConfig

    from compress.pipeline import build
    from compress.recipe import Recipe

    teacher = save_tiny(tmp_path / "teacher", layers=4)
    base = Recipe(task="sst2", teacher=str(teacher), teacher_epochs=0)
    recipe = Recipe(task="sst2", teacher=str(teacher), teacher_epochs=0, approx="significance-drop",
                    approx_layers=2, approx_heads=3)
    assert "approx" not in base.to_dict() and Recipe.from_dict(recipe.to_dict()) == recipe
    built = build(recipe, sst2_slice(train=32, dev=8), tmp_path / "cache", progress=False)
    assert [s.name for s in built.steps] == ["teacher", "significance", "approx"]
    cfg = AutoConfig.from_pretrained(built.model_dir)
    assert cfg.num_hidden_layers == 2 and all(len(v) == 1 for v in cfg.pruned_heads.values())
    sig = Significance.load(built.model_dir)
    assert len(sig.layers) == 2 and all(len(h) == 3 for h in sig.heads)
    for bad in (dict(approx="significance-drop"), dict(approx_layers=2), dict(approx="fast"),
                dict(approx="significance-drop", approx_heads=2, heads_kept=2)):
        with pytest.raises(UserInputError):
            Recipe(task="sst2", **bad).check()


def test_pipeline_redistils_after_the_drop(tmp_path):
    """approx_epochs > 0 trains the dropped model from the undropped one; without it the drop's
    key (and any cached model) is what it was before the field existed."""
    from compress.pipeline import build
    from compress.recipe import Recipe
    import compress.train as T

    teacher = save_tiny(tmp_path / "teacher", layers=3)
    data = sst2_slice(train=32, dev=8)
    plain = Recipe(task="sst2", teacher=str(teacher), teacher_epochs=0, approx="significance-drop", approx_layers=2)
    assert "approx_epochs" in plain.to_dict()
    no_kd = build(plain, data, tmp_path / "cache", progress=False)
    before = T.STEPS_RUN
    kd = build(replace(plain, approx_epochs=1.0), data, tmp_path / "cache", progress=False)
    assert [s.hit for s in kd.steps] == [True, True, False]  # teacher and scores reused, the drop re-run
    assert T.STEPS_RUN - before == 1  # 32 rows, batch 32, 1 epoch
    assert kd.steps[-1].key != no_kd.steps[-1].key
    meta = read_meta(kd.model_dir)
    assert meta["train"]["steps"] == 1 and "dropped_metrics" in meta
    assert Significance.load(kd.model_dir).layers == Significance.load(no_kd.model_dir).layers
    with pytest.raises(UserInputError, match="approx_epochs"):
        Recipe(task="sst2", approx_epochs=1.0).check()
