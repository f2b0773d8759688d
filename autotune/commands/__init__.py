"""One module per ``run_sweep.py`` sub-command; each has ``add_parser(subparsers)``
which registers the command and sets ``func`` to a ``run(args) -> int``."""

COMMANDS = [
    "autotune.commands.tasks_cmd",
]
