"""The ``run_sweep.py`` command line: sub-commands are registered by their own modules."""
from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
import traceback

from autotune.commands import COMMANDS
from compress.errors import UserInputError

log = logging.getLogger("autotune")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line naming it (``error: --option VALUE: what is wrong``),
    exit 2, like every other refusal; the usage is in ``--help``."""

    def error(self, message: str):
        found = re.match(r"argument ([^:]+): (?:invalid choice: '(.*)' \(choose from (.*)\)|invalid (\w+) value: "
                         r"'(.*)'|(.*))$", message)
        if found:
            option, choice, choices, kind, value, rest = found.groups()
            option = option.split("/")[-1]  # "-v/--verbose" -> "--verbose"
            message = (f"{option} {choice}: choose from {choices}" if choice is not None else
                       f"{option} {value}: not a valid {kind}" if kind else f"{option} {rest}")
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="run_sweep.py", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the traceback behind an error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
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
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
