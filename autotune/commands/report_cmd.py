"""``run_sweep.py report``: regenerate the report of a run from its stored results only."""
from __future__ import annotations

# what only a command's run needs is imported inside it: --help and option errors stay fast

import argparse
from pathlib import Path

from autotune.cost import EXAMPLE_USD_PER_HOUR
from compress.errors import UserInputError


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="Pareto plots, Table 2/3 charts, best recipes, report.html from stored results")
    p.add_argument("--run", required=True, help="the sweep's run directory")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default sqlite:///RUN/study.db)")
    p.add_argument("--study", default=None, help="only this study (default: every study in the storage)")
    p.add_argument("--table2", default=None, help="table2.json or a folder holding it (default: found under --run)")
    p.add_argument("--ablation", default=None, help="ablation.json or a folder holding it (default: found under --run)")
    p.add_argument("--significance", nargs="+", default=[], metavar="MODEL_DIR",
                   help="also show the stored significance scores of these model dirs (or significance.json files)")
    p.add_argument("--out", default=None, help="output folder (default RUN/report)")
    p.add_argument("--usd-per-hour", type=float, default=EXAMPLE_USD_PER_HOUR,
                   help=f"machine price for the cost column (default {EXAMPLE_USD_PER_HOUR}, an example price)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reports.build import Inputs, write

    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise UserInputError(f"--run {run_dir}: no such directory")
    if args.usd_per_hour <= 0:
        raise UserInputError(f"--usd-per-hour {args.usd_per_hour}: must be positive")
    paths = write(Inputs(run_dir=run_dir, out_dir=Path(args.out) if args.out else run_dir / "report",
                         storage=args.storage, study=args.study,
                         table2=Path(args.table2) if args.table2 else None,
                         ablation=Path(args.ablation) if args.ablation else None, usd_per_hour=args.usd_per_hour,
                         significance=tuple(Path(p) for p in args.significance)))
    print(paths["html"])
    return 0
