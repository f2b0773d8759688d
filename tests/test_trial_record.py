"""The trial record through a real Optuna study: what the objective writes is what every reader
gets back, feasibility has one rule (older studies included), and a failed trial keeps its reason."""
from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from autotune import study as S
from autotune.runtime import Runtime
from autotune.space import SearchSpace
from autotune.storage import fail_reason, used_budget
from autotune.trial_record import TrialRecord, meets
from compress.recipe import Recipe
from tests.records import measurement

RECIPE = Recipe(task="sst2", student_layers=3, heads_kept=6, ffn_kept=768)
RUNTIME = Runtime(engine="ort-int8", batch_size=8, instances=1, threads=2)
SPACE = SearchSpace(student_layers=(3,), heads_kept=(6,), ffn_kept=(768,), layouts=((1, 2),))
DIST = {"k": CategoricalDistribution([0, 1, 2])}


def full_record() -> TrialRecord:
    return TrialRecord(recipe=RECIPE, recipe_key=RECIPE.key(), runtime=RUNTIME,
                       measurement=measurement(123.0, {"accuracy": 0.9}, runtime=RUNTIME, core_sets=((0, 1),),
                                               intervals={"accuracy": {"low": 0.88, "high": 0.92}}),
                       model_dir="/cache/m", significance={"layers": [0.1, 0.2]}, constraints=(-0.02,), feasible=True)


def stored(study: optuna.Study, record: TrialRecord, values=(0.9, 123.0)) -> TrialRecord:
    def objective(trial):
        record.write(trial)
        return values

    study.optimize(objective, n_trials=1)
    return TrialRecord.from_trial(study.trials[-1])


def test_a_record_written_into_a_trial_reads_back_equal_and_round_trips_json():
    study = optuna.create_study(directions=["maximize", "maximize"])
    record = full_record()
    back = stored(study, record)
    assert back == replace(record, number=0, state=TrialState.COMPLETE)
    assert study.trials[0].constraints == {"accuracy_floor": -0.02}  # what Optuna's samplers read
    assert TrialRecord.from_dict(json.loads(json.dumps(back.to_dict()))) == back
    assert back.is_feasible and back.used_budget and back.reason == ""


def test_the_objective_writes_the_record_every_reader_gets():
    study = optuna.create_study(directions=["maximize", "maximize"])
    m = measurement(200.0, {"accuracy": 0.86}, p99=12.0, runtime=RUNTIME)
    built = SimpleNamespace(model_dir="/nonexistent/model")
    objective = S.Objective(space=SPACE, teacher=S.Teacher(6, 12, 1536, 0.9), floor=0.85, metric="accuracy",
                            evaluate=lambda r, rt, watch: (m, built), to_trial=lambda c: (RECIPE, RUNTIME),
                            p99_limit_ms=10.0)
    study.optimize(objective, n_trials=1)
    r = TrialRecord.from_trial(study.trials[0])
    assert (r.recipe, r.recipe_key, r.runtime, r.measurement, r.model_dir) == (
        RECIPE, RECIPE.key(), RUNTIME, m, "/nonexistent/model")
    assert r.constraints == pytest.approx((-0.01, 2.0)) and r.feasible is False and not r.is_feasible  # p99 12 > 10
    assert S.ranked_feasible(study) == []


def test_feasibility_is_one_rule_and_reads_studies_from_before_the_verdict_was_kept():
    study = optuna.create_study(directions=["maximize", "maximize"])
    for k, attrs in enumerate([{"constraints": [-0.01]},  # older trials: no verdict, their constraints decide
                               {"constraints": [0.02]},
                               {}]):  # nothing stored: never feasible
        study.add_trial(create_trial(values=[0.9, 100.0 + k], params={"k": k}, distributions=DIST, user_attrs={
            "measurement": measurement(100.0 + k, {"accuracy": 0.9}).to_dict(), **attrs}))
    stored(study, TrialRecord(measurement=measurement(50.0, {"accuracy": 0.9}), constraints=(-0.1,), feasible=True))
    stored(study, TrialRecord(measurement=measurement(900.0, {"accuracy": 0.7}), constraints=(0.1,), feasible=False))
    assert [TrialRecord.from_trial(t).is_feasible for t in study.trials] == [True, False, False, True, False]
    assert [t.number for t in S.ranked_feasible(study)] == [0, 3]  # fastest first, the infeasible never
    assert not TrialRecord(state=TrialState.FAIL, constraints=(-1.0,), feasible=True).is_feasible
    assert meets((-0.1, 0.0)) and not meets((-0.1, 0.1)) and not meets(())


def test_a_failed_trial_keeps_its_reason_and_counts_in_the_budget():
    study = optuna.create_study(directions=["maximize", "maximize"])

    def broken(recipe, runtime, watch):
        raise RuntimeError("CUDA out of memory\nwhile allocating 2 GiB")

    objective = S.Objective(space=SPACE, teacher=S.Teacher(6, 12, 1536, 0.9), floor=0.85, metric="accuracy",
                            evaluate=broken, to_trial=lambda c: (RECIPE, RUNTIME))
    study.optimize(objective, n_trials=1, catch=(Exception,))
    (t,) = study.trials
    r = TrialRecord.from_trial(t)
    assert t.state == TrialState.FAIL and r.error == "RuntimeError: CUDA out of memory"
    assert (r.recipe, r.runtime, r.measurement, r.constraints) == (RECIPE, RUNTIME, None, (1.0,))
    assert fail_reason(t) == r.reason == r.error and used_budget(t) and not r.is_feasible
    assert t.constraints == {}  # a failure is no verdict: Optuna's constraints stay unset, as before
    killed = TrialRecord(state=TrialState.FAIL)  # left by a killed worker: no reason, no budget used
    stopped = TrialRecord(state=TrialState.FAIL, stopped="stop signal before building step prune")
    assert (killed.used_budget, killed.spent_time, killed.reason) == (False, False, "")
    assert (stopped.used_budget, stopped.spent_time) == (False, True) and stopped.reason.startswith("stop signal")
