"""Regenerate the whole report from stored results: figures, CSVs, report.md, report.html.

The same storage and JSON give the same tables, CSVs and text (rows sorted, floats in fixed
formats, no timestamps), so two reports can be diffed.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from autotune.cost import EXAMPLE_USD_PER_HOUR
from autotune.retime import rounds_text
from reports import charts, curves, html, markdown, paper_tables, pareto, significance, tables
from reports.document import Document, Image, Section, Table
from reports.length import sweep_length
from reports.load import TaskResults, load_run

log = logging.getLogger(__name__)

FLOAT_FORMAT = "%.6g"


@dataclass(frozen=True)
class Inputs:
    run_dir: Path | None
    out_dir: Path
    storage: str | None = None
    study: str | None = None
    table2: Path | None = None
    ablation: Path | None = None
    usd_per_hour: float = EXAMPLE_USD_PER_HOUR
    significance: tuple[Path, ...] = ()  # model dirs or significance.json files to show beside the sweep's


def slug(i: int, name: str) -> str:
    return f"{i:02d}-" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "x")[:40]


def redact(url: str) -> str:
    """A storage URL without its password."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


def _refs_text(res: TaskResults) -> str:
    r, m = res.references, res.metric
    parts = []
    if (r.get("teacher_metrics") or {}).get(m) is not None:
        parts.append(f"teacher dev {m} {r['teacher_metrics'][m]:.4f}")
    for key, what in (("baseline", "out-of-the-box (PyTorch fp32, padded, batch 1)"), ("teacher_ort_int8", "teacher ORT int8")):
        if r.get(key):
            parts.append(f"{what}: {r[key].get('throughput', float('nan')):.1f} ex/s, "
                         f"p99 {(r[key].get('latency_ms') or {}).get('p99', float('nan')):.2f} ms")
    return "References — " + "; ".join(parts) + "." if parts else "No references stored."


def _speedup_text(o) -> str:
    """The outcome's speed-ups, saying how they were timed."""
    if not o.speedup_vs_baseline:
        return ""
    if o.retimed_rounds:
        stored = "".join(f"{sep}{x:.{n}f}×{what}" for sep, x, n, what in (
            ("; stored trial figures ", o.stored_speedup_vs_baseline, 1, ""),
            (", ", o.stored_speedup_vs_int8_teacher, 2, " the batch-1 int8 reference")) if x)
        return (f"; {o.speedup_vs_baseline:.1f}× the out-of-the-box baseline"
                + (f", {o.speedup_vs_int8_teacher:.2f}× the ORT int8 teacher at the pick's runtime"
                   if o.speedup_vs_int8_teacher else "")
                + f" (re-timed beside the pick, {rounds_text(o.retimed_rounds)}{stored})")
    return (f"; {o.speedup_vs_baseline:.1f}× the out-of-the-box baseline"
            + (f", {o.speedup_vs_int8_teacher:.2f}× the batch-1 ORT int8 teacher" if o.speedup_vs_int8_teacher else "")
            + " (stored trial figures)")


def trust_text(res: TaskResults) -> list[str]:
    """Is the model behind the speed-up any good: trivial baseline, teacher and pick held out,
    each with its 95% interval, and the refusal if nothing was shipped (outcome.json)."""
    o = res.outcome
    if o is None:
        return []
    ci = lambda x: x.describe() if x is not None else "not measured"  # noqa: E731
    lines = [f"Trivial baseline ({o.trivial_kind}): search {ci(o.trivial_search)}, held-out {ci(o.trivial_heldout)} "
             f"on {o.trivial_heldout.units if o.trivial_heldout else '?'} held-out units. Teacher: search "
             f"{ci(o.teacher_search)}, held-out {ci(o.teacher_heldout)}."]
    if o.pick_heldout is not None:
        diff = o.pick_minus_teacher
        lines.append(f"Pick (trial {o.pick_trial}): search {ci(o.pick_search)}, held-out {ci(o.pick_heldout)}"
                     + (f"; pick − teacher on the same held-out rows {diff.describe()}" if diff else "")
                     + _speedup_text(o) + ".")
    if o.refused:
        lines.append(f"REFUSED — nothing shipped: {o.refused}.")
    return lines + [f"Note: {n}" for n in o.notes if n not in res.references.get("notes", [])]


def _hopeless_text(t: pd.DataFrame) -> list[str]:
    stopped = t[t["state"] == "PRUNED"]
    if stopped.empty:
        return []
    return [f"{len(stopped)} trial(s) stopped as hopeless while their student trained (the rule: "
            "autotune/hopeless.py); their stopped steps had about "
            f"{stopped['saved_s'].fillna(0).sum() / 60:.0f} min of training left, not spent."]


def task_section(i: int, res: TaskResults, fig_dir: Path) -> Section:
    t = res.trials
    counts = t["status"].value_counts().sort_index()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    floor = f"{res.floor:.4f} ({res.floor_rule})" if res.floor is not None else "none stored"
    hw = res.hardware
    blocks: list = [
        f"Study {res.study}: metric {res.metric}, objective {'accuracy × throughput' if res.multi else 'throughput'}, "
        f"accuracy floor {floor}. Trials: {summary or 'none'}.",
        f"Length: {sweep_length(t).describe()}. Teacher fine-tune, references and held-out checks run outside "
        "trials and are not counted.",
        *_hopeless_text(t),
        f"Hardware {hw.get('hash', 'unknown')}: {hw.get('cpu_model', '')}, {len(hw.get('cores', []))} physical cores "
        f"usable." if hw else "Hardware not stored.",
        _refs_text(res),
        *trust_text(res),
        *[f"Note: {n}" for n in res.references.get("notes", [])],
    ]
    base = slug(i, res.task)
    for axis in (pareto.THROUGHPUT, pareto.P99):
        path = pareto.plot(res, axis, fig_dir / f"{base}-pareto-{axis.column}.png")
        blocks.append(Image(path, f"{res.task}: {res.metric} against {axis.label}"))
    front = pareto.front(t, pareto.THROUGHPUT)
    blocks.append(Table("Feasible Pareto front (accuracy × throughput)",
                        tables.trials(replace(res, trials=front))))
    blocks.append(Table("Failed and stopped trials (not plotted) and their reasons", tables.failed(res)))
    trained = curves.plot(res, fig_dir / f"{base}-training.png")
    if trained is not None:
        blocks.append(Image(trained, f"{res.task}: score against training step per trial (stopped as hopeless: "
                                     "dashed, ending in a cross)"))
    blocks += significance_blocks(res, fig_dir / f"{base}-significance.png")
    blocks.append(Table(f"All {len(t)} trials (infeasible ones are never on the front)", tables.trials(res),
                        collapsed=True))
    return Section(f"Task {res.task}", tuple(blocks))


def significance_blocks(res: TaskResults, path: Path) -> list:
    """The heat map of the chosen trial's model if it was scored, else of the first scored trial."""
    if not res.significance:
        return []
    chosen = res.chosen()
    pick = None if chosen is None else int(chosen["trial"])
    number = pick if pick in res.significance else min(res.significance)
    which = "the chosen recipe's model" if number == pick else f"trial {number}'s model"
    sig = significance.Significance.from_dict(res.significance[number])
    return [Image(significance.plot(sig, path, f"{res.task}: significance of {which}"),
                  f"{res.task}: significance heat map"),
            Table(f"Significance per layer ({which}; {len(res.significance)} scored trial(s) in the study)",
                  significance.table(sig))]


def significance_section(scored: list[tuple[Path, significance.Significance]], fig_dir: Path) -> Section:
    blocks: list = ["Loss increase on held-aside training rows when one component is removed (AxFormer); "
                    "read from the stored significance.json, not recomputed."]
    for j, (p, sig) in enumerate(scored):
        name = p.name if p.is_dir() else p.parent.name
        blocks.append(Image(significance.plot(sig, fig_dir / f"significance-{j:02d}.png", name), f"significance of {name}"))
        blocks.append(Table(f"Significance per layer ({p})", significance.table(sig)))
    return Section("Significance scores", tuple(blocks))


def fixed_section(title: str, frame: pd.DataFrame, shown: pd.DataFrame, chart, fig_dir: Path, stem: str) -> Section:
    blocks: list = []
    for j, (source, df) in enumerate(frame.groupby("source", sort=True)):
        blocks.append(f"From {Path(source).name}" + (f" (task {df['task'].iloc[0]})" if df["task"].iloc[0] else "") + ".")
        blocks.append(Image(chart(df, fig_dir / f"{stem}-{j:02d}.png"), f"{title} chart"))
    blocks.append(Table(title, shown))
    return Section(title, tuple(blocks))


def build(inp: Inputs) -> Document:
    results = load_run(inp.run_dir, inp.storage, inp.study)
    # every input is read before anything is drawn, so bad input stops the report at once
    t2 = paper_tables.read_table2(paper_tables.find_files(inp.table2, "table2.json", inp.run_dir))
    ab = paper_tables.read_ablation(paper_tables.find_files(inp.ablation, "ablation.json", inp.run_dir))
    scored = [(Path(p), significance.read(p)) for p in inp.significance]
    out = Path(inp.out_dir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.glob("*.png"):  # figures of a previous report of other tasks
        old.unlink()
    trials = pd.concat([r.trials for r in results], ignore_index=True)
    trials.to_csv(out / "trials.csv", index=False, float_format=FLOAT_FORMAT)
    best = tables.best_recipes(results, inp.usd_per_hour)
    best.to_csv(out / "best_recipes.csv", index=False)
    sections = [Section("Best recipe per task", (
        Table("Chosen recipe per task (deployment config, else the fastest feasible trial)", best),
        f"USD per 100M queries assumes {inp.usd_per_hour:.4g} USD per hour for the whole measured machine"
        + (" (an example price, about a small 2-vCPU cloud VM; pass --usd-per-hour)."
           if inp.usd_per_hour == EXAMPLE_USD_PER_HOUR else " (--usd-per-hour)."),
        "Recipe: L = layers kept (g: greedy layer drop, s: one-shot significance drop), H = attention heads kept per layer, F = FFN neurons "
        "kept per layer; =T is the teacher's own size.",
        "Energy per 1,000 queries: 'measured' comes from RAPL counters; 'estimated' is CPU time × TDP per core."))]
    sections += [task_section(i, r, fig_dir) for i, r in enumerate(results)]
    if not t2.empty:
        t2.to_csv(out / "table2.csv", index=False, float_format=FLOAT_FORMAT)
        sections.append(fixed_section("Table 2: instances × threads", t2, tables.table2(t2), charts.table2,
                                      fig_dir, "table2"))
    if not ab.empty:
        ab.to_csv(out / "ablation.csv", index=False, float_format=FLOAT_FORMAT)
        sections.append(fixed_section("Table 3: cumulative speed-up ladder", ab, tables.ablation(ab),
                                      charts.ablation, fig_dir, "ablation"))
    if scored:
        sections.append(significance_section(scored, fig_dir))
    where = inp.storage or f"{inp.run_dir}/study.db"
    intro = (f"Regenerated from stored results only ({redact(where)}); nothing was re-run. "
             "Speeds are examples per second on the machine named in each section.",)
    return Document("FastFormers auto-tune report", intro, tuple(sections))


def write(inp: Inputs) -> dict[str, Path]:
    doc = build(inp)
    out = Path(inp.out_dir)
    paths = {"markdown": markdown.write(doc, out), "html": html.write(doc, out),
             "trials_csv": out / "trials.csv", "best_csv": out / "best_recipes.csv"}
    log.info("report written to %s (%d sections)", paths["html"], len(doc.sections))
    return paths
