"""The suite table (FastFormers Table 4's analogue) from ``suite.json`` alone: ``suite.md`` and a
section of ``<suite run dir>/report/report.html``.

Scores are shown in points (0-100) with their 95 % bootstrap interval on the held-out split, so
they read beside the paper's numbers, which are cited as published, not measured here.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from autotune.suite import Suite, SuiteRecord
from compress.intervals import Interval
from reports import html, markdown
from reports.document import Document, Section, Table
from reports.published import TABLE1, TABLE4, Published

log = logging.getLogger(__name__)
NONE = "—"
COLUMNS = ("task", "metric", "trivial (held-out)", "teacher held-out", "pick held-out", "× baseline",
           "× int8 teacher", "refused / verdict", "published teacher (Table 1)", "published reference (Table 4)")


def points(i: Interval | None) -> str:
    if i is None:
        return NONE
    return f"{100 * i.value:.1f} (95% {100 * i.low:.1f}–{100 * i.high:.1f}, n={i.units})"


def times(x: float | None, stored: str = "") -> str:
    """A ratio; ``stored`` marks one not re-timed beside the pick (a record from before that)."""
    return NONE if x is None else f"{x:.1f}×" + (f" ({stored})" if stored else "")


def cited(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}"


def verdict(r: SuiteRecord) -> str:
    if r.refused:
        return r.refused
    if r.teacher_only:
        d = r.teacher_minus_trivial
        gap = "" if d is None else (f" (teacher − trivial {100 * d.value:+.1f} points, "
                                    f"95% {100 * d.low:+.1f} to {100 * d.high:+.1f})")
        beats = "beats" if r.teacher_beats_trivial else "does NOT beat (went on under --allow-weak-teacher)"
        fit = f"; fit: {r.teacher_fit}" if r.teacher_fit else ""
        return f"teacher only: the teacher {beats} the trivial baseline beyond noise{gap}; no student searched{fit}"
    if r.heldout_confirmed is None:
        return "shipped"
    return "shipped, held-out confirmed" if r.heldout_confirmed else "shipped, MISSES the held-out floor"


def row(task: str, r: SuiteRecord | None) -> list[str]:
    if r is None:
        return [task, NONE, NONE, NONE, NONE, NONE, NONE, "not run yet", NONE, NONE]
    trivial = NONE if r.trivial_heldout is None else f"{r.trivial_kind or 'trivial'}: {points(r.trivial_heldout)}"
    pub = r.published or Published(r.task)
    return [r.task, r.metric, trivial, points(r.teacher_heldout), points(r.pick_heldout),
            times(r.speedup_vs_baseline, "" if r.retimed_rounds else "stored"),
            times(r.speedup_vs_int8_teacher, "" if r.retimed_rounds else "stored, int8 at batch 1"), verdict(r),
            cited(pub.teacher_dev), cited(pub.reference)]


def frame(suite: Suite) -> pd.DataFrame:
    by_task = {r.task: r for r in suite.records}
    return pd.DataFrame([row(t, by_task.get(t)) for t in suite.tasks], columns=list(COLUMNS))


def section(suite: Suite) -> Section:
    done = len(suite.records)
    return Section("Suite: one sweep per task", (
        Table(f"Suite ({suite.preset} preset): {done} of {len(suite.tasks)} tasks run", frame(suite)),
        "Scores in points (0-100) on each task's held-out dev rows, which the search never saw, with 95% "
        "bootstrap intervals (n rows, or groups for grouped tasks). The speed-ups are re-timed beside the pick at "
        "the end of each sweep: the pick, the baseline and the int8 teacher timed in interleaved rounds, the median "
        "of the per-round ratios (outcome.json keeps the stored trial figures beside). × baseline: the pick's "
        "throughput over the teacher out of the box (PyTorch fp32, padded, batch 1); × int8 teacher: over the "
        "teacher quantised to int8 in onnxruntime at the pick's own runtime (batch, instances × threads). A figure "
        "marked (stored) comes from a sweep before re-timing: the trial's stored throughput over the study's stored "
        "references, the int8 one at batch 1. A refusal is a result: nothing was shipped for that task, for the "
        "reason given.",
        f"Published columns are cited facts, not measurements of this run (another teacher, other hardware, the "
        f"full dev split; metric as the paper reports it): '{TABLE1}'; '{TABLE4}'. {NONE}: not known here.",
        "Each task's own report: TASK/report/report.html in the suite folder (run_sweep.py report --run SUITE_DIR/TASK).",
    ))


def document(suite_dir: Path) -> Document:
    suite = Suite.read(suite_dir)
    return Document("FastFormers auto-tune suite", (f"Read from {Path(suite_dir) / 'suite.json'} only; nothing "
                                                     "was re-run.",), (section(suite),))


def write_markdown(suite_dir: Path) -> Path:
    """``suite.md``: the table alone, rewritten after every task."""
    path = Path(suite_dir) / "suite.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(markdown.render(document(suite_dir), Path(suite_dir)), encoding="utf-8")
    tmp.replace(path)
    return path


def write(suite_dir: Path) -> dict[str, Path]:
    """suite.md, and report/report.html (+ report.md) holding the suite section, self-contained."""
    doc = document(suite_dir)
    out = Path(suite_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    paths = {"suite_md": write_markdown(suite_dir), "html": html.write(doc, out), "markdown": markdown.write(doc, out)}
    log.info("suite report written to %s", paths["html"])
    return paths
