"""``report.html``: one self-contained file — images inlined as base64 PNG, CSS inline, no
script and no network — so it can be mailed or archived and still opens anywhere.

Every piece of stored text goes through ``html.escape``.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

from reports.document import Document, Image, Table

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:left}th{background:#f1f3f5}img{max-width:100%;height:auto;display:block;margin:.5em 0}
caption{text-align:left;font-weight:600;padding:.3em 0}details{margin-bottom:1.5em}
tr.infeasible td{background:#fdecea}.wide{overflow-x:auto}tr.fail td{background:#fff4e5}"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def table(t: Table) -> str:
    if t.frame.empty:
        return f"<p><em>{esc(t.caption)}: none.</em></p>"
    head = "".join(f"<th>{esc(c)}</th>" for c in t.frame.columns)
    status = list(t.frame.columns).index("status") if "status" in t.frame.columns else None
    rows = []
    for row in t.frame.itertuples(index=False):
        cls = f' class="{esc(row[status])}"' if status is not None else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>")
    body = (f'<div class="wide"><table><caption>{esc(t.caption)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")
    return f"<details><summary>{esc(t.caption)}</summary>{body}</details>" if t.collapsed else body


def block(b) -> str:
    if isinstance(b, Table):
        return table(b)
    if isinstance(b, Image):
        return f'<figure><img src="{data_uri(b.path)}" alt="{esc(b.alt)}"></figure>'
    return f"<p>{esc(b)}</p>"


def render(doc: Document) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(doc.title)}</title><style>{CSS}</style></head><body>", f"<h1>{esc(doc.title)}</h1>"]
    parts += [f"<p>{esc(p)}</p>" for p in doc.intro]
    for s in doc.sections:
        parts.append(f"<section><h2>{esc(s.title)}</h2>")
        parts += [block(b) for b in s.blocks]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write(doc: Document, out_dir: Path) -> Path:
    path = out_dir / "report.html"
    path.write_text(render(doc), encoding="utf-8")
    return path
