"""``run_sweep.py build``: build one recipe's model (every step cached) and print where it is."""
from __future__ import annotations

# what only a command's run needs is imported inside it: --help and option errors stay fast

import argparse
import json
from dataclasses import fields
from pathlib import Path

from autotune.commands.task_options import add_task_source_args, load_task_source
from compress.errors import UserInputError, writable_dir
from compress.models import check_model_dir, load_classifier, load_tokenizer
from compress.recipe import Recipe

_BOOL = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def add_parser(sub) -> None:
    p = sub.add_parser("build", help="build the model a recipe describes (teacher, student, pruning), cached")
    p.add_argument("--task", help="task name (default: the recipe's)")
    p.add_argument("--recipe", help="recipe JSON file; options below override its fields")
    p.add_argument("--cache-dir", "--cache", dest="cache_dir", default=".cache/compress",
                   help="artifact cache folder, as sweep's --cache-dir (default: .cache/compress; --cache: the old name)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--holdout-fraction", type=float, default=None, metavar="F",
                   help="split dev as a sweep with this --holdout-fraction and the recipe's seed does: the "
                        "model shares the sweep's cache keys, never sees the held-out rows, and is scored on them")
    add_task_source_args(p)
    g = p.add_argument_group("recipe fields (inline)")
    for f in fields(Recipe):
        if f.name != "task":
            g.add_argument(f"--{f.name.replace('_', '-')}", dest=f"r_{f.name}", metavar=f.name.upper(),
                           help=f"default: {f.default!r}")
    p.set_defaults(func=run)


def _value(name: str, text: str, kind: str):
    """``text`` as the field's annotated type (``kind``, e.g. "float | None")."""
    if text.lower() in ("none", "null"):
        return None
    try:
        if "bool" in kind:
            return _BOOL[text.lower()]
        if "float" in kind:
            return float(text)
        if "int" in kind:
            return int(text)
    except (KeyError, ValueError):
        raise UserInputError(f"--{name.replace('_', '-')}: bad value {text!r}") from None
    return text


def recipe_from_args(args: argparse.Namespace):
    from compress.readers import read_json_object

    data: dict = {}
    if args.recipe:
        data = Recipe.from_dict(read_json_object(args.recipe, "--recipe")).to_dict()
    for f in fields(Recipe):
        text = getattr(args, f"r_{f.name}", None)
        if text is not None:
            data[f.name] = _value(f.name, text, str(f.type))
    if args.task:
        data["task"] = args.task
    if "task" not in data:
        raise UserInputError("--task is required (or a --recipe that names one)")
    return Recipe.from_dict(data)


def run(args: argparse.Namespace) -> int:
    from autotune.task_data import search_split

    recipe = recipe_from_args(args)
    if args.holdout_fraction is not None and not 0 < args.holdout_fraction < 1:
        raise UserInputError(f"--holdout-fraction {args.holdout_fraction}: must be between 0 and 1")
    check_model_dir(recipe.teacher, "--teacher")
    if recipe.student_init:
        check_model_dir(recipe.student_init, "--student-init")
    writable_dir("--cache-dir", Path(args.cache_dir))
    data = load_task_source(args, recipe.task)
    if args.holdout_fraction is not None:
        data = search_split(data, recipe.seed, args.holdout_fraction)
    from compress.pipeline import build  # torch and transformers: after the checks, so a refusal is quick

    built = build(recipe, data, Path(args.cache_dir), progress=not args.no_progress)
    held = None if args.holdout_fraction is None else _score(built.model_dir, data, "holdout",
                                                             recipe.max_length or data.spec.max_length)
    if args.json:
        print(json.dumps({**built.to_dict(), "holdout_metrics": held}, indent=2))
        return 0
    for s in built.steps:
        print(f"{s.name:<10} {'hit ' if s.hit else 'built'} {s.seconds:8.1f} s  {s.path}")
    print(f"model: {built.model_dir}\ndev: {_fmt(built.metrics)}")
    if held is not None:
        print(f"held-out dev: {_fmt(held)}")
    print(f"recipe key: {recipe.key()}  ({built.seconds:.1f} s)")
    return 0


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())


def _score(model_dir: Path, data, split: str, max_length: int) -> dict[str, float]:
    """PyTorch fp32 metrics on ``split``, as the build's own dev metrics are."""
    from compress.batching import encode
    from compress.train import evaluate

    rows = [ex for ex in data.splits[split] if ex.label is not None]
    enc = encode(load_tokenizer(model_dir), rows, max_length)
    return evaluate(load_classifier(model_dir), data.spec, rows, enc)
