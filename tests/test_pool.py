import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from autotune import api
from autotune.engines import EngineSpec, prepare
from autotune.hardware import detect
from autotune.measure import Measurement, measure
from autotune.pool import Pool, WorkerError, assign_cores, run_pool, shard
from autotune.runtime import Runtime
from compress.batching import encode, make_batches
from compress.errors import UserInputError
from compress.tasks import TaskData
from tests.tinymodels import make_tiny, sst2_rows

CORES = detect().cores


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("pool")
    model = make_tiny(root / "tiny")
    spec, rows = sst2_rows(48)
    batches = make_batches(encode(tokenizer, rows, 64), 4, "dynamic")
    engine = prepare("ort-int8", model, root / "cache")
    return model, root / "cache", engine, batches, spec, rows


@pytest.mark.skipif(len(CORES) < 2, reason="needs two physical cores")
def test_instances_pinned_to_own_cores_and_merge_exactly(setup):
    _, _, engine, batches, _, _ = setup
    two = run_pool(engine, batches, instances=2, threads=1, cores=CORES)
    assert two.core_sets == (CORES[0], CORES[1])
    for given, allowed in zip(two.core_sets, two.cpus_allowed):  # what /proc/<pid>/status said in each worker
        assert allowed == ",".join(map(str, given)) or allowed == f"{given[0]}-{given[-1]}"
    assert len(set(two.pids)) == 2
    one = run_pool(engine, batches, instances=1, threads=1, cores=CORES)
    assert np.array_equal(two.logits, one.logits)  # bit-identical, in original row order
    assert len(two.latencies) == len(batches) and two.walls[0] > 0 and all(r > 10 for r in two.peak_rss_mb)


def test_no_thread_control_is_unpinned(setup, tokenizer):
    _, _, engine, _, _, rows = setup
    batches = make_batches(encode(tokenizer, rows[:10], 64), 4, "fixed")
    res = run_pool(engine, batches, instances=1, threads=None, cores=CORES)
    assert res.core_sets == (None,)
    assert res.logits.shape == (10, 2)


def test_oversubscription_refused_with_one_line(setup):
    _, _, engine, batches, _, _ = setup
    n = len(CORES)
    with pytest.raises(UserInputError) as err:
        run_pool(engine, batches, instances=n, threads=2, cores=CORES)
    assert "physical" in str(err.value) and "\n" not in str(err.value)
    assert len(assign_cores(CORES, n, 2, allow_oversubscribe=True)) == n


def test_shards_balanced_by_tokens(setup):
    batches = setup[3]
    parts = shard(batches, 2)
    assert sorted(i for p in parts for i in p) == list(range(len(batches)))
    cost = [sum(batches[i].features["input_ids"].size for i in p) for p in parts]
    assert abs(cost[0] - cost[1]) <= max(b.features["input_ids"].size for b in batches)


def test_a_pool_keeps_its_workers_across_runs(setup):
    """Re-timing rounds reuse one start-up: same processes, same predictions, each run its own passes."""
    _, _, engine, batches, _, _ = setup
    with Pool(engine, batches, instances=1, threads=1, cores=CORES) as pool:
        first, second = pool.run(1), pool.run(2)
    assert first.pids == second.pids
    assert np.array_equal(first.logits, second.logits)
    assert len(first.walls) == 1 and len(second.walls) == 2
    assert len(second.latencies) == 2 * len(batches)
    with pytest.raises(RuntimeError, match="closed"):
        pool.run(1)


def test_api_timing_measures_one_model_as_often_as_asked(setup):
    """`api.timing`: the rows `api.measure` would take, its workers started once for every measurement."""
    model, cache, _, _, spec, rows = setup
    data = TaskData(spec, {"dev": tuple(rows), "holdout": tuple(rows[:8])}, "test rows")
    timing = api.timing(model, data, Runtime("ort-int8", "dynamic", batch_size=4, instances=1, threads=1), cache,
                        limit=20)
    with pytest.raises(RuntimeError, match="not started: open it in a `with` block"):
        timing.measure(1)
    with timing:
        one, two = timing.measure(1), timing.measure(2)
    assert one.examples == two.examples == 20 and one.metrics == two.metrics
    assert len(one.walls_s) == 1 and len(two.walls_s) == 2
    with pytest.raises(RuntimeError, match="closed"):
        timing.measure(1)


def test_a_worker_killed_between_runs_fails_the_next_run(setup):
    _, _, engine, batches, _, _ = setup
    with Pool(engine, batches, instances=1, threads=1, cores=CORES, timeout_s=60) as pool:
        pid = pool.run(1).pids[0]
        os.kill(pid, 9)
        start = time.monotonic()
        with pytest.raises(WorkerError, match="exit code -9"):
            pool.run(1)
        assert time.monotonic() - start < 30


@pytest.mark.parametrize("factory,expect", [("raising_engine", "boom: engine exploded on purpose"),
                                            ("dying_engine", "exit code 7")])
def test_crashing_worker_fails_the_run_with_its_error(setup, factory, expect):
    batches = setup[3]
    spec = EngineSpec(f"tests.tinymodels:{factory}", "unused")
    start = time.monotonic()
    with pytest.raises(WorkerError, match=expect):
        run_pool(spec, batches, instances=min(2, len(CORES)), threads=1, cores=CORES, timeout_s=60)
    assert time.monotonic() - start < 30


def test_measure_end_to_end(setup):
    model, cache, _, _, spec, rows = setup
    rt = Runtime("ort-int8", "dynamic", batch_size=4, instances=min(2, len(CORES)), threads=1)
    m = measure(model, rows, spec, rt, cache, repeats=2)
    assert m.examples == len(rows) and m.throughput == pytest.approx(len(rows) / m.wall_s)
    assert len(m.walls_s) == 2 and m.wall_s in m.walls_s
    assert set(m.latency_ms) >= {"p50", "p90", "p99"} and 0 <= m.metrics["accuracy"] <= 1
    assert m.energy_j > 0 and m.energy_method and m.energy_per_query_j == pytest.approx(m.energy_j / len(rows))
    assert m.hardware["hash"] == detect().hash and m.software["onnxruntime"]
    assert m.engine_meta["fused_ops"]["Attention"] == 2
    assert 0 <= m.busy_before_pct <= 100  # the machine's load is recorded with every timing
    assert Measurement.from_json(m.to_json()) == m
    with pytest.raises(UserInputError):
        measure(model, rows, spec, Runtime("ort-int8", instances=len(CORES) + 1, threads=1), cache)


UNGUARDED = """
import numpy as np
from autotune.engines import EngineSpec
from autotune.pool import WorkerError, run_pool
from compress.batching import Batch

# 100 distinct batches pickle to ~1.6 MB, far over a pipe's 64 kB buffer
ids = [np.full((8, 128), i + 1, dtype=np.int64) for i in range(100)]
batches = [Batch(np.arange(8 * i, 8 * i + 8), {"input_ids": x, "attention_mask": x.copy()}) for i, x in enumerate(ids)]
try:
    run_pool(EngineSpec("tests.tinymodels:raising_engine", "unused"), batches, 1, 1, [(0,)], timeout_s=60)
except WorkerError as exc:
    print("WORKER ERROR:", exc)
"""


def test_script_without_main_guard_fails_instead_of_hanging(tmp_path):
    """Spawned children re-run an unguarded script and die starting; the parent must notice, not block."""
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert "WORKER ERROR: instance 0" in done.stdout, done.stderr[-2000:]
    assert "exit code 1" in done.stdout and "__main__" in done.stdout
