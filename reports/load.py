"""Read what a sweep stored — the Optuna storage and the deployment configs — into frames.

Nothing here measures or builds: a report must be regenerable from stored results alone,
so every number in it can be traced to a trial or a JSON file.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from autotune.hopeless import Curve
from autotune.outcome import SweepOutcome
from autotune.storage import open_existing
from autotune.trial_record import TrialRecord
from compress.errors import UserInputError
from compress.readers import read_json  # a JSON file, or one line saying why it cannot be read
from reports.length import TIME_FORMAT

log = logging.getLogger(__name__)

# One row per trial; the CSV keeps these columns in this order.
TRIAL_COLUMNS = [
    "study", "task", "trial", "state", "status", "feasible", "accuracy", "accuracy_low", "accuracy_high",
    "throughput", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "engine", "padding", "batch_size",
    "instances", "threads", "student_layers", "route", "heads_kept", "ffn_kept", "recipe",
    "recipe_key", "energy_per_query_j", "energy_method", "energy_measured", "busy_before_pct", "constraints",
    "error", "finished", "timed", "started", "completed", "seconds", "saved_s",
]


@dataclass(frozen=True)
class TrialCurve:
    """One trial's record of one build step's training (a step shared by trials appears in each)."""

    trial: int
    state: str
    curve: Curve
    stopped_here: bool  # the trial was stopped as hopeless in this step


def stored_curves(study: optuna.Study) -> tuple[TrialCurve, ...]:
    out = []
    for t in study.get_trials(deepcopy=False):
        r = TrialRecord.from_trial(t)
        for i, c in enumerate(r.curves):
            last = i == len(r.curves) - 1
            out.append(TrialCurve(t.number, t.state.name, c, bool(r.pruned) and last))
    return tuple(out)


@dataclass(frozen=True)
class TaskResults:
    """One study: its settings, references, trials and (if written) deployment config."""

    study: str
    task: str
    metric: str
    floor: float | None
    floor_rule: str
    multi: bool
    references: dict[str, Any]
    trials: pd.DataFrame
    deploy: dict[str, Any] | None = None
    hardware: dict[str, Any] = field(default_factory=dict)
    significance: dict[int, dict[str, Any]] = field(default_factory=dict)  # trial -> stored scores
    curves: tuple[TrialCurve, ...] = ()  # the training steps of every trial's build, as recorded
    outcome: SweepOutcome | None = None  # <run_dir>/outcome.json: trivial baseline, intervals, refusal

    def chosen(self) -> pd.Series | None:
        """The deployed trial if a config was written, else the fastest feasible one (as the sweep picks)."""
        t = self.trials
        if self.deploy and "trial" in self.deploy:
            hit = t[t["trial"] == self.deploy["trial"]]
            if not hit.empty:
                return hit.iloc[0]
        feas = t[t["status"] == "feasible"].dropna(subset=["throughput"])
        if feas.empty:
            return None
        return feas.sort_values(["throughput", "accuracy", "trial"], ascending=[False, False, True],
                                kind="stable").iloc[0]


def default_storage(run_dir: Path) -> str:
    """The run dir's study.db, else the storage its sweep_config.json names (a sweep run with --storage)."""
    db = Path(run_dir) / "study.db"
    if db.is_file():
        return f"sqlite:///{db.resolve()}"
    config = Path(run_dir) / "sweep_config.json"
    url = read_json(config, "--run").get("storage") if config.is_file() else None
    if url:
        return url
    raise UserInputError(f"--run {run_dir}: no study.db in it (pass --storage URL if the study lives elsewhere)")


def _layout(runtime: dict) -> tuple[Any, Any]:
    return runtime.get("instances"), runtime.get("threads")


def describe_recipe(recipe: dict | None) -> str:
    """layers/heads/FFN in a few characters; ``=T`` means the teacher's own size."""
    if not recipe:
        return ""
    layers = recipe.get("student_layers") or recipe.get("approx_layers")
    depth = f"L{layers}" if layers else "L=T"
    if recipe.get("approx") == "significance-drop":
        depth += "s"
    elif layers and recipe.get("route") == "greedy":
        depth += "g"
    kept = recipe.get("heads_kept") or recipe.get("approx_heads")
    heads = f"H{kept}{'s' if recipe.get('approx_heads') else ''}" if kept else "H=T"
    ffn = f"F{recipe['ffn_kept']}" if recipe.get("ffn_kept") else "F=T"
    return f"{depth} {heads} {ffn}"


def trial_row(study_name: str, task: str, metric: str, t: FrozenTrial) -> dict[str, Any]:
    r = TrialRecord.from_trial(t)
    m = r.measurement
    runtime = r.runtime or (m.runtime if m else None)
    # a queued trial (an anchor, a runtime sibling, a stopped trial's rerun) has only the point it will run
    waiting = t.state == TrialState.WAITING
    queued = t.system_attrs.get("fixed_params", {}) if waiting else {}
    rt = runtime.to_dict() if runtime else {"engine": queued.get("engine"), "batch_size": queued.get("batch_size")}
    rec = r.recipe.to_dict() if r.recipe else queued
    lat = m.latency_ms if m else {}
    complete = t.state == TrialState.COMPLETE
    acc = m.metrics.get(metric) if m else None
    if acc is None and complete and t.values and len(t.values) == 2:
        acc = t.values[0]
    tput = m.throughput if m else t.values[-1] if complete and t.values else None
    instances, threads = _layout(rt)
    ci = ((m.intervals if m else None) or {}).get(metric) or {}
    status = ("feasible" if r.is_feasible else "infeasible") if complete else t.state.name.lower()
    return {
        "study": study_name, "task": task, "trial": t.number, "state": t.state.name, "status": status,
        "feasible": r.is_feasible, "accuracy": acc, "accuracy_low": ci.get("low"),
        "accuracy_high": ci.get("high"), "throughput": tput,
        "latency_p50_ms": lat.get("p50"), "latency_p90_ms": lat.get("p90"), "latency_p99_ms": lat.get("p99"),
        "engine": rt.get("engine"), "padding": rt.get("padding"), "batch_size": rt.get("batch_size"),
        "instances": instances, "threads": threads, "student_layers": rec.get("student_layers") or rec.get("approx_layers"),
        "route": "significance" if rec.get("approx") == "significance-drop" else rec.get("route"),
        "heads_kept": rec.get("heads_kept") or rec.get("approx_heads"), "ffn_kept": rec.get("ffn_kept"),
        "recipe": describe_recipe(rec), "recipe_key": r.recipe_key if r.recipe_key is not None else "",
        "energy_per_query_j": m.energy_per_query_j if m else None, "energy_method": m.energy_method if m else "",
        "energy_measured": m.energy_measured if m else None, "busy_before_pct": m.busy_before_pct if m else None,
        "constraints": json.dumps(list(r.constraints)), "error": r.reason or (_queued_reason(r) if waiting else None),
        "finished": r.used_budget, "timed": r.spent_time,
        "started": _when(t.datetime_start), "completed": _when(t.datetime_complete),
        "seconds": (t.datetime_complete - t.datetime_start).total_seconds()
        if t.datetime_start and t.datetime_complete else None,
        "saved_s": r.saved_s,  # stopped as hopeless: its stopped step's untrained rest
    }


def _queued_reason(r: TrialRecord) -> str:
    """Why a queued trial has no result yet, so a morning report does not read it as lost."""
    why = f"trial {r.requeued_from}'s point, queued again" if r.requeued_from is not None else "queued"
    return f"{why}; not started: the next run of the study starts it"


def _when(moment) -> str | None:
    """Seconds precision, as Optuna stored it (the storing machine's local time)."""
    return moment.strftime(TIME_FORMAT) if moment else None


def trials_frame(study: optuna.Study, task: str, metric: str) -> pd.DataFrame:
    rows = [trial_row(study.study_name, task, metric, t) for t in study.get_trials(deepcopy=False)]
    df = pd.DataFrame(rows, columns=TRIAL_COLUMNS)
    return df.sort_values(["study", "trial"], kind="stable").reset_index(drop=True)


def stored_significance(study: optuna.Study) -> dict[int, dict[str, Any]]:
    """Significance scores per trial: the copy the sweep stored with the trial, else the
    significance.json beside its model (an older sweep, or storage written by another tool)."""
    out: dict[int, dict[str, Any]] = {}
    for t in study.get_trials(deepcopy=False):
        r = TrialRecord.from_trial(t)
        sig = r.significance
        if sig is None and r.recipe is not None and r.recipe.approx != "none":
            f = Path(r.model_dir or "") / "significance.json"
            sig = read_json(f, "significance scores") if f.is_file() else None
        if isinstance(sig, dict):
            out[t.number] = sig
    return out


def find_deploy(run_dir: Path | None, task: str, study_name: str) -> dict[str, Any] | None:
    """The deployment config the sweep wrote for this study, if any (read, never recomputed)."""
    if run_dir is None:
        return None
    for f in sorted((Path(run_dir) / "deploy").glob("*.json")):
        d = read_json(f, "deployment config")
        if isinstance(d, dict) and d.get("task") == task and d.get("study", study_name) == study_name:
            return d
    return None


def load_study(storage, name: str, run_dir: Path | None) -> TaskResults:
    study = optuna.load_study(study_name=name, storage=storage)
    ua = study.user_attrs
    task = str(ua.get("task", name))
    metric = str(ua.get("metric", "accuracy"))
    floor = ua.get("floor")
    return TaskResults(
        study=name, task=task, metric=metric, floor=float(floor) if floor is not None else None,
        floor_rule=str(ua.get("floor_rule", "")), multi=len(study.directions) > 1,
        references=dict(ua.get("references") or {}), trials=trials_frame(study, task, metric),
        deploy=find_deploy(run_dir, task, name), hardware=dict(ua.get("hardware") or {}),
        significance=stored_significance(study), curves=stored_curves(study),
        outcome=_outcome(run_dir, task),
    )


def _outcome(run_dir: Path | None, task: str) -> SweepOutcome | None:
    found = SweepOutcome.read(run_dir) if run_dir is not None else None
    return found if found is not None and found.task == task else None


def load_run(run_dir: Path | None, storage_url: str | None = None, study: str | None = None) -> list[TaskResults]:
    """Every study in the storage (or just ``study``), sorted by task then name."""
    url = storage_url or default_storage(run_dir)
    storage = open_existing(url)
    names = sorted(optuna.study.get_all_study_names(storage))
    if study is not None:
        if study not in names:
            raise UserInputError(f"--study {study}: not in {url} (found: {', '.join(names) or 'none'})")
        names = [study]
    if not names:
        raise UserInputError(f"{url}: holds no study; run a sweep first")
    results = [load_study(storage, n, run_dir) for n in names]
    log.info("read %d stud%s from %s", len(results), "y" if len(results) == 1 else "ies", url)
    return sorted(results, key=lambda r: (r.task, r.study))
