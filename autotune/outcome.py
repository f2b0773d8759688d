"""What one sweep concluded for its task, as one typed record (``<run_dir>/outcome.json``).

Written on every ending: a shipped pick, a refusal (weak teacher, no feasible trial) or a pick
that failed its held-out check. The suite and the report read it; nothing re-derives it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from compress.errors import UserInputError
from compress.intervals import Interval

FILE = "outcome.json"


@dataclass(frozen=True)
class SweepOutcome:
    task: str
    metric: str
    run_dir: str
    trivial_kind: str | None = None  # e.g. "majority class (entailment)", "chance"
    trivial_search: Interval | None = None
    trivial_heldout: Interval | None = None
    teacher_search: Interval | None = None
    teacher_heldout: Interval | None = None
    # the teacher minus the trivial baseline on the held-out rows (paired), and the guard's verdict on it
    teacher_minus_trivial: Interval | None = None
    teacher_beats_trivial: bool | None = None
    pick_search: Interval | None = None
    pick_heldout: Interval | None = None
    # the pick minus the teacher on the held-out rows, paired bootstrap
    pick_minus_teacher: Interval | None = None
    pick_trial: int | None = None
    pick_throughput: float | None = None
    # re-timed beside the pick at the end of the sweep (autotune/retime.py: median over retimed_rounds
    # interleaved rounds; the int8 teacher at the pick's runtime); outcomes written before that hold
    # the stored figures here and retimed_rounds None
    speedup_vs_baseline: float | None = None
    speedup_vs_int8_teacher: float | None = None
    retimed_rounds: int | None = None
    # the trial's stored throughput over the study's stored references (the int8 one timed at batch 1)
    stored_speedup_vs_baseline: float | None = None
    stored_speedup_vs_int8_teacher: float | None = None
    heldout_confirmed: bool | None = None
    refused: str | None = None  # None, or the one-line reason nothing was shipped
    deploy_config: str | None = None
    # the search was ended by a stop signal before its budget: the study is not finished (a suite reruns it)
    stopped: bool = False
    # --teacher-only: the teacher was fitted and judged, no student searched (refused still says why not)
    teacher_only: bool = False
    teacher_fit: str | None = None  # the teacher's fine-tuning in one line (steps, seeds, the kept one)
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SweepOutcome":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k, f in cls.__dataclass_fields__.items():
            if "Interval" in str(f.type) and d.get(k) is not None:
                d[k] = Interval.from_dict(d[k])
        d["notes"] = tuple(d.get("notes", ()))
        return cls(**d)

    def write(self, run_dir: Path) -> Path:
        path = Path(run_dir) / FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, run_dir: Path) -> "SweepOutcome | None":
        path = Path(run_dir) / FILE
        if not path.is_file():
            return None
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise UserInputError(f"{path}: not a sweep outcome ({exc})") from None
