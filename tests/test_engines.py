import json

import numpy as np
import pytest

from autotune import energy
from autotune.cost import usd_per_100m_queries
from autotune.engines import load, prepare
from autotune.hardware import _parse_list, detect
from autotune.runtime import Runtime
from compress.batching import encode, make_batches
from compress.errors import UserInputError
from tests.tinymodels import make_tiny, sst2_rows


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("engines")
    model = make_tiny(root / "tiny")
    spec, rows = sst2_rows(16)
    batches = make_batches(encode(tokenizer, rows, 64), 8, "dynamic")
    return model, root / "cache", batches


@pytest.mark.parametrize("name,atol", [("ort-fp32", 1e-4), ("ort-int8", 5e-3), ("torch-int8", 5e-3)])
def test_engines_agree_with_torch_fp32(setup, name, atol):
    model, cache, batches = setup
    ref = load(prepare("torch-fp32", model, cache), threads=1)
    eng = load(prepare(name, model, cache), threads=1)
    for b in batches:
        want = ref.predict(b.features)
        got = eng.predict(b.features)
        assert got.shape == want.shape == (len(b.indices), 2) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=atol)


def test_ort_engine_without_token_types(setup):
    model, cache, batches = setup
    eng = load(prepare("ort-fp32", model, cache), threads=None)
    feats = {k: v for k, v in batches[0].features.items() if k != "token_type_ids"}
    np.testing.assert_allclose(eng.predict(feats), eng.predict(batches[0].features), atol=1e-6)


def test_cuda_path_fails_with_one_clear_line(setup):
    model, cache, _ = setup
    with pytest.raises(UserInputError) as err:
        prepare("ort-cuda-fp16", model, cache)
    msg = str(err.value)
    assert "CUDAExecutionProvider" in msg and "\n" not in msg


def test_runtime_json_round_trip_and_validation():
    rt = Runtime("ort-int8", "fixed", batch_size=4, instances=2, threads=None, max_length=64)
    assert Runtime.from_json(rt.to_json()) == rt
    assert json.loads(rt.to_json())["threads"] is None
    for bad in (dict(engine="tvm"), dict(padding="bucket"), dict(batch_size=0), dict(threads=0)):
        with pytest.raises(UserInputError):
            Runtime(**bad)
    with pytest.raises(UserInputError, match="unknown field"):
        Runtime.from_dict({"engine": "ort-int8", "gpus": 1})


def test_hardware_fingerprint_is_stable():
    hw = detect()
    assert hw.physical_cores >= 1 and all(hw.cores)
    fp = hw.fingerprint()
    assert fp["hash"] == hw.hash and len(hw.hash) == 12
    assert json.loads(json.dumps(fp))["cpu_model"] == hw.cpu_model
    assert _parse_list("0-2,5,7-8") == [0, 1, 2, 5, 7, 8]


def test_energy_fallback_says_it_is_an_estimate():
    tracker = energy.pick("cpu-time", tdp_per_core_w=10.0)
    tracker.start()
    reading = tracker.stop(cpu_seconds=3.0, timed_fraction=1.0)
    assert reading.joules == pytest.approx(30.0) and not reading.measured
    assert reading.method.startswith("cpu-time×TDP estimate")
    auto = energy.pick("auto")
    assert auto.method  # whatever works here, it names itself
    with pytest.raises(UserInputError):
        energy.pick("wattmeter")


def test_cost_per_100m_queries():
    # 1000 queries/s on a $3.6/h machine: 1e8 / 1000 s = 27.8 h → $100
    assert usd_per_100m_queries(1000.0, 3.6) == pytest.approx(100.0)
    with pytest.raises(UserInputError):
        usd_per_100m_queries(0.0, 1.0)
