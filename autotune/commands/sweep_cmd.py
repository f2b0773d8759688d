"""``run_sweep.py sweep``: the Optuna search under an accuracy floor, resumable."""
from __future__ import annotations

# what only a command's run needs is imported inside it: --help and option errors stay fast

import argparse
import logging
from pathlib import Path

from autotune.commands.task_options import add_task_source_args, custom_spec
from compress.errors import UserInputError

log = logging.getLogger(__name__)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be zero or more")
    return value


def _strs(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="search compression × runtime for the fastest model above an accuracy floor")
    p.add_argument("--task", default=None, help="task name (default sst2), or a custom task spec (.json)")
    add_sweep_options(p)
    p.set_defaults(func=run)


def add_sweep_options(p: argparse.ArgumentParser) -> None:
    """Every sweep option but --task: shared with ``suite``, which runs one sweep per task."""
    add_task_source_args(p)
    p.add_argument("--run-dir", default=None, help="where the study, configs and reports go (default runs/<task>-<preset>)")
    p.add_argument("--cache-dir", default=None, help="model/artifact cache shared by runs (default <run-dir>/../cache)")
    p.add_argument("--preset", default="quick", help="quick (minutes) or overnight (hours)")
    p.add_argument("--n-trials", type=int, default=None,
                   help="trials in all, counting those of earlier runs of the study (default: the preset's)")
    p.add_argument("--time-budget", type=float, default=None,
                   help="seconds of trials in all, counting earlier runs of the study (default: the preset's; "
                        "inf: none, --n-trials alone ends the sweep)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds for this run only, within the time budget (default: no further limit)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default sqlite under --run-dir); "
                   "postgresql://USER@HOST/DB lets several machines share one study; PATH.log: an Optuna journal file")
    p.add_argument("--study-name", default=None)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--floor", type=float, default=None, help="absolute accuracy floor, e.g. 0.88")
    g.add_argument("--floor-below-teacher", type=float, default=1.0, help="floor = teacher − this many points (default 1.0)")
    p.add_argument("--objective", choices=("multi", "throughput"), default="multi",
                   help="multi: (accuracy, throughput) Pareto front; throughput: single objective under the floor")
    p.add_argument("--p99-limit-ms", type=float, default=None, help="p99 latency limit at the trial's batch size")
    p.add_argument("--teacher", default=None, help="teacher model (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--recipe-json", default=None, help="JSON file of Recipe field overrides")
    p.add_argument("--space-json", default=None, help="JSON file of a SearchSpace (replaces the preset's)")
    p.add_argument("--student-layers", type=_ints, default=None, help="e.g. 6,3,2")
    p.add_argument("--heads", type=_ints, default=None, help="heads kept per layer, e.g. 12,6")
    p.add_argument("--ffn", type=_ints, default=None, help="FFN neurons kept per layer, e.g. 1536,768")
    p.add_argument("--engines", type=_strs, default=None, help="e.g. ort-int8,ort-fp32")
    p.add_argument("--batch-sizes", type=_ints, default=None, help="e.g. 1,8")
    p.add_argument("--layouts", type=_strs, default=None, help="instances x threads, e.g. 1x2,2x1")
    p.add_argument("--oversubscribe", action="store_true", help="allow instances × threads beyond physical cores")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heartbeat", type=int, default=30, help="seconds between trial heartbeats")
    p.add_argument("--eval-limit", type=int, default=None, help="time and score only the first N search rows")
    p.add_argument("--no-report", action="store_true", help="skip the report at the end")
    p.add_argument("--confirm-top", type=_non_negative, default=10,
                   help="re-score this many of the fastest feasible trials on the held-out split and ship the "
                        "first that meets the floor there too (default 10; 0 = ship the fastest feasible)")
    p.add_argument("--retime-rounds", type=int, default=None, metavar="N",
                   help="interleaved rounds of the closing re-timing of the pick beside its baselines; the median "
                        "ratio ships (default: the preset's, 3 quick, 5 overnight; more on a noisy machine)")
    p.add_argument("--remeasure-references", action="store_true",
                   help="re-time the teacher and the out-of-the-box baseline stored with the study")
    p.add_argument("--allow-other-hardware", action="store_true",
                   help="resume a study whose trials were timed on another machine (refused by default)")
    p.add_argument("--holdout-fraction", type=float, default=0.5,
                   help="share of dev held out from the search for the pick's confirmation (default 0.5)")
    p.add_argument("--allow-weak-teacher", action="store_true",
                   help="go on when the teacher is not better than the task's trivial baseline held out")
    p.add_argument("--teacher-only", action="store_true",
                   help="fit and judge the teacher against the trivial baseline, then stop before any student "
                        "(which tasks a teacher serves, at the cost of its fit)")
    p.add_argument("--no-stop-hopeless", dest="stop_hopeless", action="store_false",
                   help="let every trial train to the end (default: a trial whose student cannot reach the floor "
                        "any more is stopped while it trains and kept as PRUNED)")
    p.add_argument("--hopeless-margin", type=float, default=1.0, metavar="POINTS",
                   help="benefit of the doubt, in points, before a training student is judged hopeless (default 1)")
    p.add_argument("--retry-hopeless", action="store_true",
                   help="queue again the trials an earlier run stopped as hopeless; they resume where they stopped")


def task_of(args: argparse.Namespace, task: str | None) -> tuple[str, dict | None]:
    """(task name, custom task spec as a dict or None): ``--task spec.json`` and the ``--custom-*``
    options name a custom task by its spec's name, so recipes, studies and configs agree on it."""
    from compress.custom_task import CustomTaskSpec

    spec = custom_spec(args, task)
    if spec is None and task and task.endswith(".json"):
        spec = CustomTaskSpec.from_file(task)
    if spec is None:
        return task or "sst2", None
    return spec.name, spec.absolute().to_dict()


def config_from_args(args: argparse.Namespace, task: str | None = None, run_dir: str | None = None,
                     cache_dir: str | None = None):
    """The SweepConfig the options describe; ``task``/``run_dir``/``cache_dir`` replace the options'
    (the suite runs one sweep per task with the same options)."""
    from dataclasses import replace

    from autotune.floor import AccuracyFloor
    from autotune.presets import get_preset
    from autotune.space import SearchSpace
    from autotune.sweep import SweepConfig
    from compress.readers import read_json_object

    preset = get_preset(args.preset)
    space = preset.space
    if args.space_json:
        space = SearchSpace.from_dict(read_json_object(args.space_json, "--space-json"))
    overrides = {k: v for k, v in dict(
        student_layers=args.student_layers, heads_kept=args.heads, ffn_kept=args.ffn, engines=args.engines,
        batch_sizes=args.batch_sizes,
    ).items() if v is not None}
    if args.layouts is not None:
        try:
            overrides["layouts"] = tuple(tuple(int(v) for v in x.lower().split("x")) for x in args.layouts)
        except ValueError:
            raise UserInputError(f"--layouts {','.join(args.layouts)}: use INSTANCESxTHREADS, e.g. 2x1") from None
    # counts given on the command line are absolute: they are not scaled to the teacher as a preset's are
    overrides |= {sized: None for kept, sized in (("heads_kept", "sized_for_heads"), ("ffn_kept", "sized_for_ffn"))
                  if kept in overrides}
    space = replace(space, **overrides)
    recipe = read_json_object(args.recipe_json, "--recipe-json") if args.recipe_json else {}
    if args.teacher:
        recipe["teacher"] = args.teacher
    name, custom = task_of(args, task if task is not None else getattr(args, "task", None))
    run_dir = run_dir or args.run_dir or str(Path("runs") / f"{name}-{args.preset}")
    floor = AccuracyFloor(absolute=args.floor, below_teacher=None if args.floor is not None else args.floor_below_teacher)
    return SweepConfig(task=name, custom_task=custom, run_dir=run_dir, data_dir=args.data_dir,
                       cache_dir=cache_dir or args.cache_dir,
                       preset=args.preset, n_trials=args.n_trials, time_budget_s=args.time_budget,
                       timeout_s=args.timeout, storage=args.storage,
                       study_name=args.study_name, floor=floor, objective=args.objective,
                       p99_limit_ms=args.p99_limit_ms, space=space, recipe=recipe, seed=args.seed,
                       heartbeat_s=args.heartbeat, oversubscribe=args.oversubscribe, eval_limit=args.eval_limit,
                       remeasure_references=args.remeasure_references, confirm_top=args.confirm_top,
                       retime_rounds=args.retime_rounds,
                       allow_other_hardware=args.allow_other_hardware, holdout_fraction=args.holdout_fraction,
                       allow_weak_teacher=args.allow_weak_teacher, teacher_only=args.teacher_only,
                       stop_hopeless=args.stop_hopeless, hopeless_margin=args.hopeless_margin,
                       retry_hopeless=args.retry_hopeless)


def run(args: argparse.Namespace) -> int:
    from autotune.sweep import Sweep

    config = config_from_args(args)
    result = Sweep(config).run()
    if result.get("teacher_only"):
        _print_teacher_only(Path(config.run_dir))
        return 0
    if not args.no_report:
        from reports.build import Inputs, write

        try:  # the study and the deploy config are already stored; a report can be regenerated
            paths = write(Inputs(run_dir=Path(config.run_dir), out_dir=Path(config.run_dir) / "report",
                                 storage=config.storage, study=config.name))
            result["report"] = str(paths["html"])
        except Exception as exc:  # noqa: BLE001 -- one line, the sweep's results stand
            log.error("report failed (%s); results are stored, rerun: run_sweep.py report --run %s",
                      _reason(exc), config.run_dir)
            result["report"] = "(failed, see the log)"
    result["length"] = _length(config)
    _print_best(result)
    return 0 if result.get("best") else 1


def _length(config) -> str:
    """How long the study has run, over every resumed run (read back from the storage)."""
    from reports.length import sweep_length
    from reports.load import load_run

    try:
        (res,) = load_run(Path(config.run_dir), config.storage, config.name)
        return sweep_length(res.trials).describe()
    except Exception as exc:  # noqa: BLE001 -- a summary line must not cost the sweep's results
        return f"(not read: {_reason(exc)})"


def _reason(exc: Exception) -> str:
    """An exception as one line for the closing summary."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _print_best(result: dict) -> None:
    """The best-recipe table on stdout: what the user reads when the sweep ends."""
    from autotune.deploy import DeployConfig
    from reports.load import describe_recipe

    best = result.get("best")
    if not best:
        print(f"study {result['study']}: no trial met the accuracy floor; length {result.get('length', '')}")
        return
    rt, r = best["runtime"], best["recipe"]
    rows = [
        ("task", best["task"]),
        ("recipe (L/H/F)", f"{describe_recipe(r)} ({best['recipe_key']})"),
        ("runtime", f"{rt['engine']} batch {rt['batch_size']}, {rt['instances']} x {rt['threads']} threads, "
                    f"cores {best['core_sets']}"),
        ("throughput", f"{best['throughput']:.1f} ex/s (stored trial)"),
        ("speed-up", DeployConfig.from_dict(best).describe_speedup()),
        ("latency", f"p50 {best['latency_p50_ms']:.2f} ms, p99 {best['latency_p99_ms']:.2f} ms"),
        (best["metric"], f"dev {_ci(best['dev_score'], best.get('dev_interval'))}, held-out {_ci(best['heldout_score'], best.get('heldout_interval'))}; "
                         f"teacher dev {best['teacher_score']:.4f}{_teacher_heldout(best)}"),
        ("trivial", _trivial(best)),
        ("length", result.get("length", "")),
        ("deploy config", result.get("path", "")),
        ("report", result.get("report", "(skipped)")),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))


def _print_teacher_only(run_dir: Path) -> None:
    """What --teacher-only concluded, from the outcome it wrote."""
    from autotune.outcome import SweepOutcome

    o = SweepOutcome.read(run_dir)
    rows = [("task", o.task), ("teacher fit", o.teacher_fit or "(used as it is)"),
            (f"teacher held-out {o.metric}", o.teacher_heldout.describe() if o.teacher_heldout else "—"),
            ("trivial", f"{o.trivial_kind}: {o.trivial_heldout.describe()}" if o.trivial_heldout else "—"),
            ("teacher − trivial", o.teacher_minus_trivial.describe() if o.teacher_minus_trivial else "—"),
            ("verdict", "the teacher beats the trivial baseline beyond noise: a sweep can go on (no student "
                        "searched: --teacher-only)" if o.teacher_beats_trivial else
             "the teacher does NOT beat the trivial baseline beyond noise (went on under --allow-weak-teacher)"),
            ("outcome", str(run_dir / "outcome.json"))]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))


def _ci(value: float, interval: dict | None) -> str:
    from compress.intervals import Interval

    return Interval.from_dict(interval).describe() if interval else f"{value:.4f}"


def _trivial(best: dict) -> str:
    t, metric = best.get("trivial_heldout"), best["metric"]
    if not t:
        return "(not stored)"
    diff = best.get("pick_minus_teacher")
    beats = {True: "the pick beats it beyond noise", False: "the pick does NOT beat it beyond noise (shipped "
             "under --allow-weak-teacher)", None: ""}[best.get("beats_trivial")]
    paired = f"; pick − teacher held out {_ci(diff['value'], diff)}" if diff else ""
    return f"{t['kind']}, held-out {metric} {t['metrics'][metric]:.4f}; {beats}{paired}"


def _teacher_heldout(best: dict) -> str:
    if best.get("heldout_confirmed") is None:
        return ""
    verdict = "meets" if best["heldout_confirmed"] else "MISSES"
    return (f", held-out {_ci(best['teacher_heldout_score'], best.get('teacher_heldout_interval'))} (the pick "
            f"{verdict} the held-out floor {best['heldout_floor']:.4f})")
