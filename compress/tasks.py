"""Task registry: where each GLUE/SuperGLUE task lives, how a record becomes model input
rows, and how predictions are scored.

Every task is a sequence classification over rows. Choice tasks (COPA, ReCoRD) and
MultiRC expand one record into several rows that share a ``group`` id; scoring folds
the rows back into their groups, so every engine is scored by the same code.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from compress import metrics as M
from compress.errors import UserInputError
from compress.readers import Record, read_delimited, read_jsonl

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Example:
    text_a: str
    text_b: str | None = None
    label: int | None = None  # None for the unlabelled test splits
    group: str | None = None  # question (MultiRC) or record (COPA, ReCoRD) the row belongs to
    candidate: str | None = None  # ReCoRD: the entity this row proposes
    golds: tuple[str, ...] = ()  # ReCoRD: the gold answer texts of the row's query


@dataclass(frozen=True)
class TaskSpec:
    name: str
    benchmark: str  # glue | superglue | custom
    folder: str
    label_names: tuple[str, ...]
    metrics: tuple[str, ...]
    build: Callable[[Record, "TaskSpec"], list[Example]] = field(repr=False, compare=False)
    files: Mapping[str, str] = field(default_factory=dict)  # split -> file name
    fmt: str = "jsonl"  # jsonl | tsv | tsv-noheader
    columns: tuple[str, ...] = ()  # header-less TSV column names
    scoring: str = "rows"  # rows | choice | multirc | record
    max_length: int = 128
    hub: tuple[str, str] | None = None  # (dataset id, config) on the Hugging Face hub

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    def label_index(self, value: Any, rec: Record) -> int:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, (int, np.integer)) and 0 <= int(value) < self.num_labels:
            return int(value)
        text = str(value).strip()
        if text in self.label_names:
            return self.label_names.index(text)
        if text.lstrip("-").isdigit() and 0 <= int(text) < self.num_labels:
            return int(text)
        raise UserInputError(
            f"{rec.path}:{rec.line}: unknown label {value!r} for task {self.name}; "
            f"expected one of {list(self.label_names)}"
        )


@dataclass(frozen=True)
class TaskData:
    spec: TaskSpec
    splits: Mapping[str, tuple[Example, ...]]
    source: str
    notes: tuple[str, ...] = ()

    def labelled(self, split: str) -> int:
        """Labelled examples in ``split``: records for choice tasks, rows otherwise."""
        rows = [ex for ex in self.splits.get(split, ()) if ex.label is not None]
        if self.spec.scoring in ("choice", "record"):
            return len({ex.group for ex in rows})
        return len(rows)

    def summary(self) -> dict[str, Any]:
        return {
            "task": self.spec.name,
            "benchmark": self.spec.benchmark,
            "source": self.source,
            "labels": list(self.spec.label_names),
            "metrics": list(self.spec.metrics),
            "splits": {s: {"rows": len(rows), "labelled": self.labelled(s)} for s, rows in self.splits.items()},
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- record -> rows


def _label(rec: Record, spec: TaskSpec, key: str = "label") -> int | None:
    value = rec.opt(key)
    return None if value is None or value == "" else spec.label_index(value, rec)


def _single(col: str, label_col: str = "label") -> Callable[[Record, TaskSpec], list[Example]]:
    def build(rec: Record, spec: TaskSpec) -> list[Example]:
        return [Example(rec.get(col), None, _label(rec, spec, label_col))]

    return build


def _pair(a: str, b: str, label_col: str = "label") -> Callable[[Record, TaskSpec], list[Example]]:
    def build(rec: Record, spec: TaskSpec) -> list[Example]:
        return [Example(rec.get(a), rec.get(b), _label(rec, spec, label_col))]

    return build


def _mark(sentence: str, start: int, end: int) -> str:
    return f"{sentence[:start]}* {sentence[start:end]} *{sentence[end:]}"


def _wic(rec: Record, spec: TaskSpec) -> list[Example]:
    """The target word is marked with asterisks in both sentences and named up front."""
    s1 = _mark(rec.get("sentence1"), int(rec.get("start1")), int(rec.get("end1")))
    s2 = _mark(rec.get("sentence2"), int(rec.get("start2")), int(rec.get("end2")))
    return [Example(f"{rec.get('word')} : {s1}", s2, _label(rec, spec))]


_COPA_QUESTION = {"cause": "What was the cause?", "effect": "What happened as a result?"}


def _copa(rec: Record, spec: TaskSpec) -> list[Example]:
    """Two rows, one per choice; the row of the right choice is labelled 1."""
    premise = f"{rec.get('premise')} {_COPA_QUESTION[rec.get('question')]}"
    gold = rec.opt("label")
    group = f"copa-{rec.get('idx')}"
    return [
        Example(premise, rec.get(c), None if gold is None else int(int(gold) == k), group)
        for k, c in enumerate(("choice1", "choice2"))
    ]


def _multirc(rec: Record, spec: TaskSpec) -> list[Example]:
    """One row per answer option: passage, question + answer; grouped by question."""
    passage = rec.get("passage")
    rows = []
    for q in passage["questions"]:
        group = f"{rec.get('idx')}-{q['idx']}"
        for a in q["answers"]:
            label = a.get("label")
            rows.append(Example(passage["text"], f"{q['question']} {a['text']}", None if label is None else int(label), group))
    return rows


def _record(rec: Record, spec: TaskSpec) -> list[Example]:
    """One row per candidate entity, the placeholder filled in; grouped by query."""
    passage = rec.get("passage")
    text = passage["text"]
    entities = list(dict.fromkeys(text[e["start"] : e["end"] + 1] for e in passage["entities"]))
    rows = []
    for q in rec.get("qas"):
        golds = tuple(a["text"] for a in q.get("answers", ()))
        group = f"{rec.get('idx')}-{q['idx']}"
        for ent in entities:
            label = int(ent in golds) if golds else None
            rows.append(Example(text, q["query"].replace("@placeholder", ent), label, group, ent, golds))
    return rows


# ---------------------------------------------------------------- registry

_SG = {"train": "train.jsonl", "dev": "val.jsonl", "test": "test.jsonl"}
_GLUE = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
_ENT2 = ("entailment", "not_entailment")

TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("sst2", "glue", "SST-2", ("negative", "positive"), ("accuracy",), _single("sentence"),
                 _GLUE, "tsv", max_length=128, hub=("nyu-mll/glue", "sst2")),
        TaskSpec("mrpc", "glue", "MRPC", ("not_equivalent", "equivalent"), ("f1", "accuracy"),
                 _pair("#1 String", "#2 String", "Quality"), _GLUE, "tsv", hub=("nyu-mll/glue", "mrpc")),
        TaskSpec("rte", "glue", "RTE", _ENT2, ("accuracy",), _pair("sentence1", "sentence2"), _GLUE, "tsv",
                 max_length=256, hub=("nyu-mll/glue", "rte")),
        TaskSpec("cola", "glue", "CoLA", ("unacceptable", "acceptable"), ("mcc", "accuracy"), _single("sentence"),
                 {"train": "train.tsv", "dev": "dev.tsv"}, "tsv-noheader",
                 ("source", "label", "original_label", "sentence"), max_length=64, hub=("nyu-mll/glue", "cola")),
        TaskSpec("boolq", "superglue", "BoolQ", ("False", "True"), ("accuracy",), _pair("question", "passage"),
                 _SG, max_length=256, hub=("aps/super_glue", "boolq")),
        TaskSpec("cb", "superglue", "CB", ("entailment", "contradiction", "neutral"), ("accuracy", "macro_f1"),
                 _pair("premise", "hypothesis"), _SG, max_length=256, hub=("aps/super_glue", "cb")),
        TaskSpec("copa", "superglue", "COPA", ("wrong", "right"), ("accuracy",), _copa, _SG, scoring="choice",
                 max_length=64, hub=("aps/super_glue", "copa")),
        TaskSpec("superglue-rte", "superglue", "RTE", _ENT2, ("accuracy",), _pair("premise", "hypothesis"), _SG,
                 max_length=256, hub=("aps/super_glue", "rte")),
        TaskSpec("wic", "superglue", "WiC", ("False", "True"), ("accuracy",), _wic, _SG, max_length=128,
                 hub=("aps/super_glue", "wic")),
        TaskSpec("multirc", "superglue", "MultiRC", ("False", "True"), ("f1a", "em"), _multirc, _SG,
                 scoring="multirc", max_length=384, hub=("aps/super_glue", "multirc")),
        TaskSpec("record", "superglue", "ReCoRD", ("wrong", "right"), ("f1", "em"), _record, _SG, scoring="record",
                 max_length=384, hub=("aps/super_glue", "record")),
    )
}

ALIASES = {"sst-2": "sst2", "glue-rte": "rte", "sg-rte": "superglue-rte", "rte-superglue": "superglue-rte"}


def register(spec: TaskSpec) -> TaskSpec:
    TASKS[spec.name] = spec
    return spec


def get_task(name: str) -> TaskSpec:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in TASKS:
        raise UserInputError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[key]


# ---------------------------------------------------------------- loading


def task_dir(spec: TaskSpec, data_dir: Path) -> Path | None:
    """The task's folder under ``data_dir``: ``DIR/<benchmark>/<Folder>`` or ``DIR/<Folder>``."""
    ext = ".jsonl" if spec.fmt == "jsonl" else ".tsv"
    for cand in (data_dir / spec.benchmark / spec.folder, data_dir / spec.folder, data_dir):
        if cand.is_dir() and cand.name == spec.folder and any(cand.glob(f"*{ext}")):
            return cand
    return None


def _read(spec: TaskSpec, path: Path) -> list[Record]:
    if spec.fmt == "jsonl":
        return read_jsonl(path)
    if spec.fmt == "tsv-noheader":
        return read_delimited(path, "\t", header=False, columns=spec.columns)
    return read_delimited(path, "\t")


def rows_from_records(spec: TaskSpec, records: Iterable[Record], labelled: bool = False,
                      where: str | Path = "") -> tuple[Example, ...]:
    """The task's rows; ``labelled``: a split that must carry a label on every row (train, dev).
    Such a split read without its labels would otherwise pass as unlabelled and, for want of a train
    split, train the teacher on dev rows: a labelled split that lost its labels is an error."""
    out: list[Example] = []
    for rec in records:
        try:
            rows = spec.build(rec, spec)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, UserInputError):
                raise
            raise UserInputError(f"{rec.path}:{rec.line}: malformed {spec.name} record ({type(exc).__name__}: {exc})") from None
        if labelled and any(ex.label is None for ex in rows):
            columns = ", ".join(repr(k) for k in rec.data)
            raise UserInputError(f"{rec.path}:{rec.line}: no label in a labelled split (the label is missing or "
                                 f"empty; columns found: {columns}); restore the file's labels")
        out.extend(rows)
    if labelled and not out:
        raise UserInputError(f"{where or 'task ' + spec.name}: no rows (a train or dev file needs labelled rows)")
    return tuple(out)


def load_task(name: str | TaskSpec, data_dir: str | Path | None = None) -> TaskData:
    """Load every split of a task from ``data_dir``, or from the hub when no directory is given."""
    spec = name if isinstance(name, TaskSpec) else get_task(name)
    if data_dir is None:
        from compress.hub import load_from_hub  # cycle: compress.hub imports this module

        return load_from_hub(spec)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserInputError(f"--data-dir {data_dir}: no such directory")
    folder = task_dir(spec, data_dir)
    if folder is None:
        raise UserInputError(f"task {spec.name}: no {spec.benchmark}/{spec.folder} folder under {data_dir}")
    splits = {s: rows_from_records(spec, _read(spec, folder / f), labelled=s != "test", where=folder / f)
              for s, f in spec.files.items() if (folder / f).is_file()}
    return TaskData(spec, splits, str(folder.resolve()))  # one spelling: cache keys include it


def discover(data_dir: str | Path) -> list[TaskData]:
    """Every registered task whose folder exists under ``data_dir``."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserInputError(f"--data-dir {data_dir}: no such directory")
    return [load_task(spec, data_dir) for spec in TASKS.values() if task_dir(spec, data_dir) is not None]


def limit_rows(rows: Sequence[Example], limit: int | None) -> tuple[Example, ...]:
    """The first ``limit`` rows, extended so that no group (COPA record, MultiRC question) is cut."""
    if not limit or limit >= len(rows):
        return tuple(rows)
    end = limit
    while end < len(rows) and rows[end].group is not None and rows[end].group == rows[end - 1].group:
        end += 1
    return tuple(rows[:end])


def group_keys(rows: Sequence[Example]) -> list[str | int]:
    """The unit each row moves with: its group (MultiRC question, COPA record), else itself."""
    return [ex.group if ex.group is not None else i for i, ex in enumerate(rows)]


def split_rows(rows: Sequence[Example], fraction: float, seed: int) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    """Deterministic seeded split; grouped rows (MultiRC questions, COPA records) stay together."""
    key_of = group_keys(rows)
    keys = list(dict.fromkeys(key_of))
    order = np.random.default_rng(seed).permutation(len(keys))
    first = {keys[i] for i in order[: int(round(fraction * len(keys)))]}
    a = tuple(ex for ex, k in zip(rows, key_of) if k in first)
    b = tuple(ex for ex, k in zip(rows, key_of) if k not in first)
    return a, b


def ensure_train_split(data: TaskData, fraction: float = 0.8, seed: int = 0, source: str = "dev") -> TaskData:
    """Carve a deterministic train part out of a labelled split when a task has no train split.

    The carve-out is stated in ``notes`` so that every output that uses it says so.
    """
    if data.labelled("train") > 0:
        return data
    rows = data.splits.get(source, ())
    if not any(ex.label is not None for ex in rows):
        raise UserInputError(f"task {data.spec.name}: no labelled split to carve a train part from")
    train, rest = split_rows(rows, fraction, seed)
    note = (
        f"{data.spec.name}: no train split in {data.source}; train = {len(train)} rows carved from "
        f"{source} (fraction {fraction}, seed {seed}); dev = the remaining {len(rest)} rows"
    )
    log.warning(note)
    return replace(data, splits=dict(data.splits, train=train, dev=rest), notes=data.notes + (note,))


def hold_out(data: TaskData, fraction: float = 0.5, seed: int = 0) -> TaskData:
    """Split dev into the part a search may look at and a ``holdout`` part it never sees."""
    search, held = split_rows(data.splits["dev"], 1.0 - fraction, seed)
    note = (f"{data.spec.name}: dev split into {len(search)} rows for the search and {len(held)} "
            f"held-out rows (fraction {fraction}, seed {seed})")
    return replace(data, splits=dict(data.splits, dev=search, holdout=held), notes=data.notes + (note,))


# ---------------------------------------------------------------- scoring


def score(spec: TaskSpec, examples: Sequence[Example], logits: np.ndarray) -> dict[str, float]:
    """The task's official metrics for row-level logits (rows in ``examples`` order)."""
    logits = np.asarray(logits)
    if len(examples) != len(logits):
        raise ValueError(f"{len(examples)} examples but {len(logits)} predictions")
    labels = np.array([ex.label for ex in examples])
    if any(ex.label is None for ex in examples):
        raise ValueError(f"task {spec.name}: cannot score unlabelled rows")
    preds = logits.argmax(-1)
    groups = [ex.group for ex in examples]
    if spec.scoring == "choice":
        return {"accuracy": M.choice_accuracy(groups, labels, logits[:, 1] - logits[:, 0])}
    if spec.scoring == "multirc":
        return M.multirc_scores(groups, labels, preds)
    if spec.scoring == "record":
        return M.record_scores(groups, [ex.candidate for ex in examples], [ex.golds for ex in examples],
                               logits[:, 1] - logits[:, 0])
    return {m: M.ROW_METRICS[m](labels, preds) for m in spec.metrics}
