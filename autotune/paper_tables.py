"""The fixed studies of FastFormers (Kim & Hassan 2020).

Table 2: every instances × threads layout the physical cores allow, against one process with
the libraries' default threads ("no thread control").
Table 3: the ablation ladder, one optimisation added per step, with step and cumulative
speed-ups, accuracy and USD per 100M queries.

Every run leaves ``runs/<label>/config.json`` and ``report.json`` (optimum-benchmark style),
and the study writes its typed result (autotune/paper_results.py) as ``<name>.json`` and a
``<name>.md`` table into its output directory.
"""
from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import pandas as pd

from autotune.cost import usd_per_100m_queries
from autotune.hardware import detect
from autotune.measure import Measurement, measure
from autotune.paper_results import AblationResult, PickRatios, StudyRow, Table2Result
from autotune.runtime import Runtime
from autotune.space import factorisations, most_cores
from autotune.timing_lock import timing_lock
from compress.tasks import Example, TaskSpec
from reports.markdown import grid

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
    """Every (instances, threads) with instances × threads = the physical core count: the sweep's
    whole-machine layouts (autotune/space.py)."""
    return list(most_cores(factorisations(physical_cores)))


def run_one(inp: StudyInput, model_dir: Path, runtime: Runtime, label: str) -> Measurement:
    """Measure and leave this run's config.json and report.json under ``out_dir/runs/<label>``."""
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


def table2(inp: StudyInput, model_dir: Path, engine: str = "ort-int8", batch_size: int = 1,
           padding: str = "dynamic", physical_cores: int | None = None) -> Table2Result:
    """Table 2: instances × threads layouts vs the no-thread-control baseline."""
    cores = physical_cores or detect().physical_cores
    metric = inp.spec.primary_metric
    base_rt = Runtime(engine, padding, batch_size, instances=1, threads=None)
    base = run_one(inp, model_dir, base_rt, "baseline no thread control")
    rows = []
    for n, t in layouts(cores):
        m = run_one(inp, model_dir, replace(base_rt, instances=n, threads=t), f"{n}x{t}")
        rows.append(StudyRow.of(f"{n}×{t}", m, metric, speedup=m.throughput / base.throughput))
    result = Table2Result(task=inp.spec.name, metric=metric, model_dir=str(model_dir), engine=engine,
                          batch_size=batch_size, padding=padding, physical_cores=cores, examples=len(inp.examples),
                          notes=tuple(inp.notes), baseline=StudyRow.of("no thread control", base, metric, speedup=1.0),
                          rows=tuple(rows))
    frame = pd.DataFrame([
        {"layout": r.label, "instances": r.instances, "threads": "default" if r.threads is None else r.threads,
         "examples/s": r.throughput, "speed-up": r.speedup, metric: r.accuracy, "p99 ms": r.latency_ms.get("p99")}
        for r in (result.baseline, *rows)])
    _write(inp.out_dir, result, _title(result, "Table 2: instances × threads"), frame)
    return result


def ablation(inp: StudyInput, teacher: Path, student: Path, pruned: Path | None,
             usd_per_hour: float | None = None, physical_cores: int | None = None,
             pick: tuple[Path, Runtime] | None = None) -> AblationResult:
    """Table 3: baseline → dynamic length → distillation → int8 + graph opt → multi-instance → pruning.

    With ``pick`` (a sweep's chosen model and runtime) two more rows are measured in the same
    run: the pick itself, and the teacher as ORT int8 under the pick's very runtime, so the
    pick's gain over the baseline and over the int8 teacher are both same-run ratios.
    """
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
    steps: list[tuple[str, str, Path, Measurement, bool]] = []  # name, description, model, measured, reference
    for name, desc, model, rt in ladder:
        steps.append((name, desc, model, run_one(inp, model, rt, name), False))
    best_m, best_rt = None, None
    for n, t in layouts(cores):
        rt = replace(ort, instances=n, threads=t)
        m = run_one(inp, student, rt, f"multi-instance {n}x{t}")
        if best_m is None or m.throughput > best_m.throughput:
            best_m, best_rt = m, rt
    steps.append(("+ multi-instance", f"best of {', '.join(f'{n}×{t}' for n, t in layouts(cores))}: "
                  f"{best_rt.instances}×{best_rt.threads}, each pinned to its own cores", student, best_m, False))
    if pruned is not None:
        steps.append(("+ pruning", "heads/FFN pruned student, same runtime", pruned,
                      run_one(inp, pruned, best_rt, "+ pruning"), False))
    if pick is not None:
        pick_dir, pick_rt = pick
        steps.append(("sweep pick", f"the sweep's chosen recipe, {pick_rt.label}", pick_dir,
                      run_one(inp, pick_dir, pick_rt, "sweep pick"), False))
        ref_rt = replace(pick_rt, engine="ort-int8")
        steps.append(("reference: teacher ORT int8", f"the teacher, {ref_rt.label}", teacher,
                      run_one(inp, teacher, ref_rt, "teacher ort-int8 pick runtime"), True))
    rows, prev = [], None
    for i, (name, desc, model, m, reference) in enumerate(steps):
        rows.append(StudyRow.of(
            name, m, metric, name=name, description=desc, model_dir=str(model), step=i, reference=reference,
            speedup=m.throughput / steps[0][3].throughput,
            step_gain=1.0 if i == 0 else None if reference else m.throughput / prev.throughput,
            usd_per_100m=usd_per_100m_queries(m.throughput, usd_per_hour) if usd_per_hour is not None else None))
        prev = m
    ratios = None
    if pick is not None:
        p, ref = rows[-2], rows[-1]
        ratios = PickRatios(p.throughput / rows[0].throughput, p.throughput / ref.throughput, p.accuracy,
                            rows[0].accuracy)
    result = AblationResult(task=inp.spec.name, metric=metric, usd_per_hour=usd_per_hour, physical_cores=cores,
                            examples=len(inp.examples), notes=tuple(inp.notes), steps=tuple(rows), pick=ratios)
    frame = pd.DataFrame([
        {"step": s.name, "examples/s": s.throughput, "step ×": s.step_gain, "cumulative ×": s.speedup,
         metric: s.accuracy, "USD / 100M queries": s.usd_per_100m} for s in rows])
    title = _title(result, "Table 3: ablation")
    if ratios is not None:
        title += (f"\n\nSweep pick: {ratios.speedup_over_baseline:.1f}× the baseline and "
                  f"{ratios.speedup_over_teacher_int8:.2f}× the ORT int8 teacher under the same runtime; "
                  f"{metric} {ratios.accuracy:.4f} vs teacher {ratios.teacher_accuracy:.4f} (same run, same rows).")
    _write(inp.out_dir, result, title, frame)
    return result


def _title(result: Table2Result | AblationResult, what: str) -> str:
    lines = [f"# {what} — {result.task}", "",
             f"{result.examples} rows, {result.physical_cores} physical cores. "
             "Speed-ups are throughput ratios of medians of repeated runs."]
    lines += [f"Note: {n}" for n in result.notes]
    return "\n".join(lines)


def _write(out_dir: Path, result: Table2Result | AblationResult, title: str, frame: pd.DataFrame) -> None:
    path = result.write(out_dir)
    md = path.with_suffix(".md")
    md.write_text(f"{title}\n\n{grid(frame, number_format=True)}\n")
    log.info("wrote %s and %s", path, md)
