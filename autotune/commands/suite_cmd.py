"""``run_sweep.py suite``: one sweep per task with the same options, one table (FastFormers Table 4).

Rerunning the same command resumes: finished tasks are skipped, the unfinished one resumes its study.
"""
from __future__ import annotations

# what only a command's run needs is imported inside it: --help and option errors stay fast

import argparse
import logging
from pathlib import Path

from autotune.commands.sweep_cmd import add_sweep_options, config_from_args

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser("suite", help="one sweep per task (resumable) and one table of the results")
    p.add_argument("--tasks", required=True,
                   help="comma-separated tasks, e.g. boolq,cb,copa,superglue-rte,wic,multirc (a .json entry is a "
                        "custom task spec)")
    add_sweep_options(p)
    p.set_defaults(func=run)
    for action in p._actions:  # the suite's folder holds one run folder per task: it must be named
        if action.dest == "run_dir":
            action.required, action.help = True, "suite folder: <run-dir>/<task> per task, suite.json, suite.md, report/"


def task_reports(records, args: argparse.Namespace) -> None:
    """Each swept task's own report, as ``sweep`` writes it; a failure costs only that report."""
    from reports.build import Inputs, write

    for r in records:
        if not (Path(r.run_dir) / "sweep_config.json").is_file():
            continue
        name = args.study_name or f"{r.task}-{args.preset}"
        try:
            write(Inputs(run_dir=Path(r.run_dir), out_dir=Path(r.run_dir) / "report", storage=args.storage, study=name))
        except Exception as exc:  # noqa: BLE001 -- the results are stored; the report can be regenerated
            log.error("report of task %s failed (%s: %s); rerun: run_sweep.py report --run %s", r.task,
                      type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "", r.run_dir)


def run(args: argparse.Namespace) -> int:
    from autotune.suite import run_suite
    from reports import suite as report

    records = run_suite(args, config_from_args)
    if not args.no_report:
        task_reports(records, args)
    paths = report.write(Path(args.run_dir))
    print(paths["suite_md"].read_text(), end="")
    print(f"\nsuite table: {paths['suite_md']}; report: {paths['html']}")
    return 0
