"""The ``run_sweep.py`` command line: sub-commands are registered by their own modules."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from compress.errors import UserInputError

log = logging.getLogger("autotune")


def build_parser() -> argparse.ArgumentParser:
    from autotune.commands import COMMANDS

    parser = argparse.ArgumentParser(prog="run_sweep.py", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Libraries (onnxruntime's optimizer and quantizer log to the root logger) stay at WARNING;
    # the project's own loggers say what is happening.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for ours in ("autotune", "compress", "reports"):
        logging.getLogger(ours).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
