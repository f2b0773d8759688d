"""One sweep per task and one table (FastFormers Table 4), resumable after any kill.

Each task's own ``outcome.json`` is the record that it is done: a rerun skips those tasks and
the unfinished one resumes its study by itself. ``suite.json`` is rewritten after every task, so
a kill loses nothing already computed.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from autotune import sweep  # sweep.Sweep, looked up at each call: tests stand in for it
from autotune.outcome import SweepOutcome
from compress.custom_task import CustomTaskSpec
from compress.errors import UserInputError
from compress.intervals import Interval
from compress.tasks import get_task, task_dir
from reports.published import Published, published

log = logging.getLogger(__name__)
FILE = "suite.json"
RESERVED = ("cache", "report")  # folders of the suite run dir itself


@dataclass(frozen=True)
class SuiteRecord:
    task: str
    metric: str
    run_dir: str
    trivial_kind: str | None = None
    trivial_heldout: Interval | None = None
    teacher_heldout: Interval | None = None
    teacher_minus_trivial: Interval | None = None
    teacher_beats_trivial: bool | None = None
    pick_heldout: Interval | None = None
    speedup_vs_baseline: float | None = None
    speedup_vs_int8_teacher: float | None = None
    heldout_confirmed: bool | None = None
    refused: str | None = None  # None, or the one-line reason nothing was shipped
    published: Published | None = None
    # the speed-ups re-timed beside the pick in this many rounds (SweepOutcome); None: stored figures
    retimed_rounds: int | None = None
    teacher_only: bool = False  # --teacher-only: the teacher judged, no student searched
    teacher_fit: str | None = None

    @classmethod
    def from_outcome(cls, o: SweepOutcome) -> "SuiteRecord":
        return cls(task=o.task, metric=o.metric, run_dir=o.run_dir, trivial_kind=o.trivial_kind,
                   trivial_heldout=o.trivial_heldout, teacher_heldout=o.teacher_heldout, pick_heldout=o.pick_heldout,
                   teacher_minus_trivial=o.teacher_minus_trivial, teacher_beats_trivial=o.teacher_beats_trivial,
                   speedup_vs_baseline=o.speedup_vs_baseline, speedup_vs_int8_teacher=o.speedup_vs_int8_teacher,
                   heldout_confirmed=o.heldout_confirmed, refused=o.refused, published=published(o.task),
                   retimed_rounds=o.retimed_rounds, teacher_only=o.teacher_only, teacher_fit=o.teacher_fit)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SuiteRecord":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("trivial_heldout", "teacher_heldout", "teacher_minus_trivial", "pick_heldout"):
            d[k] = Interval.from_dict(d[k]) if d.get(k) is not None else None
        d["published"] = Published.from_dict(d["published"]) if d.get("published") else None
        return cls(**d)


@dataclass(frozen=True)
class Suite:
    tasks: tuple[str, ...]  # every task asked for, in order; those without a record are not run yet
    records: tuple[SuiteRecord, ...] = field(default=())
    preset: str = "quick"

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": list(self.tasks), "preset": self.preset, "records": [r.to_dict() for r in self.records]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Suite":
        return cls(tuple(d["tasks"]), tuple(SuiteRecord.from_dict(r) for r in d.get("records", ())),
                   d.get("preset", "quick"))

    def write(self, suite_dir: Path) -> Path:
        path = Path(suite_dir) / FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        tmp.replace(path)  # a kill mid-write leaves the previous file whole
        return path

    @classmethod
    def read(cls, suite_dir: Path) -> "Suite":
        path = Path(suite_dir) / FILE
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise UserInputError(f"{path}: no such file (run the suite first)") from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UserInputError(f"{path}: not a suite file ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class TaskEntry:
    entry: str  # as given in --tasks: a task name or a custom spec's .json path
    name: str  # the registered or spec name: the run dir's name
    metric: str


def resolve_tasks(text: str, data_dir: str | None) -> list[TaskEntry]:
    """Every --tasks entry checked (and its data found) before any work, each refusal one line."""
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not entries:
        raise UserInputError("--tasks: name at least one task, e.g. --tasks cb,copa")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise UserInputError(f"--data-dir {data_dir}: no such directory")
    out: list[TaskEntry] = []
    for e in entries:
        if e.endswith(".json"):
            if not Path(e).is_file():
                raise UserInputError(f"--tasks {e}: no such custom task spec file")
            spec = CustomTaskSpec.from_file(e)
            missing = [p for p in spec.files.values() if not Path(p).is_file()]
            if missing:
                raise UserInputError(f"--tasks {e}: data file {missing[0]} not found")
            name, metric = spec.name, spec.metrics[0]
        else:
            try:
                spec = get_task(e)
            except UserInputError as exc:
                raise UserInputError(f"--tasks {e}: {exc}") from None
            if data_dir is not None and task_dir(spec, Path(data_dir)) is None:
                raise UserInputError(f"--data-dir {data_dir}: no {spec.benchmark}/{spec.folder} folder for task {e}")
            name, metric = spec.name, spec.primary_metric
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or name in RESERVED:
            raise UserInputError(f"--tasks {e}: task name {name!r} cannot name a run folder (reserved or unsafe)")
        if name in [t.name for t in out]:
            raise UserInputError(f"--tasks {e}: task {name} is named twice")
        out.append(TaskEntry(e, name, metric))
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def run_task(config, t: TaskEntry) -> SuiteRecord:
    """One task's sweep; a refusal or a failure is a result, so the suite goes on. Only the sweep
    writes outcome.json: a task that failed without one is retried by the next run."""
    run_dir = Path(config.run_dir)

    def failed(reason: str) -> SuiteRecord:
        return SuiteRecord(t.name, t.metric, str(run_dir), refused=reason, published=published(t.name))

    try:
        sweep.Sweep(config).run()
    except UserInputError as exc:
        done = SweepOutcome.read(run_dir)
        if done is not None and done.refused:  # the sweep's own refusal (weak teacher, ...), stored
            log.warning("suite: task %s refused: %s", t.name, done.refused)
            return SuiteRecord.from_outcome(done)
        log.error("suite: task %s: %s", t.name, exc)
        return failed(f"error: {exc}")
    except Exception as exc:  # noqa: BLE001 -- one task's failure must not cost the others
        log.error("suite: task %s failed (%s); rerun the suite to retry it", t.name, _first_line(exc))
        return failed(f"failed: {_first_line(exc)}")
    done = SweepOutcome.read(run_dir)
    return SuiteRecord.from_outcome(done) if done else failed("failed: the sweep wrote no outcome.json")


def prepare(args: argparse.Namespace, config_from_args: Callable[..., Any]) -> list[tuple[TaskEntry, Any]]:
    """(task, SweepConfig) for every task, all checked before any work or any folder is made;
    ``config_from_args(args, task=, run_dir=, cache_dir=)`` is the CLI's option mapping."""
    if getattr(args, "task_spec", None) or getattr(args, "custom_train", None) or getattr(args, "custom_dev", None):
        raise UserInputError("--task-spec/--custom-*: name custom tasks in --tasks as spec files, e.g. --tasks cb,my.json")
    tasks = resolve_tasks(args.tasks, args.data_dir)
    if args.storage and args.study_name and len(tasks) > 1:
        raise UserInputError(f"--study-name {args.study_name}: one name for {len(tasks)} studies in one --storage; "
                             "leave it out (each study is named <task>-<preset>)")
    suite_dir = Path(args.run_dir)
    if suite_dir.exists() and not suite_dir.is_dir():
        raise UserInputError(f"--run-dir {suite_dir}: not a directory")
    cache_dir = args.cache_dir or str(suite_dir / "cache")
    out = []
    for t in tasks:
        config = config_from_args(args, task=t.entry if t.entry.endswith(".json") else t.name,
                                  run_dir=str(suite_dir / t.name), cache_dir=cache_dir)
        # its own option checks, and its data, teacher and space read: a bad byte in the last task's
        # file is refused before the first task trains for an hour
        sweep.Sweep(config).check_inputs(announce=False)
        out.append((t, config))
    return out


def run_suite(args: argparse.Namespace, config_from_args: Callable[..., Any]) -> list[SuiteRecord]:
    """Every task checked first, then one sweep each in order; a task with an outcome.json is done."""
    from reports.suite import write_markdown  # cycle: reports.suite imports this module

    planned = prepare(args, config_from_args)
    suite_dir = Path(args.run_dir)
    suite_dir.mkdir(parents=True, exist_ok=True)
    names = tuple(t.name for t, _ in planned)
    records: list[SuiteRecord] = []
    for i, (t, config) in enumerate(planned, 1):
        done = SweepOutcome.read(Path(config.run_dir))
        # a teacher-only outcome does not finish a full sweep (its teacher is cached: the rerun is cheap)
        if done is not None and not done.stopped and (config.teacher_only or not done.teacher_only):
            log.info("suite: task %s (%d/%d) already done; skipped", t.name, i, len(planned))
            records.append(SuiteRecord.from_outcome(done))
        else:
            log.info("suite: task %s (%d/%d) → %s", t.name, i, len(planned), config.run_dir)
            records.append(run_task(config, t))
        Suite(names, tuple(records), args.preset).write(suite_dir)
        write_markdown(suite_dir)
        after = SweepOutcome.read(Path(config.run_dir))
        if after is not None and after.stopped:  # the user stopped the sweep: stop the suite, resume it later
            log.warning("suite: task %s was stopped by a signal; rerun the suite to finish it and the rest", t.name)
            break
    return records
