"""Options shared by several commands: where a task's data comes from."""
from __future__ import annotations

# what only a command's run needs is imported inside it: --help and option errors stay fast

import argparse

from compress.errors import UserInputError


def add_task_source_args(p: argparse.ArgumentParser, with_data_dir: bool = True) -> None:
    if with_data_dir:
        p.add_argument("--data-dir", default=None,
                       help="folder with the GLUE/SuperGLUE files (default: the Hugging Face hub)")
    g = p.add_argument_group("custom task (no code changes)")
    g.add_argument("--task-spec", help="JSON file describing a custom CSV/TSV/JSONL task")
    g.add_argument("--custom-train", help="custom task: train file (.csv, .tsv, .jsonl)")
    g.add_argument("--custom-dev", help="custom task: dev file")
    g.add_argument("--custom-test", help="custom task: test file")
    g.add_argument("--text-columns", help="custom task: one or two text columns, comma separated")
    g.add_argument("--label-column", default="label", help="custom task: label column")
    g.add_argument("--label-names", help="custom task: label names in index order, comma separated")


def custom_spec(args: argparse.Namespace, name: str | None):
    from compress.custom_task import CustomTaskSpec

    if getattr(args, "task_spec", None):
        return CustomTaskSpec.from_file(args.task_spec)
    if getattr(args, "custom_train", None) or getattr(args, "custom_dev", None):
        if not args.text_columns:
            raise UserInputError("--text-columns is required with --custom-train/--custom-dev")
        files = {s: getattr(args, f"custom_{s}") for s in ("train", "dev", "test") if getattr(args, f"custom_{s}")}
        return CustomTaskSpec(
            name=name or "custom",
            text_columns=tuple(c.strip() for c in args.text_columns.split(",")),
            label_column=args.label_column,
            files=files,
            label_names=tuple(c.strip() for c in args.label_names.split(",")) if args.label_names else (),
        )
    return None


def load_task_source(args: argparse.Namespace, task: str | None):
    """TaskData for ``task`` from a custom spec, ``--data-dir``, or the hub."""
    from compress.custom_task import load_custom
    from compress.tasks import load_task

    spec = custom_spec(args, task)
    if spec is not None:
        return load_custom(spec)
    if task is None:
        raise UserInputError("--task is required")
    return load_task(task, getattr(args, "data_dir", None))
