"""Task registry: exact split sizes of the real files, input formatting, carve-outs."""
from __future__ import annotations

import json

import pytest

from compress.errors import UserInputError
from compress.tasks import discover, ensure_train_split, get_task, load_task

EXPECTED = {
    "boolq": {"dev": 3270},
    "cb": {"train": 250, "dev": 56},
    "copa": {"train": 400, "dev": 100},
    "superglue-rte": {"train": 2490, "dev": 277},
    "wic": {"train": 5428, "dev": 638},
    "multirc": {"train": 27243, "dev": 4848},
    "sst2": {"train": 67349, "dev": 872},
    "mrpc": {"train": 3668, "dev": 408},
    "rte": {"train": 2490, "dev": 277},
    "cola": {"train": 8551, "dev": 1043},
}


@pytest.fixture(scope="module")
def all_tasks(data_dir):
    return {d.spec.name: d for d in discover(data_dir)}


def test_every_task_found_with_exact_labelled_sizes(all_tasks):
    assert set(all_tasks) == set(EXPECTED)
    for name, sizes in EXPECTED.items():
        got = {s: all_tasks[name].labelled(s) for s in sizes}
        assert got == sizes, name
        assert all_tasks[name].labelled("test") == 0  # test files carry no labels


def test_multirc_groups_by_question(all_tasks):
    dev = all_tasks["multirc"].splits["dev"]
    assert len({ex.group for ex in dev}) == 953  # questions in SuperGLUE MultiRC val
    assert all(ex.text_b for ex in dev)


def test_copa_is_two_rows_per_record_one_right(all_tasks):
    dev = all_tasks["copa"].splits["dev"]
    assert len(dev) == 200
    for a, b in zip(dev[::2], dev[1::2]):
        assert a.group == b.group and a.text_a == b.text_a
        assert a.label + b.label == 1
    assert dev[0].text_a.endswith("What happened as a result?")  # val idx 0 asks for an effect


def test_wic_marks_target_word(all_tasks):
    ex = all_tasks["wic"].splits["dev"][0]
    assert ex.text_a.startswith("class : ")
    assert "* class *" in ex.text_a and "* class. *" not in ex.text_b
    assert "* class *" in ex.text_b


def test_glue_labels_and_mrpc_quotes(all_tasks):
    mrpc = all_tasks["mrpc"].splits["train"][0]
    assert mrpc.label == 1 and mrpc.text_a.startswith("Amrozi accused")
    cola = all_tasks["cola"].splits["dev"][-1]  # last line has no trailing newline
    assert cola.label in (0, 1) and cola.text_a
    rte = all_tasks["rte"].splits["dev"][0]
    assert get_task("rte").label_names[rte.label] == "not_entailment"


def test_boolq_carve_out_is_deterministic_and_stated(all_tasks):
    boolq = all_tasks["boolq"]
    a, b = ensure_train_split(boolq, seed=3), ensure_train_split(boolq, seed=3)
    assert a.splits["train"] == b.splits["train"]
    assert a.labelled("train") + a.labelled("dev") == 3270
    assert a.labelled("train") == 2616
    assert set(a.splits["train"]).isdisjoint(a.splits["dev"])
    assert any("carved" in n for n in a.notes)
    assert ensure_train_split(boolq, seed=4).splits["train"] != a.splits["train"]
    sst = all_tasks["sst2"]
    assert ensure_train_split(sst) is sst  # a real train split is left alone


def test_record_from_hand_made_file(tmp_path):
    passage = "Paris is the capital of France. Berlin is in Germany."
    ents = [{"start": 0, "end": 4}, {"start": 24, "end": 29}, {"start": 32, "end": 37}, {"start": 45, "end": 51}]
    rec = {"idx": 0, "passage": {"text": passage, "entities": ents},
           "qas": [{"idx": 0, "query": "@placeholder is a city in Germany.", "answers": [{"start": 32, "end": 37, "text": "Berlin"}]}]}
    folder = tmp_path / "superglue" / "ReCoRD"
    folder.mkdir(parents=True)
    (folder / "val.jsonl").write_text(json.dumps(rec) + "\n")
    data = load_task("record", tmp_path)
    rows = data.splits["dev"]
    assert [r.candidate for r in rows] == ["Paris", "France", "Berlin", "Germany"]
    assert [r.label for r in rows] == [0, 0, 1, 0]
    assert rows[2].text_b == "Berlin is a city in Germany."
    assert data.labelled("dev") == 1


def test_unknown_task_lists_known_ones():
    with pytest.raises(UserInputError, match="unknown task 'sst3'; known tasks: .*sst2"):
        get_task("sst3")


def test_malformed_jsonl_names_file_and_line(tmp_path):
    folder = tmp_path / "CB"
    folder.mkdir()
    good = json.dumps({"premise": "a", "hypothesis": "b", "label": "neutral", "idx": 0})
    (folder / "val.jsonl").write_text(good + "\n" + good + "\n{not json\n")
    with pytest.raises(UserInputError, match=r"val\.jsonl:3: malformed JSON line"):
        load_task("cb", tmp_path)


def test_missing_column_names_it_and_columns_found(tmp_path):
    folder = tmp_path / "glue" / "SST-2"
    folder.mkdir(parents=True)
    (folder / "dev.tsv").write_text("text\tlabel\nfine\t1\n")
    with pytest.raises(UserInputError, match=r"dev\.tsv:2: missing column 'sentence'; columns found: 'text', 'label'"):
        load_task("sst2", tmp_path)


def test_unknown_label_is_one_line(tmp_path):
    folder = tmp_path / "CB"
    folder.mkdir()
    (folder / "val.jsonl").write_text(json.dumps({"premise": "a", "hypothesis": "b", "label": "maybe"}) + "\n")
    with pytest.raises(UserInputError, match=r"val\.jsonl:1: unknown label 'maybe'"):
        load_task("cb", tmp_path)


def test_hub_path_fails_fast_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserInputError, match="unreachable; pass --data-dir DIR"):
        load_task("sst2", None)


def test_source_is_one_spelling_of_the_data_dir(monkeypatch, tmp_path):
    """Cache keys include the data source: a relative and an absolute --data-dir must agree."""
    from tests.conftest import DATA

    absolute = load_task("cb", DATA.resolve())
    (tmp_path / "d").symlink_to(DATA.resolve())
    monkeypatch.chdir(tmp_path)
    assert load_task("cb", "d").source == absolute.source
