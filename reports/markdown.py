"""``report.md``: the document as GitHub-flavoured Markdown, images linked beside it.

Stored text (task names, labels, errors) may hold markup, so it is HTML-escaped: a Markdown
viewer that renders to HTML then shows it literally instead of running it.
"""
from __future__ import annotations

import html
from pathlib import Path

from reports.document import Document, Image, Table


def esc(text: str) -> str:
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def table(t: Table) -> str:
    if t.frame.empty:
        return f"*{esc(t.caption)}: none.*"
    head = "| " + " | ".join(esc(c) for c in t.frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in t.frame.columns) + "|"
    rows = ["| " + " | ".join(esc(v) for v in row) + " |" for row in t.frame.itertuples(index=False)]
    return "\n".join([f"**{esc(t.caption)}**", "", head, rule, *rows])


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


