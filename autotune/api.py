"""The harness from Python: the pieces the CLI maps its options onto, each returning a typed result.

    from autotune import api
    data = api.load_task("sst2", data_dir="../shared/data")           # TaskData: train, search and held-out dev
    built = api.build(api.Recipe(task="sst2", student_layers=3), data, "runs/cache")   # Built (cached steps)
    m = api.measure(built.model_dir, data, api.Runtime(engine="ort-int8", batch_size=8), "runs/cache")
    with api.timing(built.model_dir, data, api.Runtime(engine="ort-int8"), "runs/cache") as t:  # workers kept
        rounds = [t.measure(repeats=1) for _ in range(3)]
    outcome = api.sweep(api.SweepConfig(task="sst2", data_dir="../shared/data", run_dir="runs/sst2"))
    paths = api.report("runs/sst2")

Bad input raises ``UserInputError`` with the CLI's one-line message; a sweep's refusal (a teacher no
better than the trivial baseline, no feasible trial) is a result: the returned outcome's ``refused``.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from autotune.runtime import Runtime
from compress.errors import UserInputError
from compress.recipe import Recipe

if TYPE_CHECKING:
    from autotune.measure import Measurement, Timing
    from autotune.outcome import SweepOutcome
    from autotune.sweep import SweepConfig
    from compress.pipeline import Built
    from compress.tasks import TaskData

# The rest loads on first use: a script that imports this module is imported again by every spawned
# timing worker (multiprocessing's spawn re-runs the main module's imports), and the pipeline, the
# sweep and the report pull in torch, transformers, optuna and pandas: about 9 s a worker on 2 cores.
_LAZY = {"Built": "compress.pipeline", "Measurement": "autotune.measure", "SweepOutcome": "autotune.outcome",
         "SweepConfig": "autotune.sweep", "TaskData": "compress.tasks", "Timing": "autotune.measure"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Built", "Measurement", "Recipe", "Runtime", "SweepConfig", "SweepOutcome", "TaskData", "Timing",
           "UserInputError", "build", "load_task", "measure", "report", "sweep", "timing"]

PathLike = str | os.PathLike


def load_task(task: str | PathLike, data_dir: PathLike | None = None, seed: int = 0,
              holdout_fraction: float = 0.5) -> TaskData:
    """A registered task by name, or a custom task's spec file (.json), split as a sweep splits it:
    train (carved from dev where a task has none), dev's search half, and the held-out half."""
    from autotune.task_data import load_data

    return load_data(str(task), None if data_dir is None else str(data_dir), seed, holdout_fraction)


def build(recipe: Recipe, data: TaskData, cache_dir: PathLike, progress: bool = False) -> Built:
    """The recipe's model, each step (teacher, student, pruning, ...) cached by content key."""
    from compress import pipeline

    recipe.check()
    return pipeline.build(recipe, data, Path(cache_dir), progress=progress)


def measure(model_dir: PathLike, data: TaskData, runtime: Runtime, cache_dir: PathLike,
            split: Literal["dev", "holdout"] = "dev", limit: int | None = None, repeats: int = 3) -> Measurement:
    """Throughput, latency, energy and the task's metrics (with intervals) of the timed predictions,
    on the pinned pool; ``limit`` keeps the first rows, whole groups for grouped tasks."""
    from autotune import measure as M

    return M.measure(model_dir, _rows(data, split, limit), data.spec, runtime, cache_dir, repeats=repeats)


def timing(model_dir: PathLike, data: TaskData, runtime: Runtime, cache_dir: PathLike,
           split: Literal["dev", "holdout"] = "dev", limit: int | None = None) -> Timing:
    """A model made ready to time once (exported, quantised, its pinned workers started and warmed up),
    then measured as often as asked: ``with api.timing(...) as t: t.measure(repeats=1)``. Several models
    timed in turn, round after round (the interleaving a ratio needs), pay each pool's start-up once."""
    from autotune import measure as M

    return M.Timing(model_dir, _rows(data, split, limit), data.spec, runtime, cache_dir)


def _rows(data: TaskData, split: str, limit: int | None) -> tuple:
    from compress.tasks import limit_rows

    return limit_rows(data.splits.get(split) or (), limit)


def sweep(config: SweepConfig) -> SweepOutcome:
    """One Optuna sweep (resumed when its storage holds the study); what it concluded, read back
    from the ``outcome.json`` it wrote."""
    from autotune.outcome import SweepOutcome
    from autotune.sweep import Sweep

    try:
        Sweep(config).run()
    except UserInputError:
        done = SweepOutcome.read(Path(config.run_dir))
        if done is None or not done.refused:  # bad input: nothing was concluded
            raise
        return done
    done = SweepOutcome.read(Path(config.run_dir))
    if done is None:
        raise RuntimeError(f"sweep {config.name}: no {Path(config.run_dir) / 'outcome.json'} written")
    return done


def report(run_dir: PathLike, out_dir: PathLike | None = None, storage: str | None = None,
           study: str | None = None) -> dict[str, Path]:
    """report.html, report.md, trials.csv and figures from the stored results only."""
    from reports.build import Inputs, write

    run_dir = Path(run_dir)
    return write(Inputs(run_dir=run_dir, out_dir=Path(out_dir) if out_dir else run_dir / "report", storage=storage,
                        study=study))
