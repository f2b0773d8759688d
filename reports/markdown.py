"""``report.md``: the document as GitHub-flavoured Markdown, images linked beside it.

Stored text (task names, labels, errors) may hold markup, so it is HTML-escaped: a Markdown
viewer that renders to HTML then shows it literally instead of running it.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import pandas as pd

from reports.document import Document, Image, Table


def esc(text: str) -> str:
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def number(v: Any) -> str:
    """A raw cell: 3 decimals, thousands separated from 1,000 up; n/a for a missing value."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def grid(frame: pd.DataFrame, number_format: bool = False) -> str:
    """A GitHub markdown table, every cell escaped; ``number_format`` for frames of raw numbers."""
    cell = (lambda v: esc(number(v))) if number_format else esc
    head = "| " + " | ".join(esc(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def table(t: Table) -> str:
    if t.frame.empty:
        return f"*{esc(t.caption)}: none.*"
    return "\n".join([f"**{esc(t.caption)}**", "", grid(t.frame)])


def render(doc: Document, out_dir: Path) -> str:
    parts = [f"# {esc(doc.title)}", *(esc(p) for p in doc.intro)]
    for s in doc.sections:
        parts.append(f"## {esc(s.title)}")
        for b in s.blocks:
            if isinstance(b, Table):
                parts.append(table(b))
            elif isinstance(b, Image):
                parts.append(f"![{esc(b.alt)}]({Path(b.path).relative_to(out_dir).as_posix()})")
            else:
                parts.append(esc(b))
    return "\n\n".join(parts) + "\n"


def write(doc: Document, out_dir: Path) -> Path:
    path = out_dir / "report.md"
    path.write_text(render(doc, out_dir), encoding="utf-8")
    return path


