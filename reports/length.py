"""How long a sweep ran, from its trials' stored start and end times.

An overnight sweep is often stopped and resumed (``--timeout`` per run, a killed machine), so
its length is not one process's wall time: it is the time its trials ran, summed over the
stretches in which they ran. The teacher fine-tune, the references and the held-out checks
happen outside trials and are not counted; neither is a trial a killed process left behind
(its end is unknown: Optuna marks it failed only when a later run finds its heartbeat stale). A trial
a stop signal ended between compression steps is counted: its steps were cached for its retry.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

# one merge rule for the sweep's time budget and for its reported length
from autotune.budget import GAP_S, Stretch, duration, stretches

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Length:
    stretches: tuple[Stretch, ...]
    trials: int  # trials with a known end (complete, or failed with a recorded reason)
    models: int  # distinct recipes among the complete trials

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stretches)

    def describe(self) -> str:
        if not self.stretches:
            return "no trial has finished yet"
        spans = ", ".join(_span(s) for s in self.stretches)
        n = len(self.stretches)
        return (f"{duration(self.seconds)} of trials in {n} stretch{'es' if n > 1 else ''} ({spans}; a pause over "
                f"{GAP_S / 60:.0f} min starts a new one): {self.trials} finished trials, {self.models} distinct models")

    def to_dict(self) -> dict:
        return {"seconds": round(self.seconds, 1), "trials": self.trials, "models": self.models,
                "stretches": [{"start": s.start.strftime(TIME_FORMAT), "end": s.end.strftime(TIME_FORMAT),
                               "seconds": round(s.seconds, 1), "trials": s.trials} for s in self.stretches]}


def _span(s: Stretch) -> str:
    end = s.end.strftime("%H:%M") if s.end.date() == s.start.date() else s.end.strftime("%Y-%m-%d %H:%M")
    return f"{s.start.strftime('%Y-%m-%d %H:%M')}–{end}"


def sweep_length(trials: pd.DataFrame, gap_s: float = GAP_S) -> Length:
    """Merge the intervals of the trials whose time counts (the ``timed`` column, the sweep's own
    budget rule) into stretches; overlapping trials (several workers) count once. Trials are
    counted by the ``finished`` column, as the sweep's trial budget counts them."""
    known = trials[trials["timed"].astype(bool)].dropna(subset=["started", "completed"])
    merged = stretches(zip(pd.to_datetime(known["started"]), pd.to_datetime(known["completed"])), gap_s)
    complete = trials[trials["state"] == "COMPLETE"]
    n = int(trials["finished"].astype(bool).sum())
    return Length(tuple(merged), n, int(complete["recipe_key"].replace("", pd.NA).nunique()))
