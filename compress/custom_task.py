"""Custom tasks from a CSV/TSV/JSONL file and a small spec, without code changes.

The spec is a frozen dataclass with a JSON round trip, built either from a JSON file
(``--task-spec spec.json``) or from command-line options; both end in the same object.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from compress.errors import UserInputError
from compress.readers import Record, read_json_object, read_table
from compress.tasks import SPLITS, Example, TaskData, TaskSpec, register, rows_from_records
from compress.metrics import ROW_METRICS


@dataclass(frozen=True)
class CustomTaskSpec:
    name: str
    text_columns: tuple[str, ...]
    label_column: str
    files: dict[str, str] = field(default_factory=dict)  # split -> path
    label_names: tuple[str, ...] = ()  # inferred from the train file when empty
    metrics: tuple[str, ...] = ("accuracy",)
    max_length: int = 128

    def __post_init__(self) -> None:
        if not 1 <= len(self.text_columns) <= 2:
            raise UserInputError(f"custom task {self.name}: text_columns takes one or two column names")
        unknown = [m for m in self.metrics if m not in ROW_METRICS]
        if unknown:
            raise UserInputError(f"custom task {self.name}: unknown metric {unknown[0]!r}; known: {', '.join(ROW_METRICS)}")
        bad = [s for s in self.files if s not in SPLITS]
        if bad:
            raise UserInputError(f"custom task {self.name}: unknown split {bad[0]!r}; use {', '.join(SPLITS)}")
        twice = sorted({x for x in self.label_names if self.label_names.count(x) > 1})
        if twice:
            raise UserInputError(f"custom task {self.name}: label {twice[0]!r} is named twice in label_names")
        if self.label_names and len(self.label_names) < 2:
            raise UserInputError(f"custom task {self.name}: label_names holds one label; a classifier needs two or more")
        if not isinstance(self.max_length, int) or not 8 <= self.max_length <= 4096:
            raise UserInputError(f"custom task {self.name}: max_length {self.max_length!r}: use a whole number of "
                                 f"tokens from 8 to 4096")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {**d, **{k: list(d[k]) for k in ("text_columns", "label_names", "metrics")}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def absolute(self) -> "CustomTaskSpec":
        """The same spec with absolute file paths: a stored sweep config reloads it from anywhere."""
        return replace(self, files={s: str(Path(p).expanduser().resolve()) for s, p in self.files.items()})

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "task spec") -> "CustomTaskSpec":
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(d) - known)
        if extra:
            raise UserInputError(f"{where}: unknown field{'s' if len(extra) > 1 else ''} "
                                 f"{', '.join(map(repr, extra))}; fields: {', '.join(sorted(known))}")
        for req in ("name", "text_columns", "label_column"):
            if req not in d:
                raise UserInputError(f"{where}: missing field {req!r}")
        d = dict(d)
        if not isinstance(d["name"], str) or not d["name"].strip():
            raise UserInputError(f"{where}: field 'name' must be a non-empty string")
        files = d.get("files", {})
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise UserInputError(f"{where}: field 'files' must map splits to paths, e.g. "
                                 f'{{"train": "train.csv", "dev": "dev.csv"}}')
        for key in ("text_columns", "label_names", "metrics"):
            if key in d:
                d[key] = tuple([d[key]] if isinstance(d[key], str) else d[key])
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path) -> "CustomTaskSpec":
        path = Path(path)
        spec = cls.from_dict(read_json_object(path, "--task-spec"), str(path))
        # relative data paths are relative to the spec file
        files = {s: str((path.parent / p)) if not Path(p).is_absolute() else p for s, p in spec.files.items()}
        return cls(**{**asdict(spec), "files": files, "text_columns": spec.text_columns,
                      "label_names": spec.label_names, "metrics": spec.metrics})


def load_custom(spec: CustomTaskSpec) -> TaskData:
    if not spec.files:
        raise UserInputError(f"custom task {spec.name}: no data files given")
    raw = {split: read_table(Path(p)) for split, p in spec.files.items()}
    labels = spec.label_names or _infer_labels(raw.get("train") or next(iter(raw.values())), spec.label_column)
    cols = spec.text_columns

    def builder(required: bool):
        def build(rec: Record, ts: TaskSpec) -> list[Example]:
            value = rec.get(spec.label_column) if required else rec.opt(spec.label_column)
            label = None if value in (None, "") else ts.label_index(value, rec)
            text_b = str(rec.get(cols[1])) if len(cols) > 1 else None
            return [Example(str(rec.get(cols[0])), text_b, label)]

        return build

    _check_classes(spec, _labels_found(raw, spec.label_column))
    ts = register(TaskSpec(spec.name, "custom", spec.name, tuple(labels), spec.metrics, builder(True),
                           dict(spec.files), "custom", max_length=spec.max_length))
    splits = {s: rows_from_records(replace(ts, build=builder(s != "test")), recs, labelled=s != "test",
                                   where=spec.files[s])
              for s, recs in raw.items()}
    return TaskData(ts, splits, ", ".join(spec.files.values()))


def _labels_found(raw: dict[str, list[Record]], column: str) -> dict[str, set[str]]:
    return {s: {str(r.opt(column)).strip() for r in recs if r.opt(column) not in (None, "")}
            for s, recs in raw.items() if s != "test"}


def _check_classes(spec: CustomTaskSpec, found: dict[str, set[str]]) -> None:
    """A train split with one class would train a constant predictor that scores 1.0 on a dev split
    of that class: refused, naming the file and the class."""
    split = "train" if "train" in found else next(iter(found), None)
    if split is not None and len(found[split]) == 1:
        (only,) = found[split]
        raise UserInputError(f"{spec.files[split]}: every labelled row of column {spec.label_column!r} is {only!r}; "
                             f"a classifier needs at least two classes in its {split} data")


def _infer_labels(records: list[Record], column: str) -> tuple[str, ...]:
    values = sorted({str(r.get(column)).strip() for r in records if r.opt(column) not in (None, "")})
    if not values:
        raise UserInputError(f"custom task: no labels found in column {column!r}")
    return tuple(values)
