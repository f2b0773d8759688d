"""Custom tasks from CSV/TSV/JSONL plus a small spec, from a JSON file or the CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from compress.custom_task import CustomTaskSpec, load_custom
from compress.errors import UserInputError
from compress.tasks import score
from tests.conftest import ROOT


def write(tmp_path):
    (tmp_path / "train.csv").write_text('review,stars,verdict\n"great, really",5,good\nawful,1,bad\nfine,4,good\n')
    (tmp_path / "dev.jsonl").write_text(
        json.dumps({"review": "lovely", "stars": 5, "verdict": "good"}) + "\n"
        + json.dumps({"review": "boring", "stars": 2, "verdict": "bad"}) + "\n"
    )
    spec = {"name": "reviews", "text_columns": ["review"], "label_column": "verdict",
            "files": {"train": "train.csv", "dev": "dev.jsonl"}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    return tmp_path / "spec.json"


def test_spec_file_loads_csv_and_jsonl(tmp_path):
    spec = CustomTaskSpec.from_file(write(tmp_path))
    assert CustomTaskSpec.from_dict(json.loads(spec.to_json())) == spec
    data = load_custom(spec)
    assert data.spec.label_names == ("bad", "good")  # inferred, sorted
    assert [ex.text_a for ex in data.splits["train"]] == ["great, really", "awful", "fine"]
    assert [ex.label for ex in data.splits["dev"]] == [1, 0]
    assert score(data.spec, data.splits["dev"], [[0, 1], [0, 1]]) == {"accuracy": 0.5}


def test_bad_specs_are_one_line(tmp_path):
    with pytest.raises(UserInputError, match="unknown field 'colour'"):
        CustomTaskSpec.from_dict({"name": "x", "text_columns": ["a"], "label_column": "l", "colour": 1})
    with pytest.raises(UserInputError, match="missing field 'label_column'"):
        CustomTaskSpec.from_dict({"name": "x", "text_columns": ["a"]})
    spec_path = write(tmp_path)
    bad = CustomTaskSpec.from_file(spec_path)
    bad = CustomTaskSpec(bad.name, ("text",), bad.label_column, bad.files)
    with pytest.raises(UserInputError, match=r"train\.csv:2: missing column 'text'; columns found: 'review', 'stars', 'verdict'"):
        load_custom(bad)
    (tmp_path / "broken.json").write_text('{"name": "x",\n  oops}')
    with pytest.raises(UserInputError, match=r"broken\.json:2:3: malformed JSON"):
        CustomTaskSpec.from_file(tmp_path / "broken.json")


def run_cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "run_sweep.py"), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_tasks_command_json_and_custom_flags(tmp_path, data_dir):
    write(tmp_path)
    out = run_cli("tasks", "--data-dir", str(data_dir), "--json", "--custom-train", str(tmp_path / "train.csv"),
                  "--custom-dev", str(tmp_path / "dev.jsonl"), "--text-columns", "review", "--label-column", "verdict")
    assert out.returncode == 0, out.stderr
    rows = {r["task"]: r for r in json.loads(out.stdout)}
    assert rows["sst2"]["splits"]["dev"]["labelled"] == 872
    assert rows["custom"]["splits"]["train"]["labelled"] == 3
    table = run_cli("tasks", "--data-dir", str(data_dir))
    assert "multirc" in table.stdout and "27243" in table.stdout


def test_cli_bad_input_is_one_line_not_a_traceback(tmp_path):
    out = run_cli("tasks", "--data-dir", str(tmp_path / "nowhere"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"error: --data-dir {tmp_path / 'nowhere'}: no such directory"]


def test_build_command_splits_dev_as_a_sweep_and_scores_the_held_out_rows(tmp_path, data_dir):
    from tests._tiny import save_tiny

    teacher = save_tiny(tmp_path / "tiny", layers=1)
    common = ("build", "--task", "sst2", "--data-dir", str(data_dir), "--teacher", str(teacher),
              "--teacher-epochs", "0", "--cache-dir", str(tmp_path / "cache"), "--no-progress")
    out = run_cli(*common, "--holdout-fraction", "0.5", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    meta = json.loads((tmp_path / "cache" / res["steps"][0]["key"] / "meta.json").read_text())
    assert meta["data"]["dev"] == 436  # the sweep's search half of the 872 dev rows, not all of them
    assert 0.0 <= res["holdout_metrics"]["accuracy"] <= 1.0
    bad = run_cli(*common, "--holdout-fraction", "1.5")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --holdout-fraction 1.5: must be between 0 and 1"
