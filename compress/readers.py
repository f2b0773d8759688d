"""Readers for the official GLUE/SuperGLUE file layouts, custom CSV/TSV/JSONL files and JSON inputs.

Every record carries its file and line number so that bad input can be reported as
``file:line: what is wrong`` instead of a traceback. Files exported by spreadsheets are taken as
they are (a UTF-8 byte-order mark, CRLF line ends, blank lines at the end); anything that is not
UTF-8 is refused with its line and byte, since guessing an encoding would silently change the text.
"""
from __future__ import annotations

import csv
import io
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
    with io.StringIO(read_text(path), newline="") as fh:
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
    with io.StringIO(read_text(path), newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter, quoting=quoting)
        rows: Iterator[list[str]] = iter(reader)
        if header:
            try:
                names = [c.strip() for c in next(rows)]
            except StopIteration:
                raise UserInputError(f"{path}: empty file, expected a header line") from None
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise UserInputError(f"{path}:1: column {twice[0]!r} appears {names.count(twice[0])} times in the "
                                     f"header; give each column its own name")
        else:
            if not columns:
                raise ValueError("header-less file needs column names")
            names = list(columns)
        for row in rows:
            lineno = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(names):  # a stray delimiter shifts every field after it
                raise UserInputError(
                    f"{path}:{lineno}: expected {len(names)} fields ({', '.join(names)}), found {len(row)}"
                    + ("; a field holds an unquoted delimiter?" if len(row) > len(names) else "")
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


def read_text(path: str | Path, option: str | None = None) -> str:
    """A file's text, strictly UTF-8 (a leading byte-order mark dropped); one line naming the file,
    the line and the byte otherwise. ``option``: the command-line option that named the file."""
    path = Path(path)
    where = f"{option} {path}" if option else str(path)
    if path.is_dir():
        raise UserInputError(f"{where}: is a folder, expected a file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserInputError(f"{where}: no such file") from None
    except OSError as exc:
        raise UserInputError(f"{where}: cannot be read ({exc.strerror})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserInputError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column}); save the file as "
            f"UTF-8 (e.g. iconv -f latin1 -t utf-8 {path.name})") from None


def read_json(path: str | Path, option: str | None = None) -> Any:
    """A JSON file's value, or one line: the file (and option), the line and column, the parser's reason."""
    text = read_text(path, option)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON ({exc})") from None


def read_json_object(path: str | Path, option: str | None = None) -> dict[str, Any]:
    """A JSON file holding one object (a spec, a recipe, a config)."""
    value = read_json(path, option)
    if not isinstance(value, dict):
        raise UserInputError(f"{path}: expected a JSON object {{...}}, found a {type(value).__name__}")
    return value
