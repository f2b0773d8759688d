"""A task's data as every command and the API split it: one function, so a build, a sweep and a
benchmark cut the same rows and share cache keys."""
from __future__ import annotations

from compress.custom_task import CustomTaskSpec, load_custom
from compress.errors import UserInputError
from compress.tasks import ensure_train_split, hold_out, load_task


def load_data(task: str | dict, data_dir: str | None, seed: int = 0, holdout_fraction: float = 0.5):
    """Task data ready for a search: a train split (carved if need be) and a held-out dev part.

    ``task`` is a registered task name, the path of a custom task spec (.json), or a spec's dict.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise UserInputError(f"--holdout-fraction {holdout_fraction:g}: must be between 0 and 1")
    if isinstance(task, dict):
        data = load_custom(CustomTaskSpec.from_dict(task))
    elif task.endswith(".json"):
        data = load_custom(CustomTaskSpec.from_file(task))
    else:
        data = load_task(task, data_dir)
    if not data.labelled("dev") and not data.labelled("train"):
        raise UserInputError(f"task {task}: no labelled split")
    return search_split(data, seed, holdout_fraction)


def search_split(data, seed: int, holdout_fraction: float):
    """A train split (carved from dev if the task has none) and dev cut into search and held-out
    rows: one function for every command, so a build and a sweep split alike and share cache keys."""
    return hold_out(ensure_train_split(data, seed=seed), holdout_fraction, seed)
