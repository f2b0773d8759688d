"""The compression pipeline on MPNet and the RoBERTa family (DistilRoBERTa is model_type roberta
too), not only BERT: tiny random classifiers with their own family's tokenizer (which sends no
segment ids), every build route, reloads of every saved dir, fused ONNX and int8 through the
onnxruntime backend, and one sweep trial. Real models, real sessions, real processes."""
from __future__ import annotations

import json
import os
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from compress.batching import encode, make_batches
from compress.models import attention_output, load_classifier, self_attention, uses_token_types
from compress.pipeline import build
from compress.recipe import Recipe
from compress.tasks import Example, score
from tests._tiny import sst2_slice

FAMILIES = ("mpnet", "roberta")
LAYERS, HEADS, HIDDEN, FFN = 4, 4, 32, 64
BASE = dict(task="sst2", teacher_epochs=1, teacher_lr=1e-3, kd_epochs=1, kd_lr=1e-3, kd_batch_size=32,
            redistill_epochs=1)
ROUTES = {  # route name -> recipe fields; together they run every build step on each family
    "subset": dict(student_layers=2, kd_hidden_weight=1.0),
    "greedy": dict(student_layers=3, route="greedy", layerdrop_steps=2, activation="relu"),
    "pruned": dict(student_layers=2, kd_attention_weight=1.0, heads_kept=1, ffn_kept=16, prune_rounds=2,
                   redistill_hidden_weight=1.0),
    "approx": dict(approx="significance-drop", approx_layers=2, approx_heads=2, approx_epochs=1),
}
# what onnxruntime 1.32's BERT optimizer fuses in each family's export, per graph (docs/compression.md)
FUSED = {
    "mpnet": lambda n: {"BiasGelu": n, "LayerNormalization": 2 * n + 1},
    "roberta": lambda n: {"Attention": n, "BiasGelu": n, "LayerNormalization": 2 * n + 1},
}
# and what its int8 graph quantises: MPNet's unfused Q·Kᵀ and probabilities·V MatMuls stay fp32
INT8 = {
    "mpnet": lambda n: {"QAttention": 0, "MatMulInteger": 6 * n + 2, "MatMul": 2 * n},
    "roberta": lambda n: {"QAttention": n, "MatMulInteger": 3 * n + 2, "MatMul": 0},
}


def family_tokenizer(family: str, root: Path):
    """The family's own fast tokenizer, as its real checkpoints ship it: MPNet's WordPiece (BERT's
    vocabulary behind <s> <pad> </s> <unk>, as all-mpnet-base-v2 has it) and RoBERTa's byte-level
    BPE (trained here on SST-2 sentences, 1,000 tokens). Neither sends token_type_ids; pad id 1."""
    from transformers import MPNetTokenizerFast, RobertaTokenizerFast

    from compress.models import packaged_model_dir

    root.mkdir(parents=True, exist_ok=True)
    if family == "mpnet":
        bert = (packaged_model_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
        (root / "vocab.txt").write_text("\n".join(["<s>", "<pad>", "</s>", "<unk>", *bert, "<mask>"]) + "\n")
        return MPNetTokenizerFast(vocab_file=str(root / "vocab.txt"))
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([ex.text_a for ex in sst2_slice(train=2000, dev=1).splits["train"]], vocab_size=1000,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    bpe.save_model(str(root))
    return RobertaTokenizerFast(vocab_file=str(root / "vocab.json"), merges_file=str(root / "merges.txt"))


def tiny_family(family: str, vocab_size: int, seed: int = 0):
    """A random 4-layer, 4-head, hidden-32 classifier of ``family`` (RoBERTa: one segment row)."""
    from transformers import MPNetConfig, MPNetForSequenceClassification, RobertaConfig, \
        RobertaForSequenceClassification

    torch.manual_seed(seed)
    kw = dict(vocab_size=vocab_size, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
              intermediate_size=FFN, num_labels=2, max_position_embeddings=130, pad_token_id=1)
    if family == "mpnet":
        return MPNetForSequenceClassification(MPNetConfig(**kw)).eval()
    return RobertaForSequenceClassification(RobertaConfig(**kw, type_vocab_size=1)).eval()


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """family -> (teacher dir with its tokenizer, tokenizer); one shared build cache."""
    root = tmp_path_factory.mktemp("families")
    out = {}
    for family in FAMILIES:
        tok = family_tokenizer(family, root / f"{family}-tokenizer")
        teacher = root / f"{family}-teacher"
        tiny_family(family, len(tok)).save_pretrained(teacher)
        tok.save_pretrained(teacher)
        out[family] = (teacher, tok)
    out["cache"] = root / "cache"
    return out


@pytest.fixture(scope="module")
def data():
    return sst2_slice(train=96, dev=32)


@contextmanager
def one_core():
    """Train on one core (``set_threads`` follows the affinity): on a 2-core machine shared with other
    jobs, two OpenMP threads spinning against them made these tiny builds 20-70x slower."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
        torch.set_num_threads(len(before))


@pytest.fixture(scope="module")
def builds(zoo, data):
    """family -> route -> Built, every route built once (steps shared through the cache)."""
    with one_core():
        return {family: {route: build(Recipe(**BASE, teacher=str(zoo[family][0]), **fields), data, zoo["cache"],
                                      progress=False)
                         for route, fields in ROUTES.items()}
                for family in FAMILIES}


def _dev_batches(tok, data, batch_size=8):
    return make_batches(encode(tok, data.splits["dev"], 64), batch_size, "dynamic")


@pytest.mark.parametrize("family", FAMILIES)
def test_family_tokenizer_sends_no_segment_ids_and_the_model_takes_the_batch(zoo, family):
    teacher, tok = zoo[family]
    pairs = [Example("a gripping film", "it is good", 1), Example("dull", "a bore from start to end", 0)]
    enc = encode(tok, pairs, 32)
    assert set(enc.features) == {"input_ids"} and enc.pad_id == 1
    model = load_classifier(teacher)
    assert not uses_token_types(model.config)
    (batch,) = make_batches(enc, 2)
    assert set(batch.features) == {"input_ids", "attention_mask"}
    with torch.no_grad():
        assert model(**{k: torch.from_numpy(v) for k, v in batch.features.items()}).logits.shape == (2, 2)


def test_pruned_mpnet_computes_what_the_head_mask_does_and_keeps_it_through_copies(tmp_path):
    """Each pruned layer takes its own heads' columns of the shared position bias: the pruned model
    equals the unpruned one with those heads masked, after ``keep_layers`` and a save + reload too."""
    from compress.distill import keep_layers
    from compress.models import fit_position_bias

    model = tiny_family("mpnet", 200, seed=1)
    ids = torch.randint(5, 200, (3, 11))
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    gone = {0: [1, 3], 2: [0], 3: [0, 1, 2]}
    head_mask = torch.ones(LAYERS, HEADS)
    for layer, heads in gone.items():
        head_mask[layer, heads] = 0
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask, head_mask=head_mask).logits
        model.prune_heads(gone)
        with pytest.raises(RuntimeError):  # the stock model: 2 heads of scores, 4 of bias
            model(input_ids=ids, attention_mask=mask)
        fit_position_bias(model)
        fit_position_bias(model)  # idempotent: one hook per layer
        torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).logits, want)
        model.save_pretrained(tmp_path)
        torch.testing.assert_close(load_classifier(tmp_path)(input_ids=ids, attention_mask=mask).logits, want)
        sub = keep_layers(model, [0, 3])  # layer 3 keeps head 3 only, wherever it now sits
        ref = keep_layers(tiny_family("mpnet", 200, seed=1), [0, 3])
        torch.testing.assert_close(sub(input_ids=ids, attention_mask=mask).logits,
                                   ref(input_ids=ids, attention_mask=mask, head_mask=head_mask[[0, 3]]).logits)
    assert [len(a._forward_pre_hooks) for a in map(self_attention, model.mpnet.encoder.layer)] == [1, 0, 1, 1]
    assert "bias_heads" not in "".join(model.state_dict())  # not saved: the stock shapes


@pytest.mark.parametrize("family", FAMILIES)
def test_every_route_builds_with_the_asked_shape(builds, family):
    from transformers import AutoConfig

    from compress.cache import read_meta
    from compress.significance import Significance

    b = builds[family]
    assert [s.name for s in b["subset"].steps] == ["teacher", "student"]
    assert [s.name for s in b["greedy"].steps] == ["teacher", "student"]
    assert [s.name for s in b["pruned"].steps] == ["teacher", "student", "prune", "redistill", "prune", "redistill"]
    assert [s.name for s in b["approx"].steps] == ["teacher", "significance", "approx"]
    assert b["subset"].steps[0].key == b["pruned"].steps[0].key == b["approx"].steps[0].key  # one teacher
    cfg = {route: AutoConfig.from_pretrained(built.model_dir) for route, built in b.items()}
    assert cfg["subset"].num_hidden_layers == 2 and cfg["subset"].model_type == family
    assert cfg["greedy"].num_hidden_layers == 3 and cfg["greedy"].hidden_act == "relu"
    assert len(read_meta(b["greedy"].model_dir)["dropped_layers"]) == 1
    assert cfg["pruned"].intermediate_size == 16
    assert all(len(cfg["pruned"].pruned_heads[i]) == HEADS - 1 for i in range(2))
    assert cfg["approx"].num_hidden_layers == 2 and all(len(v) == 2 for v in cfg["approx"].pruned_heads.values())
    sig = Significance.load(b["approx"].steps[1].path)
    assert len(sig.layers) == LAYERS and all(len(h) == HEADS for h in sig.heads)
    model = load_classifier(b["pruned"].model_dir)
    for layer in getattr(model, model.base_model_prefix).encoder.layer:
        assert self_attention(layer).num_attention_heads == 1 and attention_output(layer).in_features == HIDDEN // HEADS


@pytest.mark.parametrize("family", FAMILIES)
def test_every_saved_dir_reloads_and_scores_what_its_build_measured(builds, zoo, data, family):
    """Each step's dir, reloaded, scores on dev exactly what its build recorded. The stock
    AutoModelForSequenceClassification loads every dir; it also runs every one except a head-pruned
    MPNet, whose shared relative-position bias only ``load_classifier`` fits to each layer's heads."""
    from transformers import AutoModelForSequenceClassification

    from compress.cache import read_meta
    from compress.prune import expected_parameters
    from compress.train import evaluate

    tok = zoo[family][1]
    enc = encode(tok, data.splits["dev"], data.spec.max_length)
    feeds = {k: torch.from_numpy(v) for k, v in _dev_batches(tok, data)[-1].features.items()}
    dirs = {s.path for built in builds[family].values() for s in built.steps}
    assert len(dirs) == 10  # the teacher, 3 students, 2 prune + redistill rounds, the scores, the drop
    for path in sorted(dirs):
        ours = load_classifier(path)
        assert evaluate(ours, data.spec, data.splits["dev"], enc) == read_meta(path)["metrics"], path
        assert sum(p.numel() for p in ours.parameters()) == expected_parameters(ours.config, 2)
        stock = AutoModelForSequenceClassification.from_pretrained(path, attn_implementation="eager").eval()
        pruned = any(ours.config.pruned_heads.values())
        with torch.no_grad():
            if family == "mpnet" and pruned:
                with pytest.raises(RuntimeError, match="shape|size"):
                    stock(**feeds)
            else:
                torch.testing.assert_close(stock(**feeds).logits, ours(**feeds).logits)


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_export_fuses_what_it_can_and_scores_as_pytorch(builds, zoo, data, family, capsys):
    """ort-fp32 gives PyTorch's logits and the same dev score, for the teacher and the head-pruned
    model; ort-int8 runs quantised MatMuls (QAttention where Attention fused) close to fp32, and
    ort-int8-selective keeps the most significant layer of the dropped model fp32."""
    import onnx

    from autotune.backends import registry

    tok, cache = zoo[family][1], zoo["cache"]
    batches = _dev_batches(tok, data)
    rows = data.splits["dev"]
    for route, n_layers in (("teacher", LAYERS), ("pruned", 2)):
        model_dir = builds[family]["pruned"].steps[0 if route == "teacher" else -1].path
        torch_eng = registry.load(registry.prepare("torch-fp32", model_dir, cache), 1)
        fp32 = registry.prepare("ort-fp32", model_dir, cache)
        with capsys.disabled():
            print(f"\n{family} {route}: fused {fp32.meta['fused_ops']}")
        assert fp32.meta["fused_ops"] == FUSED[family](n_layers)
        ort_eng = registry.load(fp32, 1)
        assert ort_eng.inputs == ("input_ids", "attention_mask")  # no segment ids in the graph
        ref = [torch_eng.predict(b.features) for b in batches]
        got = [ort_eng.predict(b.features) for b in batches]
        np.testing.assert_allclose(np.concatenate(got), np.concatenate(ref), atol=1e-4)
        order = np.concatenate([b.indices for b in batches])
        logits = lambda outs: np.concatenate(outs)[np.argsort(order)]  # noqa: E731
        assert score(data.spec, rows, logits(got)) == score(data.spec, rows, logits(ref))

        int8 = registry.prepare("ort-int8", model_dir, cache)
        ops = Counter(n.op_type for n in onnx.load(int8.path).graph.node)
        assert {k: ops[k] for k in ("QAttention", "MatMulInteger", "MatMul")} == INT8[family](n_layers)
        q = np.concatenate([registry.load(int8, 1).predict(b.features) for b in batches])
        np.testing.assert_allclose(q, np.concatenate(ref), atol=0.05)

    dropped = builds[family]["approx"].model_dir
    sel = registry.prepare("ort-int8-selective", dropped, cache)
    assert sel.meta["quantize"]["exclude_nodes"]  # one of the two layers stays fp32
    nodes = {n.name: n.op_type for n in onnx.load(sel.path).graph.node}
    assert all(nodes[name] in ("MatMul", "Attention") for name in sel.meta["quantize"]["exclude_nodes"])
    assert registry.load(sel, 1).predict(batches[0].features).shape == (len(batches[0].indices), 2)


def test_one_sweep_trial_on_mpnet(zoo, data_dir, tmp_path):
    """A real sweep (subprocess, sqlite study, pool workers) of one head-pruned int8 trial on the tiny
    MPNet teacher: the family whose pruned dirs run only through ``load_classifier``, as the pool's
    engines load them. (RoBERTa's workers: the next test.)"""
    import shutil

    from autotune.trial_record import TrialRecord
    from tests.test_sweep import load, run_sweep, sweep_args

    shutil.copytree(zoo["mpnet"][0], tmp_path / "teacher")
    # the random teacher as it is, and none of the quick preset's minimum step counts: seconds, not minutes
    (tmp_path / "recipe.json").write_text(json.dumps(
        {"teacher_epochs": 0, "teacher_min_steps": 0, "teacher_restarts": 1, "kd_min_steps": 0,
         "max_train_examples": 96, "kd_epochs": 1, "redistill_epochs": 1}))
    out = run_sweep(sweep_args(tmp_path, data_dir, "run", "--n-trials", "1", "--engines", "ort-int8",
                               "--heads", "2", "--layouts", "1x1", "--eval-limit", "16", "--no-report"))
    assert out.returncode == 0, out.stderr[-3000:]
    (trial,) = load(tmp_path, "run").trials
    assert trial.state.name == "COMPLETE", TrialRecord.from_trial(trial).error
    cfg = json.loads((tmp_path / "run" / "deploy" / "sst2.json").read_text())
    assert cfg["runtime"]["engine"] == "ort-int8" and cfg["throughput"] > 0 and cfg["heldout_confirmed"] is True
    assert json.loads((Path(cfg["model_dir"]) / "config.json").read_text())["pruned_heads"]


def test_roberta_measured_in_pool_workers_scores_as_in_process(builds, zoo, data):
    """The pinned pool's workers load the pruned RoBERTa (torch-fp32, ort-fp32, ort-int8) and score
    the timed predictions: fp32 engines agree with the in-process score."""
    from autotune import api
    from compress.train import evaluate

    model_dir, tok = builds["roberta"]["pruned"].model_dir, zoo["roberta"][1]
    rows = data.splits["dev"]
    want = evaluate(load_classifier(model_dir), data.spec, rows, encode(tok, rows, data.spec.max_length))
    for engine in ("torch-fp32", "ort-fp32", "ort-int8"):
        m = api.measure(model_dir, data, api.Runtime(engine=engine, batch_size=8, threads=1), zoo["cache"], repeats=1)
        assert m.throughput > 0
        if engine != "ort-int8":
            assert m.metrics == pytest.approx(want), engine
