"""Readers for the official GLUE/SuperGLUE file layouts and custom CSV/TSV/JSONL files.

Every record carries its file and line number so that bad input can be reported as
``file:line: what is wrong`` instead of a traceback.
"""
from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from compress.errors import UserInputError

csv.field_size_limit(sys.maxsize)


@dataclass(frozen=True)
class Record:
    path: Path
    line: int
    data: dict[str, Any]

    def get(self, key: str) -> Any:
        """The value of ``key``, or one line naming the column and the columns found."""
        if key not in self.data:
            found = ", ".join(repr(k) for k in self.data) or "none"
            raise UserInputError(
                f"{self.path}:{self.line}: missing column {key!r}; columns found: {found}"
            )
        return self.data[key]

    def opt(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


def read_jsonl(path: Path) -> list[Record]:
    path = Path(path)
    out: list[Record] = []
    with _open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserInputError(f"{path}:{lineno}: malformed JSON line ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise UserInputError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            out.append(Record(path, lineno, obj))
    return out


def read_delimited(
    path: Path,
    delimiter: str = "\t",
    header: bool = True,
    columns: Sequence[str] | None = None,
    quoting: int = csv.QUOTE_NONE,
) -> list[Record]:
    """Read a TSV/CSV file; ``columns`` names the fields of a header-less file.

    GLUE's TSVs contain unbalanced quotes (MRPC), so TSV is read with QUOTE_NONE.
    """
    path = Path(path)
    out: list[Record] = []
    with _open(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter, quoting=quoting)
        rows: Iterator[list[str]] = iter(reader)
        if header:
            try:
                names = [c.lstrip("\ufeff").strip() for c in next(rows)]
            except StopIteration:
                raise UserInputError(f"{path}: empty file, expected a header line") from None
        else:
            if not columns:
                raise ValueError("header-less file needs column names")
            names = list(columns)
        for row in rows:
            lineno = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(names):
                raise UserInputError(
                    f"{path}:{lineno}: expected {len(names)} fields ({', '.join(names)}), found {len(row)}"
                )
            out.append(Record(path, lineno, dict(zip(names, row))))
    return out


def read_table(path: Path) -> list[Record]:
    """Read a custom data file, its format taken from the extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return read_jsonl(path)
    if suffix == ".tsv":
        return read_delimited(path, "\t")
    if suffix == ".csv":
        return read_delimited(path, ",", quoting=csv.QUOTE_MINIMAL)
    raise UserInputError(f"{path}: unknown data format {suffix!r}; use .csv, .tsv or .jsonl")


def _open(path: Path):
    if not path.is_file():
        raise UserInputError(f"{path}: no such file")
    return open(path, encoding="utf-8-sig", newline="")
