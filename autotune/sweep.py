"""One sweep on one task: check everything, fine-tune the teacher, measure the references,
run the study, then measure the chosen recipe on the held-out split and write its
deployment config.

Everything a run needs to be resumed is in ``run_dir``: its config, the study storage
and the references; rerunning the same command continues where it stopped.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from autotune import study as S
from autotune.backends import registry as engine_registry
from autotune.budget import TimeBudget, spent_s
from autotune.confirm import ATTR_CHECKS, closest, confirm, heldout_floor, remembered
from autotune.deploy import deploy_config
from autotune.floor import AccuracyFloor
from autotune.hardware import detect
from autotune.hopeless import HopelessRule
from autotune.measure import measure
from autotune.outcome import SweepOutcome
from autotune.presets import REFERENCE_TOKENS, get_preset
from autotune.retime import BASELINE, ROWS, retime, rounds_for, unbusy
from autotune.runtime import Runtime
from autotune.space import Choice, SearchSpace, anchor_params, whole_machine
from autotune.stop import StopRequest
from autotune.storage import check_url, finished_count, open_storage, stored_study
from autotune.task_data import load_data
from autotune.teacher_head import finetuned_for
from autotune.timing_lock import timing_lock
from autotune.trial_record import TrialRecord
from autotune.trust import Judged, guard_teacher, judge, resolution_note, trivial_interval, units_word, vs_teacher
from compress import cache
from compress.baselines import trivial_baseline
from compress.errors import UserInputError, writable_dir
from compress.intervals import Interval
from compress.models import check_model_dir, resolve
from compress.recipe import Recipe
from compress.tasks import limit_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepConfig:
    task: str  # a registered task, or the name of ``custom_task``
    run_dir: str
    data_dir: str | None = None
    cache_dir: str | None = None  # default: <run_dir>/../cache, shared by runs
    preset: str = "quick"
    n_trials: int | None = None  # None = the preset's; counted across resumed runs
    time_budget_s: float | None = None  # seconds of trials across resumed runs; None = the preset's
    timeout_s: float | None = None  # this run only; None = no limit beyond the time budget
    storage: str | None = None  # None = sqlite under run_dir
    study_name: str | None = None
    floor: AccuracyFloor = field(default_factory=AccuracyFloor)
    objective: str = "multi"  # multi: (accuracy, throughput); throughput: single objective under the floor
    p99_limit_ms: float | None = None
    space: SearchSpace | None = None  # None = the preset's
    recipe: dict[str, Any] = field(default_factory=dict)  # Recipe overrides (teacher, epochs, ...)
    seed: int = 0
    holdout_fraction: float = 0.5
    heartbeat_s: int = 30
    oversubscribe: bool = False
    eval_limit: int | None = None
    remeasure_references: bool = False  # re-time the teacher/baseline (e.g. first timed on a busy machine)
    # re-score up to this many of the fastest feasible trials on the held-out split and ship the
    # first that meets the floor there too (autotune/confirm.py); 0 = ship the fastest feasible
    confirm_top: int = 10
    # interleaved rounds of the closing re-timing (pick, out-of-the-box baseline, int8 teacher; the median
    # ratio ships); None = the preset's (3 quick, 5 overnight). More for a steadier ratio on a noisy machine
    retime_rounds: int | None = None
    # resume a study whose trials were timed on other hardware (their throughputs would not compare)
    allow_other_hardware: bool = False
    # a custom task's spec (compress.custom_task.CustomTaskSpec.to_dict(), absolute paths); None = registered
    custom_task: dict[str, Any] | None = None
    # go on when the teacher is not better than the trivial baseline beyond noise on the held-out rows
    allow_weak_teacher: bool = False
    # fit and judge the teacher (trivial baseline, held-out interval, the guard) and stop before any
    # student: which tasks a teacher serves, at the cost of its fit alone
    teacher_only: bool = False
    # stop a trial while its student trains once it cannot reach the floor (autotune/hopeless.py), with
    # this many points of benefit of the doubt; not defining: a looser rule may resume the same study
    stop_hopeless: bool = True
    hopeless_margin: float = 1.0
    # queue again the trials an earlier run stopped as hopeless: they resume from their cached state
    retry_hopeless: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["space"] = self.space.to_dict() if self.space else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SweepConfig":
        d = dict(d)
        d["floor"] = AccuracyFloor(**d.get("floor", {}))
        d["space"] = SearchSpace.from_dict(d["space"]) if d.get("space") else None
        return cls(**d)

    @property
    def name(self) -> str:
        return self.study_name or f"{self.task}-{self.preset}"


# SweepConfig fields that define what a trial is and when it is feasible, fixed for a study's life,
# with the options that set them
DEFINING = {"task": "--task", "preset": "--preset", "recipe": "--recipe-json/--teacher", "seed": "--seed",
            "holdout_fraction": "holdout_fraction", "floor": "--floor/--floor-below-teacher",
            "objective": "--objective", "p99_limit_ms": "--p99-limit-ms", "eval_limit": "--eval-limit",
            "custom_task": "--task-spec/--custom-*"}


def _short(value: Any, width: int = 80) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def _judged_fields(held: dict[str, Any]) -> dict[str, Any]:
    """A held-out check's intervals as DeployConfig fields."""
    return {"heldout_interval": held.get("interval"), "pick_minus_teacher": held.get("vs_teacher"),
            "beats_trivial": held.get("beats_trivial")}


def fit_summary(built, metric: str) -> str | None:
    """The teacher's fine-tuning as one line (compress/teacher_fit.py's plan and choice), read from its
    cached step; None for a teacher used as it is or fitted by the plain schedule."""
    teacher = next((s for s in built.steps if s.name == "teacher"), None)
    fit = cache.read_meta(teacher.path).get("fit") if teacher else None
    if not fit:
        return None
    p, tried = fit["plan"], fit["restarts"]
    kept = next(t for t in tried if t["seed"] == fit["chosen_seed"])
    trivial = fit.get("held_trivial")  # fits before teacher step version 3 did not record it
    versus = f"; {trivial['kind']} {trivial['metrics'][metric]:.4f}" if trivial else ""
    ran = f", its fit stopped at step {kept['steps']}" if kept["steps"] < p["steps"] else ""
    return (f"{p['steps']} steps ({p['epochs']:g} epochs) x {len(tried)} seed(s), kept seed {fit['chosen_seed']}{ran} "
            f"(held-aside {metric} {kept['held_metrics'][metric]:.4f} on {fit['held_rows']} train rows{versus})")


def check_options(config: SweepConfig) -> None:
    """The options' own values, refused in one line before anything is read, created or trained."""
    for option, value, ok, what in (
            ("--p99-limit-ms", config.p99_limit_ms, lambda v: v > 0, "a positive number of milliseconds"),
            ("--eval-limit", config.eval_limit, lambda v: v >= 1, "1 or more rows"),
            ("--heartbeat", config.heartbeat_s, lambda v: v >= 1, "1 or more seconds"),
            ("--confirm-top", config.confirm_top, lambda v: v >= 0, "0 or more trials"),
            ("--retime-rounds", config.retime_rounds, lambda v: v >= 1, "1 or more rounds"),
            ("--hopeless-margin", config.hopeless_margin, lambda v: 0 <= v <= 100, "0 to 100 points")):
        if value is not None and not ok(value):  # NaN fails every comparison, so it is refused too
            raise UserInputError(f"{option} {value:g}: must be {what}")
    if not 0.0 < config.holdout_fraction < 1.0:
        raise UserInputError(f"--holdout-fraction {config.holdout_fraction:g}: must be between 0 and 1 (e.g. 0.5)")
    for option, value in (("--run-dir", config.run_dir), ("--cache-dir", config.cache_dir)):
        if value is not None:
            writable_dir(option, Path(value))
    if config.storage:
        check_url(config.storage)


class Sweep:
    """The pieces of a sweep, each a method so tests and commands can use them alone."""

    def __init__(self, config: SweepConfig):
        self.config = config
        self.preset = get_preset(config.preset)
        self.run_dir = Path(config.run_dir)
        self.cache_dir = Path(config.cache_dir) if config.cache_dir else self.run_dir.parent / "cache"
        self.hardware = detect()
        self.n_trials = config.n_trials if config.n_trials is not None else self.preset.n_trials
        budget = config.time_budget_s if config.time_budget_s is not None else self.preset.time_budget_s
        self.space = (config.space or self.preset.space).with_layouts(self.hardware.physical_cores)
        self._as_written = self.space  # the anchors are in its terms; check_inputs scales it to the teacher
        if self.n_trials < 1:
            raise UserInputError(f"--n-trials {self.n_trials}: need at least one trial")
        for option, value in (("--time-budget", budget), ("--timeout", config.timeout_s)):
            if value is not None and not value > 0:  # NaN too
                raise UserInputError(f"{option} {value:g}: must be a positive number of seconds (inf: no limit)")
        self.time_budget_s = None if math.isinf(budget) else budget  # inf: --n-trials alone ends the sweep
        self.timeout_s = None if config.timeout_s is None or math.isinf(config.timeout_s) else config.timeout_s
        check_options(config)

    # ------------------------------------------------------------ checks before work

    def base_recipe(self):
        fields = {**self.preset.recipe, **self.config.recipe, "task": self.config.task, "seed": self.config.seed}
        factor, rows = self.preset.transfer_factor, fields.get("max_train_examples")
        if factor and rows and "kd_transfer_examples" not in fields:
            fields["kd_transfer_examples"] = int(factor * rows)
        if self.teacher_is_finetuned:  # the user's own classifier is the teacher, as it is
            fields |= {"teacher_epochs": 0.0, "teacher_min_steps": 0, "teacher_restarts": 1}
        return Recipe.from_dict(fields)

    @property
    def teacher_is_finetuned(self) -> bool:
        """Set by ``check`` (autotune/teacher_head.py): a classifier whose head matches the task."""
        return getattr(self, "_finetuned", False)

    def teacher_shape(self) -> tuple[int, int, int]:
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(resolve(self.base_recipe().teacher))
        return cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size

    def check(self):
        """Every refusal that needs no training: inputs, then the storage (the first thing created)."""
        data, shape = self.check_inputs()
        storage = open_storage(self.config.storage, self.run_dir, self.config.heartbeat_s)
        self.check_resume(storage)
        return storage, data, shape

    def check_inputs(self, announce: bool = True):
        """Recipe, teacher, space, cores and data, read and refused before anything is created:
        (task data, teacher shape). ``announce=False``: a suite's up-front check, whose sweep says it later."""
        self.base_recipe().check()
        check_model_dir(self.base_recipe().teacher, "--teacher")
        layers, heads, ffn = self.teacher_shape()
        scaled = self._as_written.for_teacher(heads, ffn)
        if announce and (scaled.heads_kept, scaled.ffn_kept) != (self.space.heads_kept, self.space.ffn_kept):
            log.info("pruning choices scaled to this teacher (%d heads, FFN %d): heads %s, FFN %s", heads, ffn,
                     scaled.heads_kept, scaled.ffn_kept)
        self.space = scaled
        self.space.validate(layers, heads, ffn, self.hardware.physical_cores, self.config.oversubscribe)
        data = load_data(self.config.custom_task or self.config.task, self.config.data_dir, self.config.seed,
                         self.config.holdout_fraction)
        teacher = {**self.preset.recipe, **self.config.recipe}.get("teacher")
        # teacher_epochs given in the recipe: the user said whether to fine-tune
        self._finetuned = bool(teacher) and "teacher_epochs" not in self.config.recipe and \
            finetuned_for(teacher, data.spec)
        self.base_recipe().check()
        return data, (layers, heads, ffn)

    def row_tokens(self, data) -> float:
        """Mean tokens per training row (dev where a task has no train split), for the cost estimate."""
        from compress.batching import mean_tokens
        from compress.models import load_tokenizer

        rows = data.splits.get("train", ()) if data.labelled("train") else data.splits.get("dev", ())
        return mean_tokens(load_tokenizer(self.base_recipe().teacher), rows, data.spec.max_length, seed=self.config.seed)

    def check_resume(self, storage) -> None:
        """A study resumed with finished trials must go on as it began: same hardware, same
        definition of a trial and of feasibility. Refused in one line before any work."""
        found = stored_study(storage, self.config.name)
        if found and found[1] > 0:
            self.check_definition(*found)
            self.check_hardware(*found)

    def check_definition(self, attrs: dict[str, Any], n_finished: int) -> None:
        """Each stored trial was built, scored and judged feasible under the options it ran with
        (its constraint holds the floor of that run), so a different floor, recipe, preset, task, seed or
        objective would mix incomparable trials and could ship one infeasible under the new floor."""
        theirs = attrs.get("config") or {}
        ours = json.loads(json.dumps(self.config.to_dict(), default=str))
        changed = [k for k in DEFINING if k in theirs and k in ours and theirs[k] != ours[k]]
        if changed:
            diffs = "; ".join(f"{DEFINING[k]} {_short(theirs[k])} then, {_short(ours[k])} now" for k in changed)
            raise UserInputError(
                f"study {self.config.name}: its {n_finished} finished trials ran with other settings ({diffs}); "
                f"rerun with the same options, or start another --study-name")
        if theirs.get("space") not in (None, ours.get("space")):
            log.warning("study %s: the search space differs from the one its first trials were drawn from; the "
                        "sampler goes on with the new one", self.config.name)

    def check_hardware(self, attrs: dict[str, Any], n_finished: int) -> None:
        """A resumed study's throughputs are only comparable if every trial was timed on one kind
        of machine: refuse to add trials from another unless told to."""
        theirs = attrs.get("hardware") or {}
        if theirs.get("hash") in (None, self.hardware.hash):
            return
        where = f"{theirs.get('cpu_model', '?')}, {len(theirs.get('cores', ()))} cores ({theirs['hash']})"
        here = f"{self.hardware.cpu_model}, {self.hardware.physical_cores} cores ({self.hardware.hash})"
        if not self.config.allow_other_hardware:
            raise UserInputError(
                f"study {self.config.name}: its {n_finished} finished trials were timed on {where}, this machine is "
                f"{here}; throughputs would not compare: use another --study-name, or --allow-other-hardware")
        log.warning("study %s: resuming on %s, its %d finished trials were timed on %s; the references are "
                    "re-timed here only with --remeasure-references", self.config.name, here, n_finished, where)

    # ------------------------------------------------------------ the run

    def to_trial(self, choice: Choice, shape: tuple[int, int, int]):
        layers, heads, ffn = shape
        depth = None if choice.student_layers >= layers else choice.student_layers
        kept = None if choice.heads_kept >= heads else choice.heads_kept
        recipe = replace(self.base_recipe(), ffn_kept=None if choice.ffn_kept >= ffn else choice.ffn_kept)
        if choice.route == "significance":  # layers and heads by significance, then re-distilled
            recipe = replace(recipe, approx="significance-drop", approx_layers=depth, approx_heads=kept,
                             approx_epochs=recipe.kd_epochs)
        else:
            recipe = replace(recipe, student_layers=depth, heads_kept=kept,
                             route=choice.route if choice.route != "none" else "subset")
        if "significance" in engine_registry.get(choice.engine).needs and recipe.approx == "none":
            recipe = replace(recipe, approx="significance")  # the engine reads the scores from the model dir
        runtime = Runtime(engine=choice.engine, padding=self.space.padding, batch_size=choice.batch_size,
                          instances=choice.instances, threads=choice.threads,
                          allow_oversubscribe=self.config.oversubscribe)
        return recipe, runtime

    def evaluate(self, data, recipe, runtime, split: str = "dev", repeats: int | None = None, before_build=None,
                 keep_logits: bool = False):
        """(measurement dict, built): ``measured`` for the callers that store it as JSON."""
        m, built = self.measured(data, recipe, runtime, split, repeats, before_build, keep_logits)
        return m.to_dict(), built

    def build(self, recipe, data, **kw):
        """The recipe's model, every step cached under ``cache_dir`` (``compress.pipeline.build``)."""
        from compress.pipeline import build  # torch and transformers: not imported for a sweep's option errors

        return build(recipe, data, self.cache_dir, **kw)

    def measured(self, data, recipe, runtime, split: str = "dev", repeats: int | None = None, before_build=None,
                 keep_logits: bool = False, on_progress=None):
        """Build (cached) and time under the machine-wide lock; (Measurement, built).
        ``repeats`` 1 when only the score is wanted: the timed passes predict the same rows alike.
        ``before_build``, ``on_progress``: see ``compress.pipeline.build``."""
        built = self.build(recipe, data, before_build=before_build, on_progress=on_progress)
        rows = self.rows(data, split)
        with timing_lock():
            m = measure(built.model_dir, rows, data.spec, runtime, self.cache_dir,
                        repeats=repeats or self.preset.measure_repeats, keep_logits=keep_logits)
        return m, built

    def rows(self, data, split: str):
        """The rows a split is scored on: ``eval_limit`` cuts the search split only, at a group's end."""
        rows = data.splits[split]
        return limit_rows(rows, self.config.eval_limit) if split == "dev" else rows

    def prepare_shared(self, data) -> None:
        """The work every trial shares, before the first trial's clock starts: else the first trial
        spends the time budget on it (on RTE with MPNet, 29 of the quick preset's 30 minutes)."""
        from compress.pipeline import prepare  # torch and transformers: not imported for a sweep's option errors

        seconds = prepare(self.base_recipe(), data, self.cache_dir)
        if seconds >= 1:
            log.info("shared work before the trials (the teacher's logits on the distillation rows): %.0f s, "
                     "not counted in the trials' time budget", seconds)

    def references(self, study, data) -> dict[str, Any]:
        """Teacher score and the out-of-the-box baseline, measured once per study and stored. One
        timed while the machine was busy is re-timed before it is used, a resumed study's too: a
        figure low by others' load would inflate every speed-up over it."""
        teacher = self.base_recipe()
        stored = study.user_attrs.get("references")
        if stored and not self.config.remeasure_references:
            refs = dict(stored)
        else:
            int8_rt = Runtime(engine="ort-int8", padding="dynamic", batch_size=1, instances=1,
                              threads=self.hardware.physical_cores)
            log.info("measuring the references: the teacher as %s (out-of-the-box) and as %s", BASELINE.label,
                     int8_rt.label)
            base, built = self.evaluate(data, teacher, BASELINE)
            int8, _ = self.evaluate(data, teacher, int8_rt)
            refs = {"teacher_model_dir": str(built.model_dir), "teacher_recipe": teacher.to_dict(),
                    "teacher_metrics": dict(built.metrics), "baseline": base, "teacher_ort_int8": int8,
                    "trivial": self.trivial(data, "dev").to_dict(), "notes": list(data.notes)}
        for key, what in (("baseline", "the out-of-the-box baseline"), ("teacher_ort_int8", "the ORT-int8 teacher")):
            if refs.get(key):  # at the runtime it was stored with
                rt = Runtime.from_dict(refs[key]["runtime"])
                refs[key] = unbusy(what, refs[key], lambda rt=rt: self.evaluate(data, teacher, rt)[0])
        if refs != stored:
            study.set_user_attr("references", refs)
        return refs

    def anchors(self, shape: tuple[int, int, int]) -> list[dict[str, Any]]:
        """The preset's known-good points as trial params, scaled to the teacher as the space was; those the
        space cannot hold are skipped."""
        out = []
        for anchor in self.preset.anchors:
            params = anchor_params(self._as_written.scale_point(anchor, shape[1], shape[2]), self.space, shape[0],
                                   self.hardware.physical_cores)
            if params is None:
                log.info("anchor %s is outside this search space; skipped", anchor)
            else:
                out.append(params)
        return out

    def trial_heldout(self, data, trial) -> dict[str, Any]:
        """A stored trial's recipe (cached model) and runtime, scored on the held-out split."""
        r = TrialRecord.from_trial(trial)
        m = self.evaluate(data, r.recipe, r.runtime, split="holdout", repeats=1, keep_logits=True)[0]
        rows, logits = data.splits["holdout"], m.pop("logits")
        judged = judge(data.spec, rows, logits, self.trivial(data, "holdout"), self.config.seed)
        teacher = self.teacher_heldout(self._study, data)
        diff = vs_teacher(data.spec, rows, logits, teacher["logits"], self.config.seed)
        return {**m, **judged.to_dict(), "vs_teacher": diff.to_dict()}

    def trivial(self, data, split: str):
        return trivial_baseline(data.spec, self.rows(data, split))

    def teacher_heldout(self, study, data) -> dict[str, Any]:
        """The teacher's held-out metrics, interval and logits (PyTorch fp32, as its search-split score),
        measured once per study: every pick is compared with it on the same rows."""
        if "teacher_heldout_logits" not in study.user_attrs:
            rt = Runtime(engine="torch-fp32", padding="dynamic", batch_size=32, instances=1,
                         threads=self.hardware.physical_cores)
            m, _ = self.evaluate(data, self.base_recipe(), rt, split="holdout", repeats=1, keep_logits=True)
            judged = judge(data.spec, data.splits["holdout"], m["logits"], self.trivial(data, "holdout"),
                           self.config.seed)
            study.set_user_attr("teacher_heldout", m["metrics"])
            study.set_user_attr("teacher_heldout_judged", judged.to_dict())
            study.set_user_attr("teacher_heldout_logits", [list(r) for r in m["logits"]])
        return {"metrics": study.user_attrs["teacher_heldout"], "logits": study.user_attrs["teacher_heldout_logits"],
                **study.user_attrs["teacher_heldout_judged"]}

    def confirm_pick(self, study, data, ranked, metric: str):
        """(trial, its held-out measurement, confirmation) — see autotune/confirm.py."""
        heldout_of = remembered(study, lambda t: self.trial_heldout(data, t), metric)
        top = self.config.confirm_top
        teacher = self.teacher_heldout(study, data)
        judged = {"teacher_heldout_interval": teacher["interval"], "trivial_heldout": study.user_attrs.get(
            "trivial", {}).get("holdout")}
        if top < 1:  # confirmation off: the fastest feasible trial, its held-out score only reported
            held = heldout_of(ranked[0])
            if held.get("beats_trivial") is False and not self.config.allow_weak_teacher:
                return None, None, {"refused": f"trial {ranked[0].number} is not better than the trivial baseline "
                                               f"beyond noise on the held-out split"}
            return ranked[0], held, {**judged, **_judged_fields(held)}
        teacher_held = float(teacher["metrics"][metric])
        floor = heldout_floor(self.config.floor, teacher_held)
        picked, checks, measured = confirm(ranked, heldout_of, floor, metric, top,
                                           need_beat_trivial=not self.config.allow_weak_teacher)
        study.set_user_attr(ATTR_CHECKS, [c.to_dict() for c in checks])
        if picked is None:
            if not any(c.beats_trivial is not False for c in checks) and not self.config.allow_weak_teacher:
                return None, None, {"refused": (
                    f"none of the {len(checks)} fastest feasible models is better than the trivial baseline beyond "
                    f"noise on the held-out split")}
            i = closest(checks)
            picked, held = next(t for t in ranked if t.number == checks[i].trial), measured[i]
            log.warning("none of the %d fastest feasible models met the floor %.4f on the held-out split "
                        "(teacher %.4f there); writing the closest, trial %d (%.4f), marked unconfirmed",
                        len(checks), floor, teacher_held, picked.number, checks[i].score)
        else:
            held = measured[-1]
        return picked, held, {"teacher_heldout_score": teacher_held, "heldout_floor": floor,
                              "heldout_confirmed": checks[-1].passed, "heldout_checks": [c.to_dict() for c in checks],
                              **judged, **_judged_fields(held)}

    def run(self) -> dict[str, Any]:
        cfg = self.config
        storage, data, shape = self.check()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "sweep_config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
        tokens = self.row_tokens(data)
        log.info("sweep %s: task %s, preset %s, %d trials, %s; space holds %d models / %d trials; "
                 "estimated cost ≤ %.0f min on this machine (rows of %.0f tokens on average)", cfg.name, cfg.task,
                 cfg.preset, self.n_trials, TimeBudget(self.time_budget_s, 0.0).total, *self.space.size(),
                 self.preset.estimate_s(self.n_trials, tokens) / 60, tokens)
        if tokens > 3 * REFERENCE_TOKENS:
            log.warning("task %s: its rows average %.0f tokens, %.0fx the SST-2 rows preset %s was sized on: each "
                        "build takes that much longer, and a trial once started runs to its end whatever the "
                        "time budget (--teacher-only checks the teacher first)", cfg.task, tokens,
                        tokens / REFERENCE_TOKENS, cfg.preset)
        metric, self._task_spec = data.spec.primary_metric, data.spec
        trivial = {split: self.trivial(data, split) for split in ("dev", "holdout")}
        for split, what in (("dev", "search"), ("holdout", "held-out")):
            log.info("trivial baseline on the %d %s %s: %s, %s %.4f", trivial[split].stats.units, what,
                     units_word(data.spec), trivial[split].kind, metric, trivial[split].metrics[metric])
        outcome = dict(task=cfg.task, metric=metric, run_dir=str(self.run_dir), trivial_kind=trivial["holdout"].kind,
                       trivial_search=trivial_interval(data.spec, trivial["dev"], cfg.seed),
                       trivial_heldout=trivial_interval(data.spec, trivial["holdout"], cfg.seed),
                       notes=tuple(data.notes))
        teacher_built = self.build(self.base_recipe(), data)
        teacher_score = float(teacher_built.metrics[metric])
        outcome["teacher_fit"] = fit_summary(teacher_built, metric)
        multi = cfg.objective == "multi"
        study = S.open_study(storage, cfg.name, multi, cfg.seed, self.n_trials)
        self._study = study
        held = self.teacher_heldout(study, data)
        outcome["teacher_heldout"] = Interval.from_dict(held["interval"])
        judged_teacher = Judged.from_dict(held)
        outcome["teacher_minus_trivial"] = judged_teacher.vs_trivial
        outcome["teacher_beats_trivial"] = judged_teacher.beats_trivial
        try:  # before any student is built
            weak = guard_teacher(cfg.task, data.spec, judged_teacher, trivial["holdout"], cfg.allow_weak_teacher)
        except UserInputError as exc:
            self.write_outcome(outcome, refused=str(exc))
            raise
        if weak:
            outcome["notes"] += (weak,)
        if cfg.teacher_only:
            log.info("teacher only: the teacher passes the guard on the held-out rows; no student searched")
            self.write_outcome(outcome)
            return {"study": cfg.name, "best": None, "teacher_only": True, "outcome": str(self.run_dir / "outcome.json")}
        floor = cfg.floor.threshold(teacher_score)
        log.info("teacher dev %s %.4f; floor %.4f (%s)", metric, teacher_score, floor, cfg.floor.describe())
        study.set_user_attr("task", cfg.task)
        study.set_user_attr("metric", metric)
        study.set_user_attr("floor", floor)
        study.set_user_attr("floor_rule", cfg.floor.describe())
        study.set_user_attr("hardware", self.hardware.fingerprint())
        study.set_user_attr("config", cfg.to_dict())
        study.set_user_attr("trivial", {s: t.to_dict() for s, t in trivial.items()})
        refs = self.references(study, data)
        if (refs["baseline"].get("intervals") or {}).get(metric):
            outcome["teacher_search"] = Interval.from_dict(refs["baseline"]["intervals"][metric])
        self.prepare_shared(data)
        ranked = self.search(study, data, shape, teacher_score, floor, metric, multi)
        if not ranked:
            why = S.no_feasible_trial(study, floor, metric, trivial["dev"].metrics[metric])
            log.warning("%s; no deployment config written", why)
            self.write_outcome(outcome, refused=why)
            return {"study": cfg.name, "best": None}
        best, held_m, confirmation = self.confirm_pick(study, data, ranked, metric)
        if best is None:
            log.warning("%s; no deployment config written", confirmation["refused"])
            self.write_outcome(outcome, refused=confirmation["refused"])
            return {"study": cfg.name, "best": None, "refused": confirmation["refused"]}
        return self.ship(study, best, held_m, confirmation, refs, metric, outcome, data=data)

    def search(self, study, data, shape, teacher_score: float, floor: float, metric: str, multi: bool):
        """The Optuna study under the floor; the feasible trials, fastest first."""
        cfg = self.config
        anchors = S.AnchorQueue(self.anchors(shape))
        anchors(study)
        stop = StopRequest()  # set by signals during the search; a second one ends a build between steps
        objective = S.Objective(
            space=self.space,
            teacher=S.Teacher(*shape, score=teacher_score),
            floor=floor,
            metric=metric,
            evaluate=lambda r, rt, watch: self.measured(data, r, rt, before_build=stop.before_build,
                                                         on_progress=watch),
            to_trial=lambda c: self.to_trial(c, shape),
            multi=multi,
            p99_limit_ms=cfg.p99_limit_ms,
            hopeless=HopelessRule(floor, cfg.hopeless_margin / 100) if cfg.stop_hopeless else None,
        )
        if cfg.retry_hopeless:
            S.requeue_hopeless(study)
        budget = TimeBudget(self.time_budget_s, spent_s(study), self.timeout_s)
        log.info("budget: %d trials (%d finished), %s", self.n_trials, finished_count(study), budget.describe())
        t0 = time.monotonic()
        siblings = (S.EngineSiblings(self.space.engines[0]),
                    S.RuntimeSiblings(self.space.batch_sizes, whole_machine(self.space.layouts))) \
            if self.preset.runtime_siblings else ()
        extra = (*siblings, anchors)  # siblings first: they are queued before the next anchor
        S.run(study, objective, self.n_trials, budget, callbacks=extra, stop=stop)
        self._stopped = stop.requested
        log.info("search %s in %.0f s", "stopped by a signal" if stop.requested else "finished", time.monotonic() - t0)
        S.log_hopeless(study)
        return S.ranked_feasible(study)

    def ship(self, study, best, held: dict[str, Any], confirmation, refs, metric: str, outcome: dict[str, Any],
             *, data):
        """The deployment config of the confirmed pick, its speed-ups re-timed beside the pick, and
        the sweep's outcome."""
        cfg = self.config
        retimed = self.retime_pick(data, best, refs)
        config = deploy_config(cfg.task, best, held, refs, self.hardware, study_name=cfg.name,
                               storage=cfg.storage or str(self.run_dir / "study.db"), metric=metric,
                               confirmation=confirmation, retimed=retimed)
        out = self.run_dir / "deploy" / f"{cfg.task}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(config.to_json())
        log.info("best: trial %d, %s %.4f (held-out %.4f), %.1f ex/s → %s", best.number, metric,
                 config.dev_score, config.heldout_score, config.throughput, out)
        log.info("%s", retimed.describe(config.stored_speedup_over_baseline, config.stored_speedup_over_int8_teacher))
        if retimed.over_int8_teacher < 1.0:  # the plain int8 teacher would serve as fast, at the teacher's score
            slower = (f"the pick re-timed at {retimed.over_int8_teacher:.2f}x the ORT-int8 teacher at its own runtime "
                      f"({retimed.runtime.label}): the teacher quantised to int8 there would serve as fast or faster")
            log.warning("%s", slower)
            outcome["notes"] += (slower,)
        diff = Interval.from_dict(held["vs_teacher"]) if held.get("vs_teacher") else None
        margin = (cfg.floor.below_teacher or 0) / 100 if cfg.floor.absolute is None else None
        note = resolution_note(diff, margin, self._task_spec) if diff else None
        if note:
            log.warning("%s", note)
            outcome["notes"] += (note,)
        pick_search = (TrialRecord.from_trial(best).measurement.intervals or {}).get(metric)
        self.write_outcome(
            outcome, pick_trial=best.number, pick_throughput=config.throughput,
            pick_search=Interval.from_dict(pick_search) if pick_search else None,
            pick_heldout=Interval.from_dict(held["interval"]) if held.get("interval") else None,
            pick_minus_teacher=diff, speedup_vs_baseline=config.speedup_over_baseline,
            speedup_vs_int8_teacher=config.speedup_over_int8_teacher, retimed_rounds=retimed.rounds,
            stored_speedup_vs_baseline=config.stored_speedup_over_baseline,
            stored_speedup_vs_int8_teacher=config.stored_speedup_over_int8_teacher,
            heldout_confirmed=config.heldout_confirmed, deploy_config=str(out))
        return {"study": cfg.name, "best": config.to_dict(), "path": str(out)}

    def retime_pick(self, data, best, refs: dict[str, Any]):
        """The pick, the out-of-the-box baseline and the ORT-int8 teacher at the pick's runtime timed
        beside each other (autotune/retime.py) on the first retime.ROWS search rows: a Retimed."""
        r = TrialRecord.from_trial(best)
        pick = self.build(r.recipe, data)  # cached
        teacher = self.build(self.base_recipe(), data)
        stored = r.measurement.throughput
        expected = {"pick": stored, "int8_teacher": stored,  # at the pick's runtime: the pick's order
                    "baseline": (refs.get("baseline") or {}).get("throughput")}
        return retime(Path(pick.model_dir), Path(teacher.model_dir), limit_rows(self.rows(data, "dev"), ROWS),
                      data.spec, r.runtime, self.cache_dir,
                      self.config.retime_rounds or rounds_for(self.preset.measure_repeats), expected)

    def write_outcome(self, fields: dict[str, Any], **more) -> None:
        path = SweepOutcome(**{**fields, **more}, stopped=getattr(self, "_stopped", False),
                            teacher_only=self.config.teacher_only).write(self.run_dir)
        log.info("outcome → %s", path)
