"""Deployment configs: the best recipe of a task, keyed by the hardware it was measured on.

A config is what a team ships: which model file, which engine, how many instances of
how many threads pinned to which cores, and the numbers that justify it.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from autotune.retime import Retimed, rounds_text
from autotune.trial_record import TrialRecord
from compress.cache import read_meta
from compress.errors import UserInputError
from compress.readers import read_json_object

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployConfig:
    task: str
    metric: str
    recipe: dict[str, Any]
    recipe_key: str
    model_dir: str
    runtime: dict[str, Any]
    core_sets: list[list[int] | None]  # None: an instance left unpinned
    throughput: float
    latency_p50_ms: float
    latency_p99_ms: float
    dev_score: float
    heldout_score: float
    baseline_throughput: float
    teacher_score: float
    hardware: dict[str, Any]
    hardware_id: str
    study: str
    storage: str
    trial: int
    # the held-out confirmation (autotune/confirm.py); None in configs written without it
    teacher_heldout_score: float | None = None
    heldout_floor: float | None = None
    heldout_confirmed: bool | None = None
    heldout_checks: list[dict[str, Any]] = field(default_factory=list)
    # 95% intervals (compress/intervals.py Interval dicts) and the trivial baseline on the held-out rows
    dev_interval: dict[str, Any] | None = None  # of dev_score, over the timed predictions
    heldout_interval: dict[str, Any] | None = None
    teacher_heldout_interval: dict[str, Any] | None = None
    pick_minus_teacher: dict[str, Any] | None = None  # paired, same held-out rows
    trivial_heldout: dict[str, Any] | None = None  # {"kind", "metrics"}
    beats_trivial: bool | None = None  # False only when shipped under --allow-weak-teacher
    # where the model was trained (CPU, library versions; compress/provenance.py built_with): the same
    # recipe trained elsewhere is not bit-identical, so rebuilding it there needs its own check
    built_with: dict[str, str] | None = None
    notes: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    # the study's stored ORT-int8 teacher reference: timed at batch 1, one instance on every physical
    # core (its runtime below), not at the pick's runtime, so the stored ratio over it mixes the batch in
    int8_teacher_throughput: float | None = None
    int8_teacher_runtime: dict[str, Any] | None = None
    # the pick, the baseline and the int8 teacher at the pick's runtime timed beside each other at the
    # end of the sweep (autotune/retime.py); None in configs written before it
    retimed: Retimed | None = None

    @property
    def stored_speedup_over_baseline(self) -> float:
        """The trial's stored throughput over the stored baseline: two timings, often hours apart."""
        return self.throughput / self.baseline_throughput if self.baseline_throughput else float("nan")

    @property
    def stored_speedup_over_int8_teacher(self) -> float | None:
        """Over the stored batch-1 int8 reference (see int8_teacher_runtime)."""
        return self.throughput / self.int8_teacher_throughput if self.int8_teacher_throughput else None

    @property
    def speedup_over_baseline(self) -> float:
        """The re-timed median where there is one, else the stored figure."""
        return self.retimed.over_baseline if self.retimed else self.stored_speedup_over_baseline

    @property
    def speedup_over_int8_teacher(self) -> float | None:
        """Re-timed at the pick's runtime only: the stored figure is another quantity (batch 1)."""
        return self.retimed.over_int8_teacher if self.retimed else None

    @property
    def speedup_source(self) -> str:
        if self.retimed:
            return f"re-timed beside the pick ({rounds_text(self.retimed.rounds)})"
        return "stored trial figures"

    def describe_speedup(self) -> str:
        """One line for whatever prints the speed-up: the re-timed figures when present."""
        if self.retimed:
            (lo, hi), (ilo, ihi) = self.retimed.over_baseline_range, self.retimed.over_int8_teacher_range
            return (f"{self.speedup_over_baseline:.1f}x the out-of-the-box baseline ({lo:.1f}-{hi:.1f}), "
                    f"{self.speedup_over_int8_teacher:.2f}x the ORT-int8 teacher at the same runtime "
                    f"({ilo:.2f}-{ihi:.2f}), {self.speedup_source}")
        int8 = self.stored_speedup_over_int8_teacher
        return (f"{self.speedup_over_baseline:.1f}x the out-of-the-box baseline"
                + (f", {int8:.2f}x the batch-1 ORT-int8 teacher" if int8 is not None else "")
                + f" ({self.speedup_source})")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["retimed"] = self.retimed.to_dict() if self.retimed else None
        return {**d, **{k: getattr(self, k) for k in DERIVED}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DeployConfig":
        """Derived keys (DERIVED) are recomputed, never read; old configs lack the newer fields."""
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if d.get("retimed") is not None:
            try:
                d["retimed"] = Retimed.from_dict(d["retimed"])
            except (KeyError, ValueError) as exc:
                raise TypeError(f"retimed: {exc!r}") from None
        return cls(**d)


# written by to_dict for readers of the JSON, derived from the fields above
DERIVED = ("speedup_over_baseline", "stored_speedup_over_baseline", "speedup_over_int8_teacher",
           "stored_speedup_over_int8_teacher", "speedup_source")


def deploy_config(task, trial, heldout: dict, refs: dict, hardware, study_name: str, storage: str,
                  metric: str, confirmation: dict[str, Any] | None = None,
                  retimed: Retimed | None = None) -> DeployConfig:
    """The config of a stored trial (an Optuna FrozenTrial, read as its TrialRecord)."""
    r = TrialRecord.from_trial(trial)
    m = r.measurement
    int8 = refs.get("teacher_ort_int8") or {}
    return DeployConfig(
        task=task,
        metric=metric,
        recipe=r.recipe.to_dict(),
        recipe_key=r.recipe_key,
        model_dir=r.model_dir,
        runtime=r.runtime.to_dict(),
        core_sets=[list(c) if c is not None else None for c in m.core_sets],
        throughput=float(m.throughput),
        latency_p50_ms=float(m.latency_ms["p50"]),
        latency_p99_ms=float(m.latency_ms["p99"]),
        dev_score=float(m.metrics[metric]),
        heldout_score=float(heldout["metrics"][metric]),
        baseline_throughput=float(refs["baseline"]["throughput"]),
        teacher_score=float(refs["teacher_metrics"][metric]),
        hardware=hardware.fingerprint(),
        hardware_id=hardware.hash,
        study=study_name,
        storage=storage,
        trial=r.number,
        built_with=_built_with(r.model_dir),
        notes=list(refs.get("notes", [])),
        dev_interval=(m.intervals or {}).get(metric),
        int8_teacher_throughput=float(int8["throughput"]) if int8.get("throughput") else None,
        int8_teacher_runtime=int8.get("runtime"),
        retimed=retimed,
        **(confirmation or {}),
    )


def _built_with(model_dir: str) -> dict[str, str] | None:
    try:
        return read_meta(Path(model_dir)).get("built_with")
    except (OSError, json.JSONDecodeError):
        return None


def find_configs(paths: list[Path]) -> list[DeployConfig]:
    """Every deployment config in ``paths`` (config files, or run dirs holding deploy/<task>.json);
    a path that holds none is named, since a typo would otherwise read as "no config for the task"."""
    out = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise UserInputError(f"--results {p}: no such file or folder")
        files = [p] if p.is_file() else sorted(p.rglob("deploy/*.json"))
        if not files:
            raise UserInputError(f"--results {p}: no deployment configs in it (a sweep writes RUN_DIR/deploy/TASK.json)")
        for f in files:
            try:
                out.append(DeployConfig.from_dict(read_json_object(f)))
            except TypeError as exc:
                raise UserInputError(f"{f}: not a deployment config ({exc})") from None
    return out


def pick(configs: list[DeployConfig], task: str, hardware_id: str) -> DeployConfig:
    """The fastest config of ``task`` measured on this very hardware; others are never guessed at."""
    mine = [c for c in configs if c.task == task]
    if not mine:
        found = ", ".join(sorted({c.task for c in configs})) or "none"
        raise UserInputError(f"--task {task}: no deployment config for it in --results (tasks found: {found})")
    here = [c for c in mine if c.hardware_id == hardware_id]
    if not here:
        seen = ", ".join(sorted({c.hardware_id for c in mine}))
        raise UserInputError(f"task {task}: no config measured on this hardware ({hardware_id}); found {seen}; "
                             "run the sweep here")
    return max(here, key=lambda c: c.throughput)
