"""``run_sweep.py ablation``: FastFormers Table 3 — the optimisation ladder in one run."""
from __future__ import annotations

import argparse
from pathlib import Path

from autotune.commands.study_common import add_study_args, model_dir, prepare_input
from autotune.cost import USD_PER_HOUR_HELP


def add_parser(sub) -> None:
    p = sub.add_parser("ablation", help="Table 3: baseline → dynamic length → distillation → int8 + graph opt "
                                        "→ multi-instance → pruning, with speed-ups and cost")
    add_study_args(p)
    p.add_argument("--teacher", default=None, help="fine-tuned teacher directory (default: packaged MiniLM)")
    p.add_argument("--student", required=True, help="distilled student directory")
    p.add_argument("--pruned", default=None, help="pruned student directory (the last step is skipped without it)")
    p.add_argument("--usd-per-hour", type=float, default=None, help=USD_PER_HOUR_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autotune.studies import ablation

    inp = prepare_input(args)
    pruned = model_dir(args.pruned, inp) if args.pruned else None
    ablation(inp, model_dir(args.teacher, inp), model_dir(args.student, inp), pruned, args.usd_per_hour)
    print((Path(inp.out_dir) / "ablation.md").read_text())
    return 0
