"""Options and set-up shared by the fixed-study commands (table2, ablation)."""
from __future__ import annotations

# what only a command's run needs is imported inside it: --help and option errors stay fast

import argparse
import logging
from pathlib import Path

from autotune.commands.task_options import add_task_source_args, load_task_source
from compress.errors import UserInputError, writable_dir
from compress.models import check_model_dir

log = logging.getLogger(__name__)


def add_study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", help="registered task name (or use the custom task options)")
    p.add_argument("--out", required=True, help="output directory for <study>.json, <study>.md and runs/")
    p.add_argument("--split", default="dev", help="labelled split to time and score (default dev)")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows (whole groups kept)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per configuration; the median is kept")
    p.add_argument("--cache-dir", default=None, help="export/quantisation cache (default <out>/../cache)")
    p.add_argument("--energy", default="auto", help="auto, impact-tracker, rapl or cpu-time")
    add_task_source_args(p)


def prepare_input(args: argparse.Namespace):
    """(StudyInput, num_labels) from the parsed options."""
    from autotune.paper_tables import StudyInput
    from compress.tasks import limit_rows

    data = load_task_source(args, args.task)
    rows = data.splits.get(args.split, ())
    if not rows:
        raise UserInputError(f"task {data.spec.name}: no {args.split} split (found {', '.join(data.splits) or 'none'})")
    if any(ex.label is None for ex in rows):
        raise UserInputError(f"task {data.spec.name}: the {args.split} split is unlabelled; pick a labelled --split")
    if args.limit is not None and args.limit < 1:
        raise UserInputError(f"--limit must be at least 1, got {args.limit}")
    if args.repeats < 1:
        raise UserInputError(f"--repeats must be at least 1, got {args.repeats}")
    from autotune.energy import TRACKERS

    if args.energy not in ("auto", *TRACKERS):
        raise UserInputError(f"--energy {args.energy}: choose from auto, {', '.join(TRACKERS)}")
    out = Path(args.out)
    writable_dir("--out", out)
    if args.cache_dir:
        writable_dir("--cache-dir", Path(args.cache_dir))
    cache = Path(args.cache_dir) if args.cache_dir else out.resolve().parent / "cache"
    return StudyInput(limit_rows(rows, args.limit), data.spec, cache, out, args.repeats, args.energy,
                      notes=tuple(data.notes))


def model_dir(source: str | None, inp, option: str = "--model") -> Path:
    """A classifier directory for ``source`` (a bare encoder gets a seeded fresh head, with a warning)."""
    from autotune.modeldir import classifier_dir

    check_model_dir(source, option)
    path = classifier_dir(source, inp.spec.num_labels, inp.cache_dir)
    if path.parent.name == "classifier":
        log.warning("model %s: untrained head — timings are valid, its accuracy is chance level", source or "packaged")
    return path
