"""The fixed studies of FastFormers (Kim & Hassan 2020).

Table 2: every instances × threads layout the physical cores allow, against one process with
the libraries' default threads ("no thread control").
Table 3: the ablation ladder, one optimisation added per step, with step and cumulative
speed-ups, accuracy and USD per 100M queries.

Every run leaves ``runs/<label>/config.json`` and ``report.json`` (optimum-benchmark style),
and the study writes ``<name>.json`` and ``<name>.md`` into its output directory.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from autotune.cost import usd_per_100m_queries
from autotune.measure import Measurement, measure
from autotune.runtime import Runtime
from compress.tasks import Example, TaskSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyInput:
    """What every run of a study shares."""

    examples: Sequence[Example]
    spec: TaskSpec
    cache_dir: Path
    out_dir: Path
    repeats: int = 3
    energy: str = "auto"
    lock: bool = True  # hold the machine-wide timing lock while measuring
    notes: tuple[str, ...] = ()


def layouts(physical_cores: int) -> list[tuple[int, int]]:
    """Every (instances, threads) with instances × threads = the physical core count."""
    return [(n, physical_cores // n) for n in range(1, physical_cores + 1) if physical_cores % n == 0]


def limit_rows(rows: Sequence[Example], limit: int | None) -> tuple[Example, ...]:
    """The first ``limit`` rows, extended so that no group (COPA record, MultiRC question) is cut."""
    if not limit or limit >= len(rows):
        return tuple(rows)
    end = limit
    while end < len(rows) and rows[end].group is not None and rows[end].group == rows[end - 1].group:
        end += 1
    return tuple(rows[:end])


def run_one(inp: StudyInput, model_dir: Path, runtime: Runtime, label: str) -> Measurement:
    """Measure and leave this run's config.json and report.json under ``out_dir/runs/<label>``."""
    from autotune.timing_lock import timing_lock

    where = inp.out_dir / "runs" / label.replace(" ", "_").replace("/", "-")
    where.mkdir(parents=True, exist_ok=True)
    config = {"label": label, "model_dir": str(model_dir), "task": inp.spec.name, "examples": len(inp.examples),
              "runtime": runtime.to_dict(), "repeats": inp.repeats, "energy": inp.energy}
    (where / "config.json").write_text(json.dumps(config, indent=2))
    log.info("measuring %s: %s", label, runtime.label)
    with timing_lock() if inp.lock else contextlib.nullcontext():
        m = measure(model_dir, inp.examples, inp.spec, runtime, inp.cache_dir, repeats=inp.repeats, energy=inp.energy)
    (where / "report.json").write_text(m.to_json())
    log.info("%s: %.1f ex/s, %s %s", label, m.throughput, inp.spec.primary_metric, m.metrics.get(inp.spec.primary_metric))
    return m


def _row(label: str, m: Measurement, metric: str) -> dict[str, Any]:
    return {"label": label, "instances": m.runtime.instances, "threads": m.runtime.threads,
            "throughput": m.throughput, "accuracy": m.metrics.get(metric), "metrics": m.metrics,
            "latency_ms": m.latency_ms, "peak_rss_mb": list(m.peak_rss_mb), "energy_per_query_j": m.energy_per_query_j,
            "energy_method": m.energy_method, "energy_measured": m.energy_measured, "measurement": m.to_dict()}


def table2(inp: StudyInput, model_dir: Path, engine: str = "ort-int8", batch_size: int = 1,
           padding: str = "dynamic", physical_cores: int | None = None) -> dict[str, Any]:
    """Table 2: instances × threads layouts vs the no-thread-control baseline."""
    from autotune.hardware import detect

    cores = physical_cores or detect().physical_cores
    metric = inp.spec.primary_metric
    base_rt = Runtime(engine, padding, batch_size, instances=1, threads=None)
    base = run_one(inp, model_dir, base_rt, "baseline no thread control")
    rows = []
    for n, t in layouts(cores):
        m = run_one(inp, model_dir, replace(base_rt, instances=n, threads=t), f"{n}x{t}")
        rows.append(_row(f"{n}×{t}", m, metric) | {"speedup": m.throughput / base.throughput})
    result = {
        "study": "table2", "task": inp.spec.name, "metric": metric, "model_dir": str(model_dir), "engine": engine,
        "batch_size": batch_size, "padding": padding, "physical_cores": cores, "examples": len(inp.examples),
        "notes": list(inp.notes),
        "baseline": _row("no thread control", base, metric) | {"speedup": 1.0},
        "rows": rows,
    }
    frame = pd.DataFrame([
        {"layout": r["label"], "instances": r["instances"], "threads": "default" if r["threads"] is None else r["threads"],
         "examples/s": r["throughput"], "speed-up": r["speedup"], metric: r["accuracy"],
         "p99 ms": r["latency_ms"].get("p99")}
        for r in [result["baseline"]] + rows])
    _write(inp.out_dir, "table2", result, _title(result, "Table 2: instances × threads"), frame)
    return result


def ablation(inp: StudyInput, teacher: Path, student: Path, pruned: Path | None,
             usd_per_hour: float | None = None, physical_cores: int | None = None,
             pick: tuple[Path, Runtime] | None = None) -> dict[str, Any]:
    """Table 3: baseline → dynamic length → distillation → int8 + graph opt → multi-instance → pruning.

    With ``pick`` (a sweep's chosen model and runtime) two more rows are measured in the same
    run: the pick itself, and the teacher as ORT int8 under the pick's very runtime, so the
    pick's gain over the baseline and over the int8 teacher are both same-run ratios.
    """
    from autotune.hardware import detect

    cores = physical_cores or detect().physical_cores
    metric = inp.spec.primary_metric
    base = Runtime("torch-fp32", "fixed", 1, instances=1, threads=None)
    dyn = replace(base, padding="dynamic")
    ort = replace(dyn, engine="ort-int8")
    ladder: list[tuple[str, str, Path, Runtime]] = [
        ("baseline", "PyTorch fp32, padded to the task's max length, batch 1, library threads", teacher, base),
        ("+ dynamic sequence length", "length-sorted batches padded to their longest row", teacher, dyn),
        ("+ distillation", "the distilled student", student, dyn),
        ("+ int8 + graph optimisation", "onnxruntime fused graph, dynamic int8 (per-channel)", student, ort),
    ]
    steps: list[dict[str, Any]] = []
    for name, desc, model, rt in ladder:
        steps.append({"name": name, "description": desc, "model_dir": str(model),
                      **_row(name, run_one(inp, model, rt, name), metric)})
    best_m, best_rt = None, None
    for n, t in layouts(cores):
        rt = replace(ort, instances=n, threads=t)
        m = run_one(inp, student, rt, f"multi-instance {n}x{t}")
        if best_m is None or m.throughput > best_m.throughput:
            best_m, best_rt = m, rt
    steps.append({"name": "+ multi-instance", "model_dir": str(student),
                  "description": f"best of {', '.join(f'{n}×{t}' for n, t in layouts(cores))}: "
                                 f"{best_rt.instances}×{best_rt.threads}, each pinned to its own cores",
                  **_row("+ multi-instance", best_m, metric)})
    if pruned is not None:
        steps.append({"name": "+ pruning", "description": "heads/FFN pruned student, same runtime",
                      "model_dir": str(pruned), **_row("+ pruning", run_one(inp, pruned, best_rt, "+ pruning"), metric)})
    if pick is not None:
        pick_dir, pick_rt = pick
        steps.append({"name": "sweep pick", "description": f"the sweep's chosen recipe, {pick_rt.label}",
                      "model_dir": str(pick_dir), **_row("sweep pick", run_one(inp, pick_dir, pick_rt, "sweep pick"), metric)})
        ref_rt = replace(pick_rt, engine="ort-int8")
        steps.append({"name": "reference: teacher ORT int8", "description": f"the teacher, {ref_rt.label}",
                      "model_dir": str(teacher), "reference": True,
                      **_row("reference: teacher ORT int8", run_one(inp, teacher, ref_rt, "teacher ort-int8 pick runtime"), metric)})
    for i, s in enumerate(steps):
        s["step"] = i
        s["speedup"] = s["throughput"] / steps[0]["throughput"]
        s["step_gain"] = s["throughput"] / steps[i - 1]["throughput"] if i and not s.get("reference") else None
        if i == 0:
            s["step_gain"] = 1.0
        s["usd_per_100m"] = usd_per_100m_queries(s["throughput"], usd_per_hour) if usd_per_hour is not None else None
    result = {"study": "ablation", "task": inp.spec.name, "metric": metric, "usd_per_hour": usd_per_hour,
              "physical_cores": cores, "examples": len(inp.examples), "notes": list(inp.notes), "steps": steps}
    if pick is not None:
        result["pick"] = {"speedup_over_baseline": steps[-2]["throughput"] / steps[0]["throughput"],
                          "speedup_over_teacher_int8": steps[-2]["throughput"] / steps[-1]["throughput"],
                          "accuracy": steps[-2]["accuracy"], "teacher_accuracy": steps[0]["accuracy"]}
    frame = pd.DataFrame([
        {"step": s["name"], "examples/s": s["throughput"], "step ×": s["step_gain"], "cumulative ×": s["speedup"],
         metric: s["accuracy"], "USD / 100M queries": s["usd_per_100m"]} for s in steps])
    title = _title(result, "Table 3: ablation")
    if pick is not None:
        p = result["pick"]
        title += (f"\n\nSweep pick: {p['speedup_over_baseline']:.1f}× the baseline and "
                  f"{p['speedup_over_teacher_int8']:.2f}× the ORT int8 teacher under the same runtime; "
                  f"{metric} {p['accuracy']:.4f} vs teacher {p['teacher_accuracy']:.4f} (same run, same rows).")
    _write(inp.out_dir, "ablation", result, title, frame)
    return result


def _title(result: dict, what: str) -> str:
    lines = [f"# {what} — {result['task']}", "",
             f"{result['examples']} rows, {result['physical_cores']} physical cores. "
             "Speed-ups are throughput ratios of medians of repeated runs."]
    lines += [f"Note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table (no tabulate dependency); floats to 3 significant decimals."""
    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "n/a"
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    cols = list(frame.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(out)


def _write(out_dir: Path, name: str, result: dict, title: str, frame: pd.DataFrame) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2))
    (out_dir / f"{name}.md").write_text(f"{title}\n\n{markdown_table(frame)}\n")
    log.info("wrote %s and %s", out_dir / f"{name}.json", out_dir / f"{name}.md")
