"""The Optuna study: objective, constraints, sampler, budget, failed-trial handling.

A trial is a (Recipe, Runtime) pair. The recipe is built through the compression cache
(so runtime-only variations never rebuild a model); the runtime is timed under the
machine-wide timing lock. The accuracy floor and the optional p99 limit are Optuna
constraints, so infeasible trials never enter the feasible front.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from autotune.budget import TimeBudget
from autotune.stop import StepStop, StopRequest, graceful_stop
from autotune.space import Choice, SearchSpace, suggest
from autotune.storage import fail_reason, finished_count

log = logging.getLogger(__name__)

# Trial attributes the reports read.
ATTR_RECIPE, ATTR_RUNTIME, ATTR_MEASUREMENT = "recipe", "runtime", "measurement"
ATTR_CONSTRAINTS, ATTR_ERROR, ATTR_FEASIBLE = "constraints", "error", "feasible"
ATTR_STOPPED, ATTR_REQUEUED_FROM = "stopped", "requeued_from"  # a trial a stop signal ended between steps


@dataclass(frozen=True)
class Teacher:
    layers: int
    heads: int
    ffn: int
    score: float  # primary dev metric on the search split


@dataclass(frozen=True)
class Objective:
    """Callable for ``study.optimize``; ``evaluate`` builds and times one (recipe, runtime)."""

    space: SearchSpace
    teacher: Teacher
    floor: float
    metric: str
    evaluate: Callable[[Any, Any], tuple[dict, Any]]  # (recipe, runtime) -> (measurement dict, built)
    to_trial: Callable[[Choice], tuple[Any, Any]]  # Choice -> (Recipe, Runtime)
    multi: bool = True
    p99_limit_ms: float | None = None

    def __call__(self, trial: optuna.Trial):
        choice = suggest(trial, self.space, self.teacher.layers, self.teacher.heads, self.teacher.ffn)
        recipe, runtime = self.to_trial(choice)
        trial.set_user_attr(ATTR_RECIPE, recipe.to_dict())
        trial.set_user_attr("recipe_key", recipe.key())
        trial.set_user_attr(ATTR_RUNTIME, runtime.to_dict())
        try:
            measured, built = self.evaluate(recipe, runtime)
        except StepStop as exc:  # not the trial's fault: its point runs again, from the cached steps
            trial.set_user_attr(ATTR_STOPPED, str(exc))
            trial.study.enqueue_trial(trial.params, user_attrs={ATTR_REQUEUED_FROM: trial.number})
            log.warning("trial %d: %s", trial.number, exc)
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            trial.set_user_attr(ATTR_ERROR, reason[:500])
            trial.set_user_attr(ATTR_CONSTRAINTS, [1.0])
            log.warning("trial %d failed: %s", trial.number, reason)
            raise
        score = float(measured["metrics"][self.metric])
        throughput = float(measured["throughput"])
        if not (math.isfinite(score) and math.isfinite(throughput)):
            raise ValueError(f"non-finite result: {self.metric}={score}, throughput={throughput}")
        constraints = [self.floor - score]
        if self.p99_limit_ms is not None:
            constraints.append(float(measured["latency_ms"]["p99"]) - self.p99_limit_ms)
        trial.set_user_attr(ATTR_MEASUREMENT, measured)
        trial.set_user_attr("model_dir", str(built.model_dir))
        scores = Path(built.model_dir) / "significance.json"
        if scores.is_file():  # kept with the trial, so the report never depends on the model cache
            trial.set_user_attr("significance", json.loads(scores.read_text()))
        trial.set_user_attr(ATTR_CONSTRAINTS, constraints)
        for name, value in zip(("accuracy_floor", "p99_limit"), constraints):
            trial.set_constraint(name, value)  # what Optuna's samplers read
        trial.set_user_attr(ATTR_FEASIBLE, all(c <= 0 for c in constraints))
        return (score, throughput) if self.multi else throughput


def constraints_of(trial: FrozenTrial) -> list[float]:
    """≤ 0 is feasible; a trial without values is infeasible."""
    return list(trial.user_attrs.get(ATTR_CONSTRAINTS, [1.0]))


def make_sampler(seed: int, n_trials: int):
    return optuna.samplers.TPESampler(
        seed=seed, multivariate=True, n_startup_trials=max(3, min(10, n_trials // 3)))


def open_study(storage, name: str, multi: bool, seed: int, n_trials: int) -> optuna.Study:
    directions = ["maximize", "maximize"] if multi else ["maximize"]
    study = optuna.create_study(storage=storage, study_name=name, sampler=make_sampler(seed, n_trials),
                                directions=directions, load_if_exists=True)
    # a worker killed after the others used up the budget left its trial RUNNING, and no trial would
    # start to fail it by its stale heartbeat: fail it now, so its retry is queued and the budget counts it
    optuna.storages.fail_stale_trials(study)
    return study


def feasible_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if all(c <= 0 for c in constraints_of(t))]


def ranked_feasible(study: optuna.Study) -> list[FrozenTrial]:
    """Feasible trials, fastest first; ties broken by accuracy. Infeasible trials never qualify."""
    return sorted(feasible_trials(study),
                  key=lambda t: (t.user_attrs[ATTR_MEASUREMENT]["throughput"], t.values[0]), reverse=True)


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The fastest feasible trial (before any held-out confirmation)."""
    ranked = ranked_feasible(study)
    return ranked[0] if ranked else None


class AnchorQueue:
    """Callback: queue the preset's anchors one at a time, each only when nothing else waits.
    Queued all at once, every anchor (a model build: 10-35 min here) ran before the runtime
    siblings (seconds each) of the first feasible one, so a sweep stopped early shipped its best
    model timed at one batch size only. Anchors already in the study are not queued again, so a
    resumed run goes on where the last one stopped."""

    def __init__(self, anchors: list[dict[str, Any]]):
        self.anchors = list(anchors)

    def __call__(self, study: optuna.Study, trial: FrozenTrial | None = None) -> None:
        if not self.anchors:  # every anchor is in the study: nothing left to read the trials for
            return
        trials = study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return
        tried = [t.system_attrs.get("fixed_params", t.params) for t in trials]
        self.anchors = [params for params in self.anchors if params not in tried]
        if self.anchors:
            study.enqueue_trial(self.anchors[0])
            log.info("queued anchor trial %s", self.anchors[0])


class RuntimeSiblings:
    """Callback: when a model is first found feasible with an engine, queue it with that engine at
    every other batch size and whole-machine layout (instances × threads) of the space. Building
    dominates a trial's cost and the fastest runtime depends on the model (measured on SST-2: batch 8
    for some students, 16-32 for others; one of them ran 1,178 ex/s at batch 1, 2 × 1 and 1,014 at
    batch 32, 1 × 2), so these trials are cheap and worth more than random ones. Layouts that leave
    cores idle are not queued: they never raise throughput."""

    def __init__(self, batch_sizes: tuple[int, ...], layouts: tuple[str, ...] = ()):
        self.batch_sizes = tuple(batch_sizes)
        self.layouts = tuple(layouts)  # "NxT" as the space's layout parameter; empty = the trial's own

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if (trial.state != TrialState.COMPLETE or not trial.user_attrs.get(ATTR_FEASIBLE)
                or "batch_size" not in trial.params):
            return
        key = (trial.user_attrs.get("recipe_key"), trial.params.get("engine"))
        if any(t.number < trial.number and (t.user_attrs.get("recipe_key"), t.params.get("engine")) == key
               for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))):
            return
        layouts = self.layouts if self.layouts and "layout" in trial.params else (None,)
        queued = []
        for layout in layouts:
            for size in self.batch_sizes:
                params = {**trial.params, "batch_size": size, **({"layout": layout} if layout else {})}
                if params != trial.params:
                    study.enqueue_trial(params, skip_if_exists=True)
                    queued.append(f"{size}" + (f"@{layout}" if layout else ""))
        log.info("trial %d: model %s is feasible with %s; queued %d runtime siblings (batch@layout: %s)",
                 trial.number, key[0], key[1], len(queued), ", ".join(queued))


def run(study: optuna.Study, objective: Objective, n_trials: int, time_budget: TimeBudget,
        callbacks: tuple = (), stop: StopRequest | None = None) -> int:
    """Run until the study holds ``n_trials`` finished trials, has spent its time budget (both
    shared by every worker and every resumed run) or is asked to stop (autotune/stop.py; pass
    ``stop`` when the objective's builds also watch it)."""
    remaining = n_trials - finished_count(study)
    if remaining <= 0:
        log.info("budget of %d trials already used; nothing to run", n_trials)
        return 0
    if time_budget.used_up:
        log.info("time budget of %s already used; nothing to run", time_budget.describe())
        return 0

    def stop_when_done(st: optuna.Study, trial: FrozenTrial) -> None:
        done = finished_count(st)
        state = trial.state.name
        if trial.state == TrialState.COMPLETE:
            m = trial.user_attrs[ATTR_MEASUREMENT]
            log.info("trial %d %s: %s=%.4f %.1f ex/s p99 %.2f ms %s [%d/%d]", trial.number, state,
                     objective.metric, m["metrics"][objective.metric], m["throughput"], m["latency_ms"]["p99"],
                     "feasible" if trial.user_attrs.get(ATTR_FEASIBLE) else "INFEASIBLE", done, n_trials)
        else:
            log.info("trial %d %s: %s [%d/%d]", trial.number, state, fail_reason(trial), done, n_trials)
        if done >= n_trials or stop.requested:
            st.stop()

    with graceful_stop(stop) as stop:
        study.optimize(objective, n_trials=remaining, timeout=time_budget.optuna_timeout_s, catch=(Exception,),
                       callbacks=[*callbacks, stop_when_done], gc_after_trial=True)
    return remaining
