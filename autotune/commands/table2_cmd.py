"""``run_sweep.py table2``: FastFormers Table 2 — instances × threads vs no thread control."""
from __future__ import annotations

# what only a command's run needs is imported inside it: --help and option errors stay fast

import argparse

from autotune.commands.paper_table_options import add_study_args, model_dir, prepare_input


def add_parser(sub) -> None:
    p = sub.add_parser("table2", help="Table 2: every instances × threads layout vs the no-thread-control baseline")
    add_study_args(p)
    p.add_argument("--model", default=None, help="classifier directory (default: packaged MiniLM, fresh head)")
    p.add_argument("--engine", default="ort-int8", help="engine for every row (default ort-int8)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--padding", choices=("dynamic", "fixed"), default="dynamic")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autotune.paper_tables import table2
    from autotune.runtime import Runtime

    Runtime(args.engine, args.padding, args.batch_size, instances=1, threads=None)  # refused before any work
    inp = prepare_input(args)
    result = table2(inp, model_dir(args.model, inp), args.engine, args.batch_size, args.padding)
    print((inp.out_dir / "table2.md").read_text())
    return 0 if result.rows else 1
