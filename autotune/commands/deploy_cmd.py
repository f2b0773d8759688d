"""``run_sweep.py deploy``: pick the deployment config measured on this hardware."""
from __future__ import annotations

# what only a command's run needs is imported inside it: --help and option errors stay fast

import argparse
import logging
from pathlib import Path

from compress.errors import writable_dir

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser("deploy", help="pick, from sweep results, the config measured on this hardware")
    p.add_argument("--results", nargs="+", required=True, help="run directories or deployment config files")
    p.add_argument("--task", required=True)
    p.add_argument("--out", default=None, help="write the chosen config here (default: print it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autotune.deploy import find_configs, pick
    from autotune.hardware import detect

    if args.out:
        writable_dir("--out", Path(args.out).parent)
    chosen = pick(find_configs([Path(p) for p in args.results]), args.task, detect().hash)
    log.info("%s: trial %d, %.1f ex/s stored = %s", chosen.task, chosen.trial, chosen.throughput,
             chosen.describe_speedup())  # on stderr: stdout is the config
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(chosen.to_json())
    else:
        print(chosen.to_json())
    return 0
