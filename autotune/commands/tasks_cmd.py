"""``run_sweep.py tasks``: every task found under a data directory with its split sizes."""
from __future__ import annotations

import argparse
import json

from autotune.commands.common import add_task_source_args, load_task_source


def add_parser(sub) -> None:
    p = sub.add_parser("tasks", help="list the tasks found under --data-dir with their split sizes")
    p.add_argument("--data-dir", required=True, help="folder with glue/ and superglue/ task folders")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_task_source_args(p, with_data_dir=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from compress.tasks import discover

    found = discover(args.data_dir)
    if args.task_spec or args.custom_train:
        found.append(load_task_source(args, None))
    rows = [d.summary() for d in found]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'task':<15} {'benchmark':<10} {'train':>8} {'dev':>8} {'test':>8}  metrics")
    for r in rows:
        sp = r["splits"]
        cell = lambda s: str(sp[s]["labelled"] if sp[s]["labelled"] else f"({sp[s]['rows']})") if s in sp else "-"
        print(f"{r['task']:<15} {r['benchmark']:<10} {cell('train'):>8} {cell('dev'):>8} {cell('test'):>8}  "
              f"{', '.join(r['metrics'])}")
        for note in r["notes"]:
            print(f"  note: {note}")
    print("counts are labelled examples; (n) = unlabelled rows")
    return 0
