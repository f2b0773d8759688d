import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from autotune.backends.ort_export import MAX_IR_VERSION, UNFUSED_ON_CPU, export_onnx
from autotune.backends.ort_quantize import quantize_int8
from autotune.hardware import detect
from compress.models import load_classifier
from tests.tinymodels import make_tiny


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    return {"tiny": make_tiny(root / "tiny"), "pruned": make_tiny(root / "pruned", prune={0: [0, 1], 1: [3]}),
            "cache": root / "cache"}


def _feeds(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 5000, (3, 13)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[0, 9:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _torch_logits(model_dir, feeds):
    model = load_classifier(model_dir)
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()


@pytest.mark.parametrize("name", ["tiny", "pruned"])
def test_export_fuses_and_matches_torch(models, name):
    res = export_onnx(models[name], models["cache"])
    assert res.fused_ops["Attention"] == 2  # head-pruned layers (2 and 3 heads left) fuse too
    assert res.fused_ops["LayerNormalization"] == 4 and "SkipLayerNormalization" not in res.fused_ops  # CPU
    assert res.fused_ops["EmbedLayerNormalization"] == 1
    assert res.fused_ops.get("BiasGelu", 0) + res.fused_ops.get("Gelu", 0) + res.fused_ops.get("FastGelu", 0) == 2
    model = onnx.load(str(res.path))
    assert model.ir_version <= MAX_IR_VERSION
    heads = sorted(a.i for n in model.graph.node if n.op_type == "Attention" for a in n.attribute if a.name == "num_heads")
    assert heads == ([2, 3] if name == "pruned" else [4, 4])
    feeds = _feeds()
    got = ort.InferenceSession(str(res.path)).run(None, feeds)[0]
    np.testing.assert_allclose(got, _torch_logits(models[name], feeds), atol=1e-4)


def _session_ops(path, tmp_path, disabled):
    """Op types of the graph onnxruntime actually runs, after its own load-time fusions."""
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "loaded.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"], disabled_optimizers=disabled)
    return {n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node}


def test_skip_layer_norm_is_fused_only_when_asked_and_not_fused_back_on_cpu(models, tmp_path):
    cpu = export_onnx(models["tiny"], models["cache"])
    sln = export_onnx(models["tiny"], models["cache"], skip_layer_norm=True)
    assert sln.key != cpu.key and sln.fused_ops["SkipLayerNormalization"] == 4
    feeds = _feeds()
    np.testing.assert_allclose(ort.InferenceSession(str(cpu.path)).run(None, feeds)[0],
                               ort.InferenceSession(str(sln.path)).run(None, feeds)[0], atol=1e-5)
    # onnxruntime fuses Add + LayerNormalization back at load time unless the engines turn that off
    assert "SkipLayerNormalization" in _session_ops(cpu.path, tmp_path, None)
    assert "SkipLayerNormalization" not in _session_ops(cpu.path, tmp_path, list(UNFUSED_ON_CPU))
    assert "SkipLayerNormalization" not in _session_ops(quantize_int8(cpu, models["cache"]).path, tmp_path,
                                                        list(UNFUSED_ON_CPU))


def test_export_is_cached_by_content(models):
    a = export_onnx(models["tiny"], models["cache"])
    mtime = a.path.stat().st_mtime_ns
    b = export_onnx(models["tiny"], models["cache"])
    assert a.path == b.path and b.path.stat().st_mtime_ns == mtime
    assert export_onnx(models["pruned"], models["cache"]).key != a.key
    assert not [p for p in (models["cache"] / "onnx").iterdir() if p.name.startswith(".tmp")]  # no temp dirs left


def test_int8_logits_close_to_fp32(models):
    fp32 = export_onnx(models["tiny"], models["cache"])
    # as autotune/measure.py quantises on this CPU: 7-bit weights where u8×s8 products can saturate (no VNNI)
    reduce_range = not detect().has_vnni
    q = quantize_int8(fp32, models["cache"], per_channel=True, reduce_range=reduce_range)
    ops = {n.op_type for n in onnx.load(str(q.path)).graph.node}
    assert "QAttention" in ops and "MatMulInteger" in ops
    feeds = _feeds(1)
    a = ort.InferenceSession(str(fp32.path)).run(None, feeds)[0]
    b = ort.InferenceSession(str(q.path)).run(None, feeds)[0]
    np.testing.assert_allclose(b, a, atol=5e-3)
    assert q.path != fp32.path and quantize_int8(fp32, models["cache"], reduce_range=reduce_range).path == q.path
