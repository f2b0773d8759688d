"""``run_sweep.py tasks``: every task found under a data directory with its split sizes."""
from __future__ import annotations

# what only a command's run needs is imported inside it: --help and option errors stay fast

import argparse
import json

from autotune.commands.task_options import add_task_source_args, load_task_source


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
    rows = [{**d.summary(), "trivial": trivial(d)} for d in found]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'task':<15} {'benchmark':<10} {'train':>8} {'dev':>8} {'test':>8}  metrics")
    for r in rows:
        sp = r["splits"]
        cell = lambda s: str(sp[s]["labelled"] if sp[s]["labelled"] else f"({sp[s]['rows']})") if s in sp else "-"
        print(f"{r['task']:<15} {r['benchmark']:<10} {cell('train'):>8} {cell('dev'):>8} {cell('test'):>8}  "
              f"{', '.join(r['metrics'])}")
        for split, t in r["trivial"].items():
            print(f"  trivial on {split}: {t['kind']}, " + ", ".join(f"{k} {v:.4f}" for k, v in t["metrics"].items()))
        for note in r["notes"]:
            print(f"  note: {note}")
    print("counts are labelled examples; (n) = unlabelled rows")
    return 0


def trivial(data) -> dict[str, dict]:
    """The trivial baseline (compress/baselines.py) of each labelled split: what a model must beat."""
    from compress.baselines import trivial_baseline

    out = {}
    for split, rows in data.splits.items():
        labelled = [ex for ex in rows if ex.label is not None]
        if labelled and len(labelled) == len(rows):
            out[split] = trivial_baseline(data.spec, labelled).to_dict()
    return out
