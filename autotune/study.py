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
from autotune.hopeless import Hopeless, HopelessRule, Watch, earlier_curves
from autotune.measure import Measurement
from autotune.stop import StepStop, StopRequest, graceful_stop
from autotune.space import Choice, SearchSpace, suggest
from autotune.storage import finished_count
from autotune.trial_record import TrialRecord, meets

log = logging.getLogger(__name__)


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
    # (recipe, runtime, the build's progress hook) -> (Measurement, built)
    evaluate: Callable[[Any, Any, Watch], tuple[Measurement, Any]]
    to_trial: Callable[[Choice], tuple[Any, Any]]  # Choice -> (Recipe, Runtime)
    multi: bool = True
    p99_limit_ms: float | None = None
    hopeless: HopelessRule | None = None  # stop students that cannot reach the floor; None = never

    def __call__(self, trial: optuna.Trial):
        choice = suggest(trial, self.space, self.teacher.layers, self.teacher.heads, self.teacher.ffn)
        recipe, runtime = self.to_trial(choice)
        TrialRecord(recipe=recipe, recipe_key=recipe.key(), runtime=runtime).write(trial)
        earlier = earlier_curves(TrialRecord.from_trial(t).curves for t in trial.study.get_trials(deepcopy=False)
                                 if t.number != trial.number)
        watch = Watch(self.hopeless, earlier)
        try:
            m, built = self.evaluate(recipe, runtime, watch)
        except Hopeless as exc:  # it used its budget; its stopped step stays cached for a rerun
            TrialRecord(curves=tuple(watch.curves.values()), pruned=exc.reason,
                        saved_s=round(exc.saved_s, 1)).write(trial)
            log.info("trial %d stopped: %s", trial.number, exc.reason)
            raise optuna.TrialPruned(exc.reason) from exc
        except StepStop as exc:  # not the trial's fault: its point runs again, from the cached steps
            TrialRecord(stopped=str(exc)).write(trial)
            trial.study.enqueue_trial(trial.params, user_attrs=TrialRecord(requeued_from=trial.number).to_attrs())
            log.warning("trial %d: %s", trial.number, exc)
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            TrialRecord(error=reason[:500], constraints=(1.0,), curves=tuple(watch.curves.values())).write(trial)
            log.warning("trial %d failed: %s", trial.number, reason)
            raise
        score, throughput = float(m.metrics[self.metric]), float(m.throughput)
        if not (math.isfinite(score) and math.isfinite(throughput)):
            raise ValueError(f"non-finite result: {self.metric}={score}, throughput={throughput}")
        constraints = (self.floor - score,)
        if self.p99_limit_ms is not None:
            constraints += (float(m.latency_ms["p99"]) - self.p99_limit_ms,)
        scores = Path(built.model_dir) / "significance.json"
        TrialRecord(measurement=m, model_dir=str(built.model_dir), curves=tuple(watch.curves.values()),
                    significance=json.loads(scores.read_text()) if scores.is_file() else None,
                    constraints=constraints, feasible=meets(constraints)).write(trial)
        return (score, throughput) if self.multi else throughput


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


def _feasible(study: optuna.Study) -> list[tuple[FrozenTrial, TrialRecord]]:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [(t, r) for t in done if (r := TrialRecord.from_trial(t)).is_feasible]


def feasible_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t, _ in _feasible(study)]


def ranked_feasible(study: optuna.Study) -> list[FrozenTrial]:
    """Feasible trials, fastest first; ties broken by accuracy. Infeasible trials never qualify."""
    ranked = sorted(_feasible(study), key=lambda tr: (tr[1].measurement.throughput, tr[0].values[0]), reverse=True)
    return [t for t, _ in ranked]


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
        record = TrialRecord.from_trial(trial)
        if not record.is_feasible or "batch_size" not in trial.params:
            return
        key = (record.recipe_key, trial.params.get("engine"))
        if any(t.number < trial.number and (TrialRecord.from_trial(t).recipe_key, t.params.get("engine")) == key
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


class EngineSiblings:
    """Callback: when a model is first found feasible under an engine other than ``primary`` (the
    space's first: ORT int8 on CPU), queue it once under ``primary`` at the same batch size and layout.
    Runtime siblings vary batch and layout only, so a model TPE happened to draw with a slow engine was
    never timed with the fast one: the SST-2 overnight v4 study built a significance-route student in
    33 min and timed it only under torch-fp32 (1,546 ex/s); its int8 version was a cache hit away. The
    queued trial, if feasible, gets its own runtime siblings."""

    def __init__(self, primary: str):
        self.primary = primary

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        record, engine = TrialRecord.from_trial(trial), trial.params.get("engine")
        if not record.is_feasible or engine in (None, self.primary):
            return
        for t in study.get_trials(deepcopy=False):
            other = TrialRecord.from_trial(t)
            if t.number == trial.number or other.recipe_key != record.recipe_key:
                continue
            if t.params.get("engine") == self.primary:
                return  # the model is already tried with the primary engine
            if t.number < trial.number and t.params.get("engine") == engine and other.is_feasible:
                return  # not its first feasible trial with this engine: queued then
        study.enqueue_trial({**trial.params, "engine": self.primary}, skip_if_exists=True)
        log.info("trial %d: model %s is feasible with %s; queued it with %s at the same runtime", trial.number,
                 record.recipe_key, trial.params["engine"], self.primary)


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
        state, r = trial.state.name, TrialRecord.from_trial(trial)
        if trial.state == TrialState.COMPLETE:
            m = r.measurement
            log.info("trial %d %s: %s=%.4f %.1f ex/s p99 %.2f ms %s [%d/%d]", trial.number, state,
                     objective.metric, m.metrics[objective.metric], m.throughput, m.latency_ms["p99"],
                     "feasible" if r.is_feasible else "INFEASIBLE", done, n_trials)
        else:
            log.info("trial %d %s: %s [%d/%d]", trial.number, state, r.reason, done, n_trials)
        if done >= n_trials or stop.requested:
            st.stop()

    with graceful_stop(stop) as stop:
        study.optimize(objective, n_trials=remaining, timeout=time_budget.optuna_timeout_s, catch=(Exception,),
                       callbacks=[*callbacks, stop_when_done], gc_after_trial=True)
    return remaining


def hopeless_trials(study: optuna.Study) -> list[tuple[FrozenTrial, TrialRecord]]:
    return [(t, r) for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
            if (r := TrialRecord.from_trial(t)).pruned]


def requeue_hopeless(study: optuna.Study) -> int:
    """Queue again each trial stopped as hopeless that was not queued again yet: under a looser rule
    (or none) its build resumes from the stopped step's cached state."""
    trials = study.get_trials(deepcopy=False)
    retried = {TrialRecord.from_trial(t).requeued_from for t in trials}
    queued = 0
    for t, _ in hopeless_trials(study):
        if t.number not in retried:
            study.enqueue_trial(t.params, user_attrs=TrialRecord(requeued_from=t.number).to_attrs())
            queued += 1
    log.info("queued %d trial(s) stopped as hopeless again", queued)
    return queued


def log_hopeless(study: optuna.Study) -> None:
    """How many trials stopped as hopeless and the training they did not do."""
    stopped = hopeless_trials(study)
    if stopped:
        saved = sum(r.saved_s or 0.0 for _, r in stopped)
        log.info("%d trial(s) stopped as hopeless while training; their stopped steps had about %.0f min of "
                 "training left (later steps not counted)", len(stopped), saved / 60)


def best_reached(study: optuna.Study, metric: str) -> tuple[float | None, float | None, dict[str, int]]:
    """(the best score a measured build reached, the best any training evaluation reached, trials ended
    per state): what a refusal for want of a feasible trial says. The two are kept apart because the
    floor applies to the measured build (ORT, often int8), which can score below the PyTorch model that
    training evaluated; quoting only the latter would hide why the floor was missed."""
    measured, trained, ended = [], [], {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
        r = TrialRecord.from_trial(t)
        ended[t.state.name.lower()] = ended.get(t.state.name.lower(), 0) + 1
        trained += [c.best for c in r.curves if c.points]
        if r.measurement is not None and metric in r.measurement.metrics:
            measured.append(float(r.measurement.metrics[metric]))
    return max(measured, default=None), max(trained, default=None), ended


def no_feasible_trial(study: optuna.Study, floor: float, metric: str, trivial: float) -> str:
    """The refusal when no trial met the floor: how the trials ended, and how close any model came."""
    measured, trained, ended = best_reached(study, metric)
    words = {"complete": "completed", "pruned": "stopped as hopeless", "fail": "failed"}
    reached = [f"the best measured build scored {measured:.4f}"] if measured is not None else []
    if trained is not None:
        reached.append(f"the best training evaluation {trained:.4f}")
    n = sum(ended.values())
    return (f"no trial met the floor {floor:.4f} on the search split ({n} trial{'s' * (n != 1)}: "
            f"{', '.join(f'{n} {words[s]}' for s, n in ended.items()) or 'none ended'}; "
            f"{', '.join(reached) or 'no model was scored'}, the trivial baseline {trivial:.4f})")
