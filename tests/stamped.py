"""Trials with chosen start and end times, stored in a real study: how resumed sweeps look."""
from __future__ import annotations

from datetime import datetime, timedelta

from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from autotune.trial_record import TrialRecord

T0 = datetime(2026, 11, 23, 6, 0, 0)
DIST = {"k": CategoricalDistribution(list(range(10)))}


def add(study, k: int, start_min: float, end_min: float, state=TrialState.COMPLETE, key: str = "m1",
        error: str | None = None) -> None:
    t = create_trial(state=state, values=[0.9, 100.0] if state == TrialState.COMPLETE else None,
                     params={"k": k}, distributions=DIST)
    TrialRecord(recipe_key=key, error=error).write(t)
    t.datetime_start = T0 + timedelta(minutes=start_min)
    t.datetime_complete = T0 + timedelta(minutes=end_min)
    study.add_trial(t)
