"""The sweep's time budget, counted across every resumed run of one study.

An overnight sweep is often stopped and resumed, so "10 hours" must mean 10 hours of trials in
all, as ``--n-trials`` already means trials in all: a resumed run gets only what is left.
Trial time is read back from the storage (each trial's stored start and end), merged into
stretches so that the overlapping trials of parallel workers count once. The teacher fine-tune,
the references and the held-out checks run outside trials and are not counted; neither is a
trial a killed process left behind (its end is unknown until a later run finds it stale). A trial a
stop signal ended between steps is counted: its steps are cached for its retry.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

import optuna

from autotune.storage import spent_time

# Trials of one running sweep follow each other within seconds; a longer pause means it was
# stopped and resumed, which starts a new stretch (the pause itself is not counted).
GAP_S = 300.0


@dataclass(frozen=True)
class Stretch:
    start: datetime
    end: datetime
    trials: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def stretches(spans: Iterable[tuple[datetime, datetime]], gap_s: float = GAP_S) -> list[Stretch]:
    """Merge [start, end] intervals; a pause longer than ``gap_s`` starts a new stretch."""
    out: list[Stretch] = []
    for start, end in sorted(spans):
        last = out[-1] if out else None
        if last is not None and (start - last.end).total_seconds() <= gap_s:
            out[-1] = Stretch(last.start, max(last.end, end), last.trials + 1)
        else:
            out.append(Stretch(start, end, 1))
    return out


def spent_s(study: optuna.Study, gap_s: float = GAP_S) -> float:
    """Seconds of trials the study has run so far, over all its runs and workers."""
    spans = [(t.datetime_start, t.datetime_complete) for t in study.get_trials(deepcopy=False)
             if spent_time(t) and t.datetime_start is not None and t.datetime_complete is not None]
    return sum(s.seconds for s in stretches(spans, gap_s))


@dataclass(frozen=True)
class TimeBudget:
    """What this run may spend: the study-wide budget less what earlier runs spent, capped by
    this run's own ``--timeout`` when one is given."""

    total_s: float | None  # study-wide; None = no limit
    spent_s: float
    run_limit_s: float | None = None  # this invocation only

    @property
    def left_s(self) -> float | None:
        return None if self.total_s is None else max(0.0, self.total_s - self.spent_s)

    @property
    def optuna_timeout_s(self) -> float | None:
        """For ``study.optimize(timeout=...)``; Optuna checks it between trials, so the last trial
        of a run may end past it by up to one trial's length."""
        limits = [x for x in (self.left_s, self.run_limit_s) if x is not None]
        return min(limits) if limits else None

    @property
    def used_up(self) -> bool:
        return self.left_s is not None and self.left_s <= 0.0

    @property
    def total(self) -> str:
        return "no time limit" if self.total_s is None else f"{duration(self.total_s)} of trials"

    def describe(self) -> str:
        total = self.total if self.total_s is None else (
            f"{self.total} ({duration(self.spent_s)} spent by earlier runs, {duration(self.left_s)} left)")
        if self.run_limit_s is not None:
            total += f"; this run stops starting trials after {duration(self.run_limit_s)} (--timeout)"
        return total


def duration(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"
