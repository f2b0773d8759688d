"""Engines from outside the project: a module named ``package.module:factory`` and an installed
package's ``autotune.engines`` entry point (a *.dist-info on the path, as pip would leave it),
both real engines, loaded in-process and then searched by a real sweep in pool workers."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from autotune.backends import registry
from compress.errors import UserInputError
from tests.test_sweep import RECIPE, load, run_sweep, sweep_args, tiny_root
from tests.tinymodels import make_tiny

PLUGIN = '''
"""Two engines another package could ship: torch with SDPA attention, and unfused ONNX."""
import numpy as np

from autotune.backends.ort_export import export_onnx
from autotune.backends.registry import Backend, EngineSpec


class SdpaTorch:
    def __init__(self, spec, threads):
        import torch
        from transformers import AutoModelForSequenceClassification

        if threads is not None:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model = AutoModelForSequenceClassification.from_pretrained(spec.path, attn_implementation="sdpa").eval()

    def predict(self, batch_features):
        with self.torch.inference_mode():
            feats = {k: self.torch.from_numpy(v) for k, v in batch_features.items()}
            return self.model(**feats).logits.float().numpy()


def sdpa_engine(spec, threads):
    return SdpaTorch(spec, threads)


class PlainOnnx:
    def __init__(self, spec, threads):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(spec.path, opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def predict(self, batch_features):
        ids = batch_features["input_ids"]
        return self.session.run(None, {n: batch_features.get(n, np.zeros_like(ids)) for n in self.inputs})[0]


def prepare_plain(model_dir, cache_dir, reduce_range=False):
    exported = export_onnx(model_dir, cache_dir, optimize=False)  # in the parent, cached
    return EngineSpec("any name: the registry stamps its own", str(exported.path), {"export_key": exported.key})


BACKEND = Backend("plain-onnx", family="onnx-plain", load=PlainOnnx, prepare=prepare_plain)
'''


def write_plugin(root: Path, entry_points: str = "plain-onnx = ff_plugin_engine:BACKEND") -> Path:
    """The plug-in module and a dist-info that registers its entry point, in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ff_plugin_engine.py").write_text(PLUGIN)
    info = root / "ff_plugin_engine-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ff-plugin-engine\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[autotune.engines]\n{entry_points}\n")
    return root


@pytest.fixture
def on_path(monkeypatch):
    """Put a folder on sys.path and rediscover the engines; forget them again afterwards."""
    def add(root: Path) -> Path:
        monkeypatch.syspath_prepend(str(root))
        registry.refresh()
        return root

    yield add
    monkeypatch.undo()
    registry.refresh()


def test_both_plug_in_forms_are_real_engines(tmp_path, on_path, tokenizer):
    from compress.batching import encode, make_batches
    from tests.tinymodels import sst2_rows

    on_path(write_plugin(tmp_path / "plugin"))
    assert "plain-onnx" in registry.names() and registry.get("plain-onnx").family == "onnx-plain"
    model, cache = make_tiny(tmp_path / "tiny"), tmp_path / "cache"
    batches = make_batches(encode(tokenizer, sst2_rows(16)[1], 64), 8, "dynamic")
    ref = registry.load(registry.prepare("torch-fp32", model, cache), 1)
    for name in ("plain-onnx", "ff_plugin_engine:sdpa_engine"):
        spec = registry.prepare(name, model, cache)
        assert spec.name == name
        eng = registry.load(spec, 1)
        for b in batches:
            np.testing.assert_allclose(eng.predict(b.features), ref.predict(b.features), atol=1e-4)
    assert registry.prepare("plain-onnx", model, cache).path.endswith(".onnx")  # the parent exported it


def test_entry_points_are_listed_without_importing_and_built_ins_win(tmp_path, on_path):
    on_path(write_plugin(tmp_path / "p", "ghost = ff_no_such_module:BACKEND\nort-int8 = ff_plugin_engine:BACKEND"))
    from autotune.runtime import Runtime

    Runtime("ghost")  # known by name; nothing imported
    assert "ghost" in registry.names() and registry.names().count("ort-int8") == 1
    assert registry.get("ort-int8").family == "onnxruntime"
    with pytest.raises(UserInputError, match=r"^engine 'ghost': cannot load ff_no_such_module:BACKEND \(Module"):
        registry.get("ghost")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tokenizer):
    """A tiny random BERT teacher and its own artifact cache, as tests/test_sweep.py makes them."""
    return tiny_root(tmp_path_factory.mktemp("plugin-sweep"), tokenizer, RECIPE)


def test_a_sweep_searches_plug_in_engines_in_pool_workers(tiny, data_dir, tmp_path, monkeypatch):
    plugin = write_plugin(tmp_path / "plugin")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(plugin), os.environ.get("PYTHONPATH")])))
    engines = ("plain-onnx", "ff_plugin_engine:sdpa_engine")
    # the teacher's own shape: one model, so the trials differ by engine only
    out = run_sweep(sweep_args(tiny, data_dir, "plugin", "--student-layers", "2", "--heads", "4", "--layouts", "1x1",
                               "--engines", ",".join(engines), "--n-trials", "4"))
    assert out.returncode == 0, out.stderr[-3000:]
    trials = [t for t in load(tiny, "plugin").trials if t.state.name == "COMPLETE"]
    assert {t.params["engine"] for t in trials} == set(engines)
    cfg = json.loads((tiny / "plugin" / "deploy" / "sst2.json").read_text())
    assert cfg["runtime"]["engine"] in engines and cfg["throughput"] > 0
