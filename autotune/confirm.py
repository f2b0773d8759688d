"""Confirm the pick on rows the search never saw, before it is shipped.

The floor is enforced on the search half of dev, the same rows that chose every model's
checkpoint (early stopping) and then chose the fastest of many trials: the pick's
search-half score is biased upward, and with a few hundred rows its noise is larger
than a one-point floor. So the fastest feasible trials are re-scored on the held-out
half, fastest first, against the same floor rule applied to the teacher's own held-out
score; the first that passes is the pick. Each model is checked once, at its fastest
runtime: its other batch sizes predict the same rows alike (int8 rounding aside), so
re-checking them would spend the budget on noise. When none passes, the sweep ships the
checked trial that came closest held out (`closest`): the fastest one is the likeliest to
owe its feasibility to the search half alone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from optuna.trial import FrozenTrial

from autotune.floor import AccuracyFloor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    trial: int
    score: float  # primary metric on the held-out split, under the trial's own runtime
    floor: float  # the floor rule applied to the teacher's held-out score
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "score": self.score, "floor": self.floor, "passed": self.passed}


def heldout_floor(rule: AccuracyFloor, teacher_heldout: float) -> float:
    """An absolute floor stays as it is; a relative one follows the teacher onto the held-out rows."""
    return rule.level(teacher_heldout)


def confirm(ranked: Sequence[FrozenTrial], heldout_of: Callable[[FrozenTrial], dict], floor: float, metric: str,
            top: int) -> tuple[FrozenTrial | None, list[Check], list[dict]]:
    """(first of the ``top`` fastest feasible models meeting ``floor`` held out or None, checks, measurements)."""
    checks: list[Check] = []
    measured: list[dict] = []
    seen: set = set()
    for trial in ranked:
        if len(checks) >= top:
            break
        model = trial.user_attrs.get("recipe_key", trial.number)  # the model's cache identity
        if model in seen:
            continue
        seen.add(model)
        m = heldout_of(trial)
        score = float(m["metrics"][metric])
        check = Check(trial.number, score, floor, score >= floor)
        checks.append(check)
        measured.append(m)
        log.info("held-out check, trial %d: %s %.4f vs floor %.4f → %s", trial.number, metric, score, floor,
                 "confirmed" if check.passed else "below the floor")
        if check.passed:
            return trial, checks, measured
    return None, checks, measured


def closest(checks: Sequence[Check]) -> int:
    """Index of the check with the best held-out score; the faster one on a tie."""
    return max(range(len(checks)), key=lambda i: (checks[i].score, -i))
