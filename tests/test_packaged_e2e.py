"""End to end on the real packaged MiniLM and real SST-2 rows: fine-tune, distil, prune,
re-distil, export, quantise, time in the pinned pool, score what was timed."""
from __future__ import annotations

import json

import numpy as np
import pytest

from autotune.measure import measure
from autotune.runtime import Runtime
from compress.pipeline import build
from compress.recipe import Recipe
from compress.tasks import hold_out, load_task


@pytest.mark.slow
def test_packaged_model_through_the_whole_chain(data_dir, tmp_path):
    data = hold_out(load_task("sst2", data_dir), 0.5, seed=0)
    data = type(data)(data.spec, {**data.splits, "dev": data.splits["dev"][:200]}, data.source, data.notes)
    recipe = Recipe(task="sst2", max_train_examples=2048, teacher_epochs=1, teacher_lr=1e-4,
                    student_layers=2, kd_epochs=1, heads_kept=6, ffn_kept=768, redistill_epochs=1)
    built = build(recipe, data, tmp_path / "cache", progress=False)
    assert [s.name for s in built.steps] == ["teacher", "student", "prune", "redistill"]
    teacher_acc = json.loads((built.steps[0].path / "meta.json").read_text())["metrics"]["accuracy"]
    assert teacher_acc > 0.70  # 2,048 real examples are enough for MiniLM to learn sentiment
    cfg = json.loads((built.model_dir / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 2 and cfg["intermediate_size"] == 768
    assert all(len(v) == 6 for v in cfg["pruned_heads"].values())

    rows = data.splits["holdout"][:96]
    fp32 = measure(built.model_dir, rows, data.spec, Runtime("ort-fp32", batch_size=8, threads=2),
                   tmp_path / "cache", repeats=1)
    int8 = measure(built.model_dir, rows, data.spec, Runtime("ort-int8", batch_size=8, instances=2, threads=1),
                   tmp_path / "cache", repeats=1)
    assert fp32.engine_meta["fused_ops"]["Attention"] == 2  # fusion survives head pruning
    assert sorted(map(tuple, int8.core_sets)) == [(0,), (1,)]
    assert abs(int8.metrics["accuracy"] - fp32.metrics["accuracy"]) <= 0.05
    assert int8.metrics["accuracy"] > 0.6 and np.isfinite(int8.throughput)
