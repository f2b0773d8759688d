"""``run_sweep.py ablation``: FastFormers Table 3 — the optimisation ladder in one run."""
from __future__ import annotations

# what only a command's run needs is imported inside it: --help and option errors stay fast

import argparse
from pathlib import Path

from autotune.commands.paper_table_options import add_study_args, model_dir, prepare_input
from autotune.cost import USD_PER_HOUR_HELP
from compress.errors import UserInputError
from compress.models import check_model_dir


def add_parser(sub) -> None:
    p = sub.add_parser("ablation", help="Table 3: baseline → dynamic length → distillation → int8 + graph opt "
                                        "→ multi-instance → pruning, with speed-ups and cost")
    add_study_args(p)
    p.add_argument("--teacher", default=None, help="fine-tuned teacher directory (default: packaged MiniLM)")
    p.add_argument("--student", required=True, help="distilled student directory")
    p.add_argument("--pruned", default=None, help="pruned student directory (the last step is skipped without it)")
    p.add_argument("--usd-per-hour", type=float, default=None, help=USD_PER_HOUR_HELP)
    p.add_argument("--pick", default=None, help="a sweep's deployment config (deploy/<task>.json): adds its recipe "
                   "and the teacher as ORT int8 under the same runtime, measured in this run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autotune.paper_tables import ablation

    inp = prepare_input(args)
    for option in ("--teacher", "--student", "--pruned"):  # all read before the first is built on
        check_model_dir(getattr(args, option[2:]), option)
    pick = _pick(args.pick) if args.pick else None
    pruned = model_dir(args.pruned, inp, "--pruned") if args.pruned else None
    ablation(inp, model_dir(args.teacher, inp, "--teacher"), model_dir(args.student, inp, "--student"), pruned,
             args.usd_per_hour, pick=pick)
    print((Path(inp.out_dir) / "ablation.md").read_text())
    return 0


def _pick(path: str):
    from autotune.deploy import find_configs
    from autotune.runtime import Runtime

    config = find_configs([Path(path)])
    if len(config) != 1:
        raise UserInputError(f"--pick {path}: expected one deployment config, found {len(config)}")
    return Path(config[0].model_dir), Runtime.from_dict(config[0].runtime)
