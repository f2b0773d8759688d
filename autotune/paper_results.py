"""Results of the paper's fixed studies (FastFormers Table 2: instances × threads; Table 3: the
ablation ladder) as typed records, written and read by the same classes.

The JSON keys are those the studies have always written (``table2.json``: ``baseline`` and ``rows``;
``ablation.json``: ``steps`` and ``pick``), so results in benchmarks/results/ still load.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from autotune.measure import Measurement
from compress.errors import UserInputError
from compress.readers import read_json_object


@dataclass(frozen=True)
class StudyRow:
    """One timed configuration: a Table 2 layout or an ablation step."""
    label: str
    throughput: float
    instances: int | None = None
    threads: int | None = None  # None: the libraries' default threads (no thread control)
    accuracy: float | None = None  # the study's metric
    metrics: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: tuple[float, ...] = ()
    energy_per_query_j: float | None = None
    energy_method: str | None = None
    energy_measured: bool | None = None
    measurement: Measurement | None = None
    speedup: float | None = None  # over the study's baseline (Table 2) or first step (ablation)
    # ablation steps
    name: str | None = None
    description: str = ""
    model_dir: str | None = None
    step: int | None = None
    step_gain: float | None = None  # over the previous non-reference step
    reference: bool = False  # shown beside the ladder, not a step of it
    usd_per_100m: float | None = None

    @classmethod
    def of(cls, label: str, m: Measurement, metric: str, **more: Any) -> "StudyRow":
        return cls(label=label, throughput=m.throughput, instances=m.runtime.instances, threads=m.runtime.threads,
                   accuracy=m.metrics.get(metric), metrics=dict(m.metrics), latency_ms=dict(m.latency_ms),
                   peak_rss_mb=tuple(m.peak_rss_mb), energy_per_query_j=m.energy_per_query_j,
                   energy_method=m.energy_method, energy_measured=m.energy_measured, measurement=m, **more)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["peak_rss_mb"] = list(self.peak_rss_mb)
        d["measurement"] = self.measurement.to_dict() if self.measurement else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> "StudyRow":
        if not isinstance(d, dict):
            raise UserInputError(f"{where}: a row must be an object, got {type(d).__name__}")
        tp = d.get("throughput")
        if isinstance(tp, bool) or not isinstance(tp, (int, float)) or not tp > 0:
            raise UserInputError(f"{where}: a row without a positive throughput ({json.dumps(d)[:80]})")
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        kw["label"] = str(d.get("label") or d.get("name") or "")
        kw["peak_rss_mb"] = tuple(d.get("peak_rss_mb") or ())
        kw["measurement"] = Measurement.from_dict(d["measurement"]) if d.get("measurement") else None
        return cls(**kw)


def _read(path: Path, study: str, keys: tuple[str, ...]) -> dict[str, Any]:
    d = read_json_object(path, study)
    missing = [k for k in keys if k not in d]
    if missing:
        raise UserInputError(f"{path}: not a {study} result (no {missing[0]!r})")
    return d


def _write(obj, out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(obj.to_dict(), indent=2))
    return path


@dataclass(frozen=True)
class Table2Result:
    task: str
    metric: str
    baseline: StudyRow  # one process, no thread control
    rows: tuple[StudyRow, ...]  # every instances × threads layout of the physical cores
    model_dir: str = ""
    engine: str = "ort-int8"
    batch_size: int = 1
    padding: str = "dynamic"
    physical_cores: int | None = None
    examples: int | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self) | {"study": "table2", "notes": list(self.notes)}
        return d | {"baseline": self.baseline.to_dict(), "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "table2") -> "Table2Result":
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        kw["baseline"] = StudyRow.from_dict(d["baseline"], where)
        kw["rows"] = tuple(StudyRow.from_dict(r, where) for r in d["rows"])
        kw["notes"] = tuple(d.get("notes") or ())
        return cls(**kw)

    def write(self, out_dir: Path) -> Path:
        return _write(self, Path(out_dir), "table2")

    @classmethod
    def read(cls, path: Path) -> "Table2Result":
        return cls.from_dict(_read(Path(path), "table2", ("task", "baseline", "rows")), str(path))


@dataclass(frozen=True)
class PickRatios:
    """A sweep's pick against the baseline and the ORT-int8 teacher at its runtime, same run."""
    speedup_over_baseline: float
    speedup_over_teacher_int8: float
    accuracy: float | None
    teacher_accuracy: float | None


@dataclass(frozen=True)
class AblationResult:
    task: str
    metric: str
    steps: tuple[StudyRow, ...]
    usd_per_hour: float | None = None
    physical_cores: int | None = None
    examples: int | None = None
    notes: tuple[str, ...] = ()
    pick: PickRatios | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self) | {"study": "ablation", "notes": list(self.notes)}
        return d | {"steps": [s.to_dict() for s in self.steps], "pick": asdict(self.pick) if self.pick else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "ablation") -> "AblationResult":
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        kw["steps"] = tuple(StudyRow.from_dict(s, where) for s in d["steps"])
        kw["notes"] = tuple(d.get("notes") or ())
        kw["pick"] = PickRatios(**d["pick"]) if d.get("pick") else None
        return cls(**kw)

    def write(self, out_dir: Path) -> Path:
        return _write(self, Path(out_dir), "ablation")

    @classmethod
    def read(cls, path: Path) -> "AblationResult":
        return cls.from_dict(_read(Path(path), "ablation", ("task", "steps")), str(path))
