import json

import pytest

from autotune.cli import main
from autotune.hardware import detect
from autotune.paper_tables import layouts
from compress.tasks import Example, limit_rows
from tests.conftest import DATA
from tests.tinymodels import make_tiny

CORES = detect().physical_cores


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("studies")
    return {"teacher": make_tiny(root / "teacher", layers=3), "student": make_tiny(root / "student", seed=1),
            "pruned": make_tiny(root / "pruned", prune={0: [0, 1], 1: [2]}, seed=1), "root": root}


def test_layouts_and_limits():
    assert layouts(2) == [(1, 2), (2, 1)]
    assert layouts(6) == [(1, 6), (2, 3), (3, 2), (6, 1)]
    rows = [Example("a", group="g1"), Example("b", group="g1"), Example("c", group="g2"), Example("d", group="g2")]
    assert len(limit_rows(rows, 1)) == 2 and len(limit_rows(rows, 3)) == 4 and len(limit_rows(rows, None)) == 4


def test_table2_writes_json_and_markdown(models):
    out = models["root"] / "t2"
    rc = main(["table2", "--task", "sst2", "--data-dir", str(DATA), "--model", str(models["student"]),
               "--out", str(out), "--limit", "12", "--repeats", "1", "--energy", "cpu-time"])
    assert rc == 0
    result = json.loads((out / "table2.json").read_text())
    assert result["baseline"]["threads"] is None and result["baseline"]["speedup"] == 1.0
    assert [(r["instances"], r["threads"]) for r in result["rows"]] == layouts(CORES)
    for r in result["rows"]:
        assert r["speedup"] == pytest.approx(r["throughput"] / result["baseline"]["throughput"])
        assert 0 <= r["accuracy"] <= 1 and r["measurement"]["runtime"]["engine"] == "ort-int8"
    md = (out / "table2.md").read_text()
    assert "| layout |" in md and "no thread control" in md and md.count("\n|") == len(result["rows"]) + 3  # header, rule, baseline
    assert (out / "runs" / "baseline_no_thread_control" / "report.json").is_file()
    assert json.loads((out / "runs" / f"1x{CORES}" / "config.json").read_text())["runtime"]["threads"] == CORES


def test_ablation_writes_the_ladder(models, capsys):
    out = models["root"] / "abl"
    rc = main(["ablation", "--task", "sst2", "--data-dir", str(DATA), "--teacher", str(models["teacher"]),
               "--student", str(models["student"]), "--pruned", str(models["pruned"]), "--out", str(out),
               "--limit", "8", "--repeats", "1", "--usd-per-hour", "0.677", "--energy", "cpu-time"])
    assert rc == 0
    result = json.loads((out / "ablation.json").read_text())
    names = [s["name"] for s in result["steps"]]
    assert names == ["baseline", "+ dynamic sequence length", "+ distillation", "+ int8 + graph optimisation",
                     "+ multi-instance", "+ pruning"]
    steps = result["steps"]
    assert steps[0]["measurement"]["runtime"] == {"engine": "torch-fp32", "padding": "fixed", "batch_size": 1,
                                                 "instances": 1, "threads": None, "max_length": None,
                                                 "allow_oversubscribe": False}
    assert steps[2]["model_dir"] == str(models["student"]) and steps[5]["model_dir"] == str(models["pruned"])
    cumulative = 1.0
    for s in steps[1:]:
        cumulative *= s["step_gain"]
        assert s["speedup"] == pytest.approx(cumulative)
    for s in steps:
        assert s["usd_per_100m"] == pytest.approx(1e8 / s["throughput"] / 3600 * 0.677)
        assert s["energy_method"].startswith("cpu-time×TDP") and s["energy_measured"] is False
    md = (out / "ablation.md").read_text()
    assert "cumulative ×" in md and "+ pruning" in md and "USD / 100M queries" in md
    assert "+ multi-instance" in capsys.readouterr().out


def test_study_refuses_bad_input_with_one_line(models, capsys):
    rc = main(["table2", "--task", "sst2", "--data-dir", str(DATA), "--model", str(models["student"]),
               "--out", str(models["root"] / "bad"), "--split", "test"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error:") and "\n" not in err
