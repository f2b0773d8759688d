"""The time budget counts trial time across resumed runs, read back from a real sqlite study."""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from autotune.budget import TimeBudget, spent_s
from tests.stamped import add


def resumed_study(tmp_path) -> optuna.Study:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s",
                                directions=["maximize", "maximize"])
    add(study, 0, 0, 20)  # first run 06:00-06:40, with a failure that recorded its reason
    add(study, 1, 20.2, 40, state=TrialState.FAIL, error="RuntimeError: out of memory")
    add(study, 2, 40, 120, state=TrialState.FAIL)  # left by the killed first run: its end is unknown
    add(study, 3, 120, 160, key="m2")  # second run 08:00-09:00, two workers overlapping
    add(study, 4, 130, 180, key="m3")
    return study


def test_spent_time_merges_runs_and_workers_and_skips_killed_trials(tmp_path):
    assert spent_s(resumed_study(tmp_path)) == 100 * 60


@pytest.mark.parametrize("total, run_limit, left, timeout, used_up", [
    (10 * 3600, None, 10 * 3600 - 6000, 10 * 3600 - 6000, False),  # a resume gets only what is left
    (10 * 3600, 1800, 10 * 3600 - 6000, 1800, False),  # --timeout caps this run within the budget
    (3000, 1800, 0.0, 0.0, True),  # already spent by earlier runs
    (None, None, None, None, False),  # no limit at all
])
def test_time_budget_left_for_a_resumed_run(tmp_path, total, run_limit, left, timeout, used_up):
    budget = TimeBudget(total, spent_s(resumed_study(tmp_path)), run_limit)
    assert (budget.left_s, budget.optuna_timeout_s, budget.used_up) == (left, timeout, used_up)


def test_budget_line_says_what_is_spent_and_left():
    line = TimeBudget(10 * 3600, 3 * 3600 + 54 * 60, 6300).describe()
    assert line == ("10 h 00 min of trials (3 h 54 min spent by earlier runs, 6 h 06 min left); "
                    "this run stops starting trials after 1 h 45 min (--timeout)")


@pytest.mark.parametrize("budget, timeout, total, run_limit", [
    (float("inf"), None, None, None),  # --time-budget inf: --n-trials alone ends the sweep
    (None, float("inf"), 6 * 60, None),  # the quick preset's budget, no limit for this run
    (3600.0, 600.0, 3600.0, 600.0),
])
def test_inf_means_no_time_limit(tmp_path, budget, timeout, total, run_limit):
    from autotune.sweep import Sweep, SweepConfig

    sweep = Sweep(SweepConfig(task="sst2", run_dir=str(tmp_path), time_budget_s=budget, timeout_s=timeout))
    assert (sweep.time_budget_s, sweep.timeout_s) == (total, run_limit)
    if total is None:
        assert TimeBudget(sweep.time_budget_s, 0.0, sweep.timeout_s).describe() == "no time limit"


@pytest.mark.parametrize("budget, timeout, option", [
    (float("nan"), None, "--time-budget nan"), (0.0, None, "--time-budget 0"), (None, -5.0, "--timeout -5")])
def test_a_time_limit_that_is_not_positive_is_refused(tmp_path, budget, timeout, option):
    from autotune.sweep import Sweep, SweepConfig
    from compress.errors import UserInputError

    with pytest.raises(UserInputError, match=f"^{option}: must be a positive number of seconds"):
        Sweep(SweepConfig(task="sst2", run_dir=str(tmp_path), time_budget_s=budget, timeout_s=timeout))
