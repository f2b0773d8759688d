"""Is the model behind a speed-up any good? The trivial baseline, the teacher's guard and the
paired held-out comparison of a pick with its teacher, all on the same held-out rows.

A speed-up for a model no better than a coin flip means nothing, and a one-point floor on 28
rows is far below the noise: every score here carries its 95% interval (compress/intervals.py),
and each decision asks whether a difference is there beyond that noise.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from compress.baselines import TrivialBaseline
from compress.errors import UserInputError
from compress.intervals import Interval, bootstrap, bounds, interval, paired_difference, unit_stats
from compress.tasks import Example, TaskSpec

log = logging.getLogger(__name__)


CLEARLY_AHEAD = 0.05  # a weak teacher this far above the trivial baseline is refused for want of rows


def units_word(spec: TaskSpec) -> str:
    return {"choice": "questions", "multirc": "questions", "record": "queries"}.get(spec.scoring, "rows")


@dataclass(frozen=True)
class Judged:
    """One model's predictions on a split, against the trivial baseline on the same rows."""
    score: Interval
    vs_trivial: Interval  # the model minus the trivial baseline, paired
    beats_trivial: bool  # vs_trivial's low end above 0

    def to_dict(self) -> dict[str, Any]:
        return {"interval": self.score.to_dict(), "vs_trivial": self.vs_trivial.to_dict(),
                "beats_trivial": self.beats_trivial}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Judged":
        return cls(Interval.from_dict(d["interval"]), Interval.from_dict(d["vs_trivial"]), bool(d["beats_trivial"]))


def judge(spec: TaskSpec, rows: Sequence[Example], logits, trivial: TrivialBaseline, seed: int = 0) -> Judged:
    logits = np.asarray(logits, dtype=float)
    metric = spec.primary_metric
    score = interval(spec, rows, logits, metric, seed=seed)
    diff = paired_difference(spec, unit_stats(spec, rows, logits), trivial.stats, metric, seed=seed)
    return Judged(score, diff, diff.low > 0)


def trivial_interval(spec: TaskSpec, trivial: TrivialBaseline, seed: int = 0) -> Interval:
    """The trivial baseline's own interval on its rows (it varies with the resample, too)."""
    low, high = bounds(bootstrap(spec, [trivial.stats], spec.primary_metric, seed=seed)[:, 0])
    return Interval(trivial.metrics[spec.primary_metric], low, high, trivial.stats.units)


def weak_teacher_message(task: str, spec: TaskSpec, teacher: Judged, trivial: TrivialBaseline) -> str:
    """The refusal, saying which remedy fits: a teacher at the trivial level needs a larger teacher or
    more data; one above it whose interval still reaches it needs more held-out rows to tell."""
    t, d = teacher.score, teacher.vs_trivial
    name = "chance" if trivial.kind.startswith("chance") else f"the {trivial.kind}"
    head = (f"task {task}: the teacher ({t.value:.2f}, 95% {t.low:.2f}-{t.high:.2f}) is not better than {name} "
            f"({trivial.metrics[spec.primary_metric]:.2f}) on {t.units} held-out {units_word(spec)}")
    if d.value >= CLEARLY_AHEAD:  # well ahead, but the rows cannot tell it from the trivial baseline
        return (f"{head} beyond noise (teacher − trivial {100 * d.value:+.1f} points, 95% {100 * d.low:+.1f} to "
                f"{100 * d.high:+.1f}); too few held-out rows to tell: a larger --holdout-fraction or more labelled "
                f"data (--allow-weak-teacher to go on)")
    return f"{head}; a larger teacher or more data is needed (--allow-weak-teacher to go on)"


def guard_teacher(task: str, spec: TaskSpec, teacher: Judged, trivial: TrivialBaseline, allow: bool) -> str | None:
    """None when the teacher beats the trivial baseline beyond noise; else the reason, raised
    unless ``allow``."""
    if teacher.beats_trivial:
        log.info("teacher held out %s, better than the %s (%.4f) by %s", teacher.score.describe(), trivial.kind,
                 trivial.metrics[spec.primary_metric], teacher.vs_trivial.describe())
        return None
    reason = weak_teacher_message(task, spec, teacher, trivial)
    if not allow:
        raise UserInputError(reason)
    log.warning("%s; going on as asked", reason.replace(" (--allow-weak-teacher to go on)", ""))
    return reason


def vs_teacher(spec: TaskSpec, rows: Sequence[Example], pick_logits, teacher_logits, seed: int = 0) -> Interval:
    """The pick minus the teacher on the same held-out rows (paired bootstrap)."""
    a, b = unit_stats(spec, rows, np.asarray(pick_logits)), unit_stats(spec, rows, np.asarray(teacher_logits))
    return paired_difference(spec, a, b, spec.primary_metric, seed=seed)


def resolution_note(diff: Interval, margin: float | None, spec: TaskSpec) -> str | None:
    """Said when the held-out rows cannot tell a pick within the floor's margin from one below it."""
    if margin is None or margin <= 0:
        return None
    half = (diff.high - diff.low) / 2
    if half <= margin:
        return None
    return (f"the held-out split ({diff.units} {units_word(spec)}) is too small to resolve a {100 * margin:g}-point "
            f"floor: pick − teacher = {100 * diff.value:+.1f} points (95% {100 * diff.low:+.1f} to "
            f"{100 * diff.high:+.1f}); use a larger --holdout-fraction or more labelled dev rows")
