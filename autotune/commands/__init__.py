"""One module per ``run_sweep.py`` sub-command; each has ``add_parser(subparsers)``
which registers the command and sets ``func`` to a ``run(args) -> int``."""

COMMANDS = [
    "autotune.commands.tasks_cmd",
    "autotune.commands.build_cmd",
    "autotune.commands.sweep_cmd",
    "autotune.commands.suite_cmd",
    "autotune.commands.deploy_cmd",
    "autotune.commands.table2_cmd",
    "autotune.commands.ablation_cmd",
    "autotune.commands.report_cmd",
]
