"""The input contract, case by case: every bad input is refused in one line that names the file,
line or option, exit 2, no traceback, before any work, and nothing is left behind; the odd but
valid files that spreadsheets export (byte-order mark, CRLF, blank lines at the end) are accepted.

Each case writes its inputs into a fresh folder, runs the real command line in-process from that
folder, and compares the folder's files before and after.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from autotune.cli import main

ROWS = [("a fine and moving film", "pos"), ("dull and far too long", "neg"), ("a joy to watch", "pos"),
        ("it never comes alive", "neg"), ("sharp and funny", "pos"), ("a tired mess", "neg")]


@dataclass
class Ws:
    """A case's folder and the inputs it writes there."""
    root: Path

    def write(self, rel: str, content: str | bytes) -> str:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(path)

    def csv(self, rel: str = "train.csv", rows=ROWS, header: str = "text,label", extra: str = "") -> str:
        return self.write(rel, header + "\n" + "".join(f"{t},{y}\n" for t, y in rows) + extra)

    def spec(self, rel: str = "spec.json", **fields) -> str:
        if "files" not in fields:  # written only when the case brings none of its own
            fields["files"] = {"train": self.csv("train.csv"), "dev": self.csv("dev.csv")}
        d = {"name": "mine", "text_columns": ["text"], "label_column": "label", **fields}
        return self.write(rel, json.dumps(d))

    def sst2(self, train: str | bytes | None = None, dev: str | bytes | None = None) -> str:
        """A GLUE SST-2 folder: ``DATA/glue/SST-2/{train,dev}.tsv``."""
        rows = "".join(f"{t}\t{int(y == 'pos')}\n" for t, y in ROWS)
        self.write("data/glue/SST-2/train.tsv", train if train is not None else "sentence\tlabel\n" + rows)
        self.write("data/glue/SST-2/dev.tsv", dev if dev is not None else "sentence\tlabel\n" + rows)
        return str(self.root / "data")

    def cb(self, train: str | bytes | None = None) -> str:
        """A SuperGLUE CB folder: ``DATA/superglue/CB/{train,val}.jsonl``."""
        labels = ("entailment", "contradiction", "neutral")
        rows = "".join(json.dumps({"premise": t, "hypothesis": "it is good", "label": labels[i % 3], "idx": i}) + "\n"
                       for i, (t, _) in enumerate(ROWS))
        self.write("data/superglue/CB/train.jsonl", train if train is not None else rows)
        self.write("data/superglue/CB/val.jsonl", rows)
        return str(self.root / "data")

    def model(self, config: str | None = '{"model_type": "bert"}', weights: bool = True) -> str:
        if config is not None:
            self.write("model/config.json", config)
        if weights:
            self.write("model/model.safetensors", b"\0")
        self.write("model/vocab.txt", "[PAD]\n")
        return str(self.root / "model")


def sweep(ws: Ws, *extra: str, task: str | None = None, run: str | None = None, cache: str | None = None,
          data: str | None = None) -> list[str]:
    """A sweep command line on a custom task (default) or, with ``data``, on a registered one."""
    return ["sweep", "--task", task or ws.spec(), "--run-dir", run or str(ws.root / "run"), "--cache-dir",
            cache or str(ws.root / "cache"), "--no-report", *(["--data-dir", data] if data else []), *extra]


def run_sweep(ws: Ws, *extra: str, **where) -> list[str]:
    """A sweep on the SST-2 folder of ``ws``, for option cases."""
    return sweep(ws, *extra, task="sst2", data=ws.sst2(), **where)


def latin1_spec(ws: Ws) -> str:
    """A custom task whose train file a spreadsheet saved as Latin-1."""
    train = ws.write("train.csv", "text,label\ncafé ok,pos\nbad,neg\n".encode("latin1"))
    return ws.spec(files={"train": train, "dev": ws.csv("dev.csv")})


# (id, what the command line is, a fragment the one-line message must hold)
Case = tuple[str, Callable[[Ws], list[str]], str]

READERS: list[Case] = [
    ("csv-not-utf8", lambda w: sweep(w, task=latin1_spec(w)), "train.csv:2: not UTF-8 text (byte 0xe9 at column 4)"),
    ("tsv-not-utf8", lambda w: ["tasks", "--data-dir", w.sst2(train=b"sentence\tlabel\nok\t1\nna\xefve\t0\n")], "train.tsv:3: not UTF-8 text (byte 0xef"),
    ("jsonl-not-utf8", lambda w: ["tasks", "--data-dir", w.cb(train=b'{"premise": "x\xff", "hypothesis": "y", "label": "neutral"}\n')], "train.jsonl:1: not UTF-8 text (byte 0xff"),
    ("glue-train-lost-label-column", lambda w: sweep(w, task="sst2", data=w.sst2(train="sentence\n" + "".join(f"{t}\n" for t, _ in ROWS))), "train.tsv:2: no label in a labelled split"),
    ("glue-dev-lost-label-column", lambda w: ["tasks", "--data-dir", w.sst2(dev="sentence\nfine\nbad\n")], "dev.tsv:2: no label in a labelled split"),
    ("glue-empty-label", lambda w: ["tasks", "--data-dir", w.sst2(train="sentence\tlabel\nok\t1\nbad\t\n")], "train.tsv:3: no label in a labelled split"),
    ("jsonl-row-without-label", lambda w: ["tasks", "--data-dir", w.cb(train='{"premise": "x", "hypothesis": "y", "label": "neutral"}\n{"premise": "x", "hypothesis": "y"}\n')], "train.jsonl:2: no label in a labelled split"),
    ("glue-extra-field", lambda w: ["tasks", "--data-dir", w.sst2(train="sentence\tlabel\nok\t1\nbad\t0\tstray\n")], "train.tsv:3: expected 2 fields (sentence, label), found 3"),
    ("glue-missing-field", lambda w: ["tasks", "--data-dir", w.sst2(train="sentence\tlabel\nok\t1\nbad\n")], "train.tsv:3: expected 2 fields"),
    ("glue-header-only", lambda w: ["tasks", "--data-dir", w.sst2(train="sentence\tlabel\n")], "train.tsv: no rows"),
    ("glue-unknown-label", lambda w: ["tasks", "--data-dir", w.sst2(train="sentence\tlabel\nok\t7\n")], "train.tsv:2: unknown label '7'"),
    ("jsonl-malformed-line", lambda w: ["tasks", "--data-dir", w.cb(train='{"premise": "x",\n')], "train.jsonl:1: malformed JSON line"),
    ("jsonl-not-an-object", lambda w: ["tasks", "--data-dir", w.cb(train='["x", "y"]\n')], "train.jsonl:1: expected a JSON object"),
    ("csv-single-class", lambda w: sweep(w, task=w.spec(files={"train": w.csv("train.csv", [(t, "pos") for t, _ in ROWS]), "dev": w.csv("dev.csv")})), "train.csv: every labelled row of column 'label' is 'pos'"),
    ("csv-extra-field", lambda w: sweep(w, task=w.spec(files={"train": w.csv(extra="stray,pos,extra\n"), "dev": w.csv("dev.csv")})), "train.csv:8: expected 2 fields (text, label), found 3"),
    ("csv-missing-text-column", lambda w: sweep(w, task=w.spec(text_columns=["review"])), "train.csv:2: missing column 'review'"),
    ("csv-duplicate-header", lambda w: sweep(w, task=w.spec(files={"train": w.csv(header="text,text"), "dev": w.csv("dev.csv")})), "train.csv:1: column 'text' appears 2 times"),
    ("csv-empty-file", lambda w: sweep(w, task=w.spec(files={"train": w.write("train.csv", ""), "dev": w.csv("dev.csv")})), "train.csv: empty file"),
    ("csv-dev-label-unseen", lambda w: sweep(w, task=w.spec(files={"train": w.csv(), "dev": w.csv("dev.csv", [("meh", "mixed")])})), "dev.csv:2: unknown label 'mixed'"),
    ("csv-data-file-missing", lambda w: sweep(w, task=w.spec(files={"train": str(w.root / "nope.csv")})), "nope.csv: no such file"),
    ("csv-unknown-extension", lambda w: sweep(w, task=w.spec(files={"train": w.write("train.xlsx", "x")})), "train.xlsx: unknown data format '.xlsx'"),
    ("csv-custom-options-bad-label", lambda w: ["tasks", "--data-dir", str(w.root), "--custom-train", w.csv(), "--text-columns", "text", "--label-names", "neg,pos", "--custom-dev", w.csv("dev.csv", [("x", "neutral")])], "dev.csv:2: unknown label 'neutral'"),
]

SPECS: list[Case] = [
    ("spec-control-character", lambda w: sweep(w, task=w.write("spec.json", '{"name": "a\tb"}')), "spec.json:1:12: malformed JSON (Invalid control character at: line 1 column 12"),
    ("spec-two-unknown-keys", lambda w: sweep(w, task=w.spec(colour=1, size=2)), "unknown fields 'colour', 'size'"),
    ("spec-missing-field", lambda w: sweep(w, task=w.write("spec.json", '{"name": "x", "text_columns": ["t"]}')), "spec.json: missing field 'label_column'"),
    ("spec-three-text-columns", lambda w: sweep(w, task=w.spec(text_columns=["a", "b", "c"])), "text_columns takes one or two column names"),
    ("spec-unknown-metric", lambda w: sweep(w, task=w.spec(metrics=["bleu"])), "unknown metric 'bleu'"),
    ("spec-unknown-split", lambda w: sweep(w, task=w.spec(files={"validation": w.csv()})), "unknown split 'validation'"),
    ("spec-not-an-object", lambda w: sweep(w, task=w.write("spec.json", "[1, 2]")), "spec.json: expected a JSON object"),
    ("spec-not-utf8", lambda w: sweep(w, task=w.write("spec.json", b'{"name": "caf\xe9"}')), "spec.json:1: not UTF-8 text (byte 0xe9 at column 14)"),
    ("spec-label-named-twice", lambda w: sweep(w, task=w.spec(label_names=["pos", "pos"])), "label 'pos' is named twice"),
    ("spec-files-not-a-map", lambda w: sweep(w, task=w.spec(files="train.csv")), "field 'files' must map splits to paths"),
    ("spec-missing", lambda w: ["sweep", "--task-spec", str(w.root / "none.json")], "--task-spec"),
]

JSON_OPTIONS: list[Case] = [
    ("recipe-malformed", lambda w: run_sweep(w, "--recipe-json", w.write("r.json", '{"kd_epochs": 1,}')), "r.json:1:17: malformed JSON"),
    ("recipe-unknown-field", lambda w: run_sweep(w, "--recipe-json", w.write("r.json", '{"kd_epoch": 1}')), "unknown field(s) kd_epoch"),
    ("recipe-wrong-type", lambda w: run_sweep(w, "--recipe-json", w.write("r.json", '{"teacher_epochs": "three"}')), 'recipe: teacher_epochs "three": expected a number'),
    ("recipe-float-for-int", lambda w: run_sweep(w, "--recipe-json", w.write("r.json", '{"teacher_batch_size": 8.5}')), "teacher_batch_size 8.5: expected a whole number"),
    ("recipe-not-an-object", lambda w: run_sweep(w, "--recipe-json", w.write("r.json", "[]")), "r.json: expected a JSON object"),
    ("recipe-missing", lambda w: run_sweep(w, "--recipe-json", str(w.root / "none.json")), "--recipe-json"),
    ("space-unknown-field", lambda w: run_sweep(w, "--space-json", w.write("s.json", '{"engins": ["ort-int8"]}')), "engins"),
    ("space-missing", lambda w: run_sweep(w, "--space-json", str(w.root / "none.json")), "--space-json"),
    ("build-recipe-malformed", lambda w: ["build", "--recipe", w.write("r.json", "{"), "--cache", str(w.root / "c")], "r.json:1:2: malformed JSON"),
]

OPTIONS: list[Case] = [
    ("p99-negative", lambda w: run_sweep(w, "--p99-limit-ms", "-1"), "--p99-limit-ms -1: must be a positive number"),
    ("eval-limit-zero", lambda w: run_sweep(w, "--eval-limit", "0"), "--eval-limit 0: must be 1 or more rows"),
    ("heartbeat-zero", lambda w: run_sweep(w, "--heartbeat", "0"), "--heartbeat 0: must be 1 or more seconds"),
    ("n-trials-zero", lambda w: run_sweep(w, "--n-trials", "0"), "--n-trials 0"),
    ("n-trials-not-int", lambda w: run_sweep(w, "--n-trials", "many"), "--n-trials many: not a valid int"),
    ("time-budget-negative", lambda w: run_sweep(w, "--time-budget", "-5"), "--time-budget -5"),
    ("timeout-nan", lambda w: run_sweep(w, "--timeout", "nan"), "--timeout nan"),
    ("holdout-fraction-one", lambda w: run_sweep(w, "--holdout-fraction", "1"), "--holdout-fraction 1: must be between 0 and 1"),
    ("floor-in-percent", lambda w: run_sweep(w, "--floor", "88"), "--floor 88"),
    ("floor-below-teacher-negative", lambda w: run_sweep(w, "--floor-below-teacher", "-1"), "--floor-below-teacher -1"),
    ("confirm-top-negative", lambda w: run_sweep(w, "--confirm-top", "-1"), "--confirm-top -1: must be zero or more"),
    ("objective-unknown", lambda w: run_sweep(w, "--objective", "speed"), "--objective speed: choose from"),
    ("preset-unknown", lambda w: run_sweep(w, "--preset", "fast"), "fast"),
    ("engine-unknown", lambda w: run_sweep(w, "--engines", "tensorrt"), "tensorrt"),
    ("batch-size-zero", lambda w: run_sweep(w, "--batch-sizes", "0"), "batch"),
    ("layouts-malformed", lambda w: run_sweep(w, "--layouts", "two"), "--layouts two"),
    ("layouts-too-many-cores", lambda w: run_sweep(w, "--layouts", f"{os.cpu_count() * 4}x1"), "core"),
    ("student-layers-too-many", lambda w: run_sweep(w, "--student-layers", "9"), "9"),
    ("unknown-option", lambda w: run_sweep(w, "--trials", "3"), "unrecognized arguments: --trials"),
    ("unknown-task", lambda w: sweep(w, task="sts-b", data=w.sst2()), "unknown task 'sts-b'"),
    ("data-dir-missing", lambda w: ["sweep", "--task", "sst2", "--data-dir", str(w.root / "nodata"), "--run-dir", str(w.root / "run")], "--data-dir"),
    ("suite-unknown-task", lambda w: ["suite", "--tasks", "cb,nope", "--data-dir", w.cb(), "--run-dir", str(w.root / "suite")], "--tasks nope"),
    ("suite-empty-tasks", lambda w: ["suite", "--tasks", ",", "--run-dir", str(w.root / "suite")], "--tasks: name at least one task"),
    ("suite-bad-data-in-a-later-task", lambda w: ["suite", "--tasks", "sst2," + latin1_spec(w), "--data-dir", w.sst2(), "--run-dir", str(w.root / "suite")], "train.csv:2: not UTF-8 text"),
    ("table2-limit-zero", lambda w: ["table2", "--task", "sst2", "--data-dir", w.sst2(), "--out", str(w.root / "t2"), "--limit", "0"], "--limit"),
    ("table2-engine-unknown", lambda w: ["table2", "--task", "sst2", "--data-dir", w.sst2(), "--out", str(w.root / "t2"), "--engine", "tensorrt"], "unknown engine 'tensorrt'"),
    ("table2-energy-unknown", lambda w: ["table2", "--task", "sst2", "--data-dir", w.sst2(), "--out", str(w.root / "t2"), "--energy", "watts"], "--energy watts: choose from"),
    ("table2-out-is-a-file", lambda w: ["table2", "--task", "sst2", "--data-dir", w.sst2(), "--out", w.write("afile", "x")], "--out"),
    ("table2-repeats-zero", lambda w: ["table2", "--task", "sst2", "--data-dir", w.sst2(), "--out", str(w.root / "t2"), "--repeats", "0"], "--repeats"),
]

STORAGE_AND_DIRS: list[Case] = [
    ("storage-unreachable-server", lambda w: run_sweep(w, "--storage", "postgresql://nobody@127.0.0.1:1/x"), "--storage postgresql://nobody@127.0.0.1:1/x: cannot open"),
    ("run-dir-is-a-file", lambda w: run_sweep(w, run=w.write("afile", "x")), "afile: is a file, not a folder"),
    ("run-dir-under-a-file", lambda w: run_sweep(w, run=w.write("afile", "x") + "/sub"), "afile is a file, not a folder"),
    ("cache-dir-is-a-file", lambda w: run_sweep(w, cache=w.write("afile", "x")), "--cache-dir"),
    ("teacher-missing", lambda w: run_sweep(w, "--teacher", str(w.root / "nomodel")), "--teacher"),
    ("teacher-corrupt-config", lambda w: run_sweep(w, "--teacher", w.model(config='{"model_type": ')), "config.json:1:16: malformed JSON"),
    ("teacher-no-config", lambda w: run_sweep(w, "--teacher", w.model(config=None)), "no config.json in it"),
    ("teacher-no-weights", lambda w: run_sweep(w, "--teacher", w.model(weights=False)), "no weights in it"),
    ("teacher-is-a-file", lambda w: run_sweep(w, "--teacher", w.write("afile", "x")), "is a file, expected a model folder"),
    ("build-teacher-corrupt-config", lambda w: ["build", "--task", "sst2", "--data-dir", w.sst2(), "--teacher", w.model(config="{"), "--cache", str(w.root / "c")], "config.json:1:2: malformed JSON"),
    ("ablation-student-missing", lambda w: ["ablation", "--task", "sst2", "--data-dir", w.sst2(), "--out", str(w.root / "ab"), "--student", str(w.root / "nostudent")], "--student"),
    ("deploy-results-empty-folder", lambda w: ["deploy", "--results", str(w.root / "results"), "--task", "sst2"] if (w.root / "results").mkdir() is None else [], "results: no deployment configs in it"),
    ("deploy-out-under-a-file", lambda w: ["deploy", "--results", str(w.root / "none"), "--task", "sst2", "--out", w.write("afile", "x") + "/x.json"], "--out"),
    ("deploy-results-missing", lambda w: ["deploy", "--results", str(w.root / "none"), "--task", "sst2"], "--results"),
    ("deploy-config-corrupt", lambda w: ["deploy", "--results", w.write("run/deploy/sst2.json", "{,"), "--task", "sst2"], "sst2.json:1:2: malformed JSON"),
    ("deploy-config-incomplete", lambda w: ["deploy", "--results", w.write("run/deploy/cb.json", '{"task": "cb"}'), "--task", "sst2"], "not a deployment config"),
    ("report-run-missing", lambda w: ["report", "--run", str(w.root / "norun")], "--run"),
    ("report-run-without-study", lambda w: ["report", "--run", str(w.root / "results")] if (w.root / "results").mkdir() is None else [], "no study.db in it"),
    ("report-usd-per-hour-zero", lambda w: ["report", "--run", str(w.root), "--usd-per-hour", "0"], "--usd-per-hour"),
]

CASES = READERS + SPECS + JSON_OPTIONS + OPTIONS + STORAGE_AND_DIRS


@pytest.fixture(autouse=True)
def fresh_logging():
    """main() logs to stderr through the root logger; each case gets its own handler on capsys's stream."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()
    yield
    root.handlers[:] = saved


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_the_corpus_is_large_and_its_ids_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, monkeypatch, capsys):
    _, argv_of, fragment = case
    ws = Ws(tmp_path)
    monkeypatch.chdir(tmp_path)  # default paths (runs/, .cache/) would land here
    argv = argv_of(ws)
    before = tree(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    # one line: the refusal (log lines of what was checked before it may precede it)
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], err
    assert fragment in errors[0], errors[0]
    assert tree(tmp_path) == before, "the refusal left files behind"


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl"])
def test_spreadsheet_exports_are_accepted(kind: str, tmp_path, capsys):
    """A byte-order mark, CRLF line ends and blank lines at the end read like a plain file."""
    ws = Ws(tmp_path)
    plain_rows = [(t, y) for t, y in ROWS]
    if kind == "jsonl":
        body = "\r\n".join(json.dumps({"text": t, "label": y}) for t, y in plain_rows)
        odd, plain = "\ufeff" + body + "\r\n\r\n\r\n", body.replace("\r\n", "\n") + "\n"
    else:
        sep = "," if kind == "csv" else "\t"
        body = "\r\n".join(f"{t.replace(',', '')}{sep}{y}" for t, y in [("text", "label"), *plain_rows])
        odd, plain = "\ufeff" + body + "\r\n\r\n  \r\n", body.replace("\r\n", "\n") + "\n"
    summaries = []
    for name, text in (("odd", odd), ("plain", plain)):
        f = ws.write(f"{name}.{kind}", text)
        assert main(["tasks", "--data-dir", str(tmp_path), "--json", "--custom-train", f, "--custom-dev", f,
                     "--text-columns", "text"]) == 0
        (summary,) = json.loads(capsys.readouterr().out)
        summaries.append({k: summary[k] for k in ("labels", "splits", "trivial")})
    assert summaries[0] == summaries[1]
    assert summaries[0]["splits"]["train"] == {"rows": len(ROWS), "labelled": len(ROWS)}


def test_a_glue_file_with_crlf_line_ends_is_read_as_it_is(tmp_path, capsys):
    ws = Ws(tmp_path)
    rows = "".join(f"{t}\t{int(y == 'pos')}\r\n" for t, y in ROWS)
    assert main(["tasks", "--json", "--data-dir", ws.sst2(train="\ufeffsentence\tlabel\r\n" + rows + "\r\n")]) == 0
    (sst2,) = json.loads(capsys.readouterr().out)
    assert sst2["splits"]["train"]["labelled"] == len(ROWS)


def test_debug_shows_the_traceback_behind_a_refusal(tmp_path, capsys):
    ws = Ws(tmp_path)
    assert main(["--debug", "tasks", "--data-dir", ws.sst2(train="sentence\tlabel\nok\t7\n")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: ")
