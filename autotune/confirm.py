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

Checks are kept in the study (`remembered`): a check may rebuild a model (10-35 min on the
overnight preset), and a resumed run, perhaps on a machine whose model cache is gone, must
not pay for the checks an earlier run already made.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import optuna
from optuna.trial import FrozenTrial

from autotune.floor import AccuracyFloor
from autotune.trial_record import TrialRecord
from compress.intervals import Interval

log = logging.getLogger(__name__)

ATTR_HELDOUT = "heldout_metrics"  # study attr: {trial number: held-out metrics}
ATTR_CHECKS = "heldout_checks"  # study attr: the last run's checks (studies before ATTR_HELDOUT kept only these)
JUDGED = ("interval", "vs_trivial", "beats_trivial", "vs_teacher")  # autotune/trust.py, kept with each check


@dataclass(frozen=True)
class Check:
    trial: int
    score: float  # primary metric on the held-out split, under the trial's own runtime
    floor: float  # the floor rule applied to the teacher's held-out score
    passed: bool  # meets the floor, and beats the trivial baseline beyond noise
    interval: dict[str, Any] | None = None  # compress.intervals.Interval of score
    vs_teacher: dict[str, Any] | None = None  # the pick minus the teacher on the same rows (paired)
    beats_trivial: bool | None = None  # None: not judged (checks stored before judging existed)

    def to_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "score": self.score, "floor": self.floor, "passed": self.passed,
                "interval": self.interval, "vs_teacher": self.vs_teacher, "beats_trivial": self.beats_trivial}


def heldout_floor(rule: AccuracyFloor, teacher_heldout: float) -> float:
    """An absolute floor stays as it is; a relative one follows the teacher onto the held-out rows."""
    return rule.level(teacher_heldout)


def confirm(ranked: Sequence[FrozenTrial], heldout_of: Callable[[FrozenTrial], dict], floor: float, metric: str,
            top: int, need_beat_trivial: bool = True) -> tuple[FrozenTrial | None, list[Check], list[dict]]:
    """(first of the ``top`` fastest feasible models meeting ``floor`` held out or None, checks, measurements).
    ``need_beat_trivial`` False (--allow-weak-teacher): the trivial baseline is reported, not required."""
    checks: list[Check] = []
    measured: list[dict] = []
    seen: set = set()
    for trial in ranked:
        if len(checks) >= top:
            break
        key = TrialRecord.from_trial(trial).recipe_key  # the model's cache identity
        model = key if key is not None else trial.number
        if model in seen:
            continue
        seen.add(model)
        m = heldout_of(trial)
        score = float(m["metrics"][metric])
        beats = m.get("beats_trivial")
        check = Check(trial.number, score, floor, score >= floor and (beats is not False or not need_beat_trivial),
                      m.get("interval"),
                      m.get("vs_teacher"), beats)
        checks.append(check)
        measured.append(m)
        verdict = "confirmed" if check.passed else "below the floor" if score < floor else \
            "not better than the trivial baseline beyond noise"
        log.info("held-out check, trial %d: %s %s vs floor %.4f → %s", trial.number, metric,
                 Interval.from_dict(check.interval).describe() if check.interval else f"{score:.4f}", floor, verdict)
        if check.passed:
            return trial, checks, measured
    return None, checks, measured


def closest(checks: Sequence[Check]) -> int:
    """Index of the check with the best held-out score among those better than the trivial
    baseline; the faster one on a tie."""
    usable = [i for i in range(len(checks)) if checks[i].beats_trivial is not False] or list(range(len(checks)))
    return max(usable, key=lambda i: (checks[i].score, -i))


def remembered(study: optuna.Study, heldout_of: Callable[[FrozenTrial], dict],
               metric: str) -> Callable[[FrozenTrial], dict]:
    """``heldout_of`` backed by the study: a trial checked by any earlier run is not measured again,
    and each new result is stored at once, so a run killed mid-confirmation keeps what it checked."""
    known = {str(c["trial"]): {"metrics": {metric: c["score"]}} for c in study.user_attrs.get(ATTR_CHECKS, [])}
    known.update(study.user_attrs.get(ATTR_HELDOUT, {}))

    def of(trial: FrozenTrial) -> dict:
        key = str(trial.number)
        if key in known:
            log.info("held-out check, trial %d: measured by an earlier run", trial.number)
        else:
            m = heldout_of(trial)
            known[key] = {"metrics": dict(m["metrics"]), **{k: m[k] for k in JUDGED if k in m}}
            study.set_user_attr(ATTR_HELDOUT, known)
        return known[key]

    return of
