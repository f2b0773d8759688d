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

from compress.cache import read_meta
from compress.errors import UserInputError

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

    @property
    def speedup(self) -> float:
        return self.throughput / self.baseline_throughput if self.baseline_throughput else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speedup_over_baseline": self.speedup}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DeployConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def deploy_config(task, trial, heldout: dict, refs: dict, hardware, study_name: str, storage: str,
                  metric: str, confirmation: dict[str, Any] | None = None) -> DeployConfig:
    m = trial.user_attrs["measurement"]
    return DeployConfig(
        task=task,
        metric=metric,
        recipe=trial.user_attrs["recipe"],
        recipe_key=trial.user_attrs["recipe_key"],
        model_dir=trial.user_attrs["model_dir"],
        runtime=trial.user_attrs["runtime"],
        core_sets=[list(c) if c is not None else None for c in m.get("core_sets", [])],
        throughput=float(m["throughput"]),
        latency_p50_ms=float(m["latency_ms"]["p50"]),
        latency_p99_ms=float(m["latency_ms"]["p99"]),
        dev_score=float(m["metrics"][metric]),
        heldout_score=float(heldout["metrics"][metric]),
        baseline_throughput=float(refs["baseline"]["throughput"]),
        teacher_score=float(refs["teacher_metrics"][metric]),
        hardware=hardware.fingerprint(),
        hardware_id=hardware.hash,
        study=study_name,
        storage=storage,
        trial=trial.number,
        built_with=_built_with(trial.user_attrs["model_dir"]),
        notes=list(refs.get("notes", [])),
        dev_interval=(m.get("intervals") or {}).get(metric),
        **(confirmation or {}),
    )


def _built_with(model_dir: str) -> dict[str, str] | None:
    try:
        return read_meta(Path(model_dir)).get("built_with")
    except (OSError, json.JSONDecodeError):
        return None


def find_configs(paths: list[Path]) -> list[DeployConfig]:
    out = []
    for p in paths:
        p = Path(p)
        files = [p] if p.is_file() else sorted(p.rglob("deploy/*.json"))
        for f in files:
            try:
                out.append(DeployConfig.from_dict(json.loads(f.read_text())))
            except (json.JSONDecodeError, TypeError) as exc:
                raise UserInputError(f"{f}: not a deployment config ({exc})") from None
    return out


def pick(configs: list[DeployConfig], task: str, hardware_id: str) -> DeployConfig:
    """The fastest config of ``task`` measured on this very hardware; others are never guessed at."""
    mine = [c for c in configs if c.task == task]
    if not mine:
        raise UserInputError(f"no deployment config for task {task!r} in the given results")
    here = [c for c in mine if c.hardware_id == hardware_id]
    if not here:
        seen = ", ".join(sorted({c.hardware_id for c in mine}))
        raise UserInputError(f"task {task}: no config measured on this hardware ({hardware_id}); found {seen}; "
                             "run the sweep here")
    return max(here, key=lambda c: c.throughput)
