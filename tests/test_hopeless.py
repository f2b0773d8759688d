"""Stopping hopeless trials: the rule on hand-made curves, and a real multi-objective study on a
tiny model whose trial is stopped while its student trains (PRUNED, with its reason, its curve and
its cached state) and resumes from that state when queued again under no rule."""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from autotune import study as S
from autotune.hopeless import Curve, Hopeless, HopelessRule, Watch, earlier_curves
from autotune.measure import measure
from autotune.runtime import Runtime
from autotune.space import SearchSpace
from autotune.trial_record import TrialRecord
from compress import train as training
from compress.pipeline import Progress, build
from compress.recipe import Recipe
from tests._tiny import save_tiny, sst2_slice

optuna.logging.set_verbosity(optuna.logging.WARNING)


def progress(step=40, total=100, curve=((0, 0.50), (20, 0.70), (40, 0.78)), done=False, key="k-new"):
    return Progress("student", key, step, total, tuple(curve), seconds=40.0, done=done)


def finished(key, points, total=100, step="student"):
    return Curve(step, key, total, tuple(points), done=True)


def test_the_rule_adds_what_earlier_students_recovered_after_the_same_point():
    earlier = [finished("a", [(0, 0.5), (40, 0.80), (100, 0.84)]),  # +0.04 after 40%
               finished("b", [(0, 0.5), (40, 0.70), (60, 0.79), (100, 0.78)])]  # +0.09 after 40%
    rule = HopelessRule(floor=0.885, margin=0.01)
    reason = rule.verdict(progress(), earlier)  # 0.78 + 0.09 + 0.01 < 0.885
    assert reason == ("hopeless: student at step 40/100 scores 0.7800 plus the most 2 earlier student runs gained "
                      "after that point (+0.0900) and a 1-point margin, below the floor 0.8850")
    assert HopelessRule(floor=0.875, margin=0.01).verdict(progress(), earlier) is None  # 0.88 would reach it
    assert rule.verdict(progress(), earlier[:1]) is None  # too few finished runs to judge mid-training
    redistills = [finished("c", [(0, 0.5), (100, 0.6)], step="redistill")] * 2
    assert rule.verdict(progress(), redistills) is None  # only runs of the same step count
    done = progress(step=100, curve=((0, 0.5), (100, 0.86)), done=True)
    assert "student finished scores 0.8600 and a 1-point margin" in rule.verdict(done, [])  # nothing left to gain
    assert HopelessRule(floor=0.87, margin=0.01).verdict(done, []) is None


def test_watch_records_curves_and_hands_back_the_training_it_spared():
    watch = Watch(HopelessRule(floor=0.9, margin=0.0, min_curves=0))
    with pytest.raises(Hopeless) as info:
        watch(progress(step=25, curve=((0, 0.5), (25, 0.6))))
    assert info.value.curve.points == ((0, 0.5), (25, 0.6)) and not info.value.curve.done
    assert info.value.saved_s == pytest.approx(40.0 * 75 / 25)
    assert list(watch.curves) == ["k-new"]
    recorder = Watch(None)
    recorder(progress(done=True, step=100))
    assert earlier_curves([recorder.curves.values(), recorder.curves.values()]) == list(recorder.curves.values())
    assert Curve.from_dict(recorder.curves["k-new"].to_dict()) == recorder.curves["k-new"]


def test_a_trial_stopped_in_a_multi_objective_study_resumes_from_its_cached_state(tmp_path):
    teacher = save_tiny(tmp_path / "teacher", layers=4)
    data = sst2_slice(train=96, dev=48)
    recipe = Recipe(task="sst2", teacher=str(teacher), teacher_epochs=1, teacher_lr=1e-3, student_layers=2,
                    kd_epochs=3, kd_lr=1e-3, kd_batch_size=16)
    runtime = Runtime(engine="ort-fp32", batch_size=16, instances=1, threads=1)
    space = SearchSpace(student_layers=(2,), heads_kept=(4,), ffn_kept=(64,), engines=("ort-fp32",),
                        batch_sizes=(16,), layouts=((1, 1),))

    def evaluate(r, rt, watch):
        built = build(r, data, tmp_path / "cache", progress=False, on_progress=watch)
        return measure(built.model_dir, data.splits["dev"], data.spec, rt, tmp_path / "cache", repeats=1), built

    def objective(rule):
        return S.Objective(space=space, teacher=S.Teacher(4, 4, 64, 0.5), floor=0.5, metric="accuracy",
                           evaluate=evaluate, to_trial=lambda c: (recipe, runtime), hopeless=rule)

    study = optuna.create_study(directions=["maximize", "maximize"],
                                storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="hopeless")
    impossible = HopelessRule(floor=1.01, margin=0.0, min_curves=0)  # no student can reach it
    study.optimize(objective(impossible), n_trials=1, catch=(Exception,))
    stopped = study.trials[0]
    r = TrialRecord.from_trial(stopped)
    assert stopped.state == TrialState.PRUNED and stopped.values is None
    assert r.pruned.startswith("hopeless: student at step 3/18 scores") and r.reason == r.pruned
    assert r.used_budget and r.spent_time and r.saved_s > 0
    (curve,) = r.curves
    assert curve.step == "student" and curve.points[-1][0] == 3 and not curve.done
    assert (tmp_path / "cache" / "partial" / f"{curve.key}.pt").is_file()
    assert S.finished_count(study) == 1
    assert S.best_reached(study, "accuracy") == (None, curve.best, {"pruned": 1})  # what a refusal says it reached
    assert S.no_feasible_trial(study, 1.01, "accuracy", 0.5) == (
        f"no trial met the floor 1.0100 on the search split (1 trial: 1 stopped as hopeless; the best training "
        f"evaluation {curve.best:.4f}, the trivial baseline 0.5000)")

    assert S.requeue_hopeless(study) == 1 and S.requeue_hopeless(study) == 0  # queued once
    before = training.STEPS_RUN
    study.optimize(objective(None), n_trials=1, catch=(Exception,))
    rerun = study.trials[1]
    rr = TrialRecord.from_trial(rerun)
    assert rerun.state == TrialState.COMPLETE and rr.requeued_from == 0 and rerun.params == stopped.params
    (done,) = rr.curves
    assert done.key == curve.key and done.done and done.points[: len(curve.points)] == curve.points
    assert training.STEPS_RUN - before == done.trained_steps - 3  # resumed at step 3, not from the start
    assert not (tmp_path / "cache" / "partial" / f"{curve.key}.pt").exists()
    measured, trained, ended = S.best_reached(study, "accuracy")
    assert ended == {"pruned": 1, "complete": 1}
    assert measured == rr.measurement.metrics["accuracy"] and trained == max(done.best, curve.best)
    assert S.no_feasible_trial(study, 1.01, "accuracy", 0.5).endswith(
        f"the best measured build scored {measured:.4f}, the best training evaluation {trained:.4f}, "
        f"the trivial baseline 0.5000)")
