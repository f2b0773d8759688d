"""The fixed studies' results (Table 2: instances × threads; Table 3: the ablation ladder) as report
frames, read through the typed records their writer uses (autotune/paper_results.py)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import pandas as pd

from autotune.paper_results import AblationResult, Table2Result
from compress.errors import UserInputError

log = logging.getLogger(__name__)

TABLE2_COLUMNS = ["source", "task", "layout", "instances", "threads", "throughput", "speedup",
                  "accuracy", "latency_p99_ms", "baseline"]
ABLATION_COLUMNS = ["source", "task", "step", "name", "throughput", "speedup", "step_gain", "accuracy",
                    "metric", "description", "reference", "usd_per_100m"]


def find_files(where: Path | None, name: str, run_dir: Path | None) -> list[Path]:
    """An explicit file, ``DIR/name`` (or every ``name`` under DIR), or those under the run dir."""
    if where is not None:
        where = Path(where)
        if where.is_file():
            return [where]
        if not where.is_dir():
            raise UserInputError(f"{where}: no such file or directory")
        found = sorted(where.rglob(name))
        if not found:
            raise UserInputError(f"{where}: no {name} in it")
        return found
    if run_dir is None or not Path(run_dir).is_dir():
        return []
    return sorted(p for p in Path(run_dir).rglob(name) if "report" not in p.parts)


def _layout(n, t) -> str:
    return f"{n}×{'default' if t is None else t}"


def read_table2(files: Iterable[Path]) -> pd.DataFrame:
    """One row per layout in file order, the baseline (one process, no thread control) first."""
    out = []
    for path in files:
        r2 = Table2Result.read(path)
        base = r2.baseline
        for r in (base, *r2.rows):
            label = _layout(r.instances, r.threads) + (" (baseline)" if r is base else "")
            out.append({"source": str(path), "task": r2.task, "layout": label, "instances": r.instances,
                        "threads": r.threads, "throughput": r.throughput,
                        "speedup": r.speedup if r.speedup is not None else r.throughput / base.throughput,
                        "accuracy": r.accuracy, "latency_p99_ms": r.latency_ms.get("p99"),
                        "baseline": base.label or "baseline"})
    return pd.DataFrame(out, columns=TABLE2_COLUMNS)


def read_ablation(files: Iterable[Path]) -> pd.DataFrame:
    """The ladder in file order; rows marked ``reference`` are shown but break no step gain."""
    out = []
    for path in files:
        ab = AblationResult.read(path)
        first = ab.steps[0].throughput
        for i, s in enumerate(ab.steps):
            out.append({"source": str(path), "task": ab.task, "step": i, "name": s.name or s.label or f"step {i}",
                        "throughput": s.throughput, "speedup": s.speedup if s.speedup is not None else s.throughput / first,
                        "step_gain": s.step_gain, "accuracy": s.accuracy, "metric": ab.metric,
                        "description": s.description, "reference": s.reference, "usd_per_100m": s.usd_per_100m})
    return pd.DataFrame(out, columns=ABLATION_COLUMNS)
