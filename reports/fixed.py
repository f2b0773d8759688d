"""Read the fixed studies' JSON (Table 2: instances × threads; Table 3: the ablation ladder).

The writers (``autotune/studies.py``) may evolve, so the readers accept a list of rows or an
object holding them under ``rows``/``cells``/``steps``/``results``; a row's numbers may sit at
its top level or inside its ``measurement``. Speed-ups stored in the file are used as they
are; missing ones are computed against the stored baseline (or the first row).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from compress.errors import UserInputError
from reports.load import read_json

log = logging.getLogger(__name__)

TABLE2_COLUMNS = ["source", "task", "layout", "instances", "threads", "throughput", "speedup",
                  "accuracy", "latency_p99_ms", "baseline"]
ABLATION_COLUMNS = ["source", "task", "step", "name", "throughput", "speedup", "step_gain", "accuracy",
                    "metric", "description", "reference", "usd_per_100m"]
ROW_KEYS = ("rows", "cells", "steps", "results", "measurements", "ladder")


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


def _rows(data: Any, path: Path) -> tuple[dict, list[dict]]:
    if isinstance(data, list):
        return {}, data
    if isinstance(data, dict):
        for key in ROW_KEYS:
            if isinstance(data.get(key), list):
                return data, data[key]
    raise UserInputError(f"{path}: expected a list of rows or an object with one of {', '.join(ROW_KEYS)}")


def _get(row: dict, key: str, *aliases: str) -> Any:
    """A value from the row, its measurement or its runtime (first found)."""
    for k in (key, *aliases):
        for scope in (row, row.get("measurement") or {}, row.get("runtime") or {},
                      (row.get("measurement") or {}).get("runtime") or {}):
            if isinstance(scope, dict) and scope.get(k) is not None:
                return scope[k]
    return None


def _accuracy(row: dict, metric: str | None) -> Any:
    for key in ("accuracy", "score", "dev_score"):
        if isinstance(row.get(key), (int, float)):
            return row[key]
    metrics = row.get("metrics") or (row.get("measurement") or {}).get("metrics") or {}
    if metric and metric in metrics:
        return metrics[metric]
    return next(iter(metrics.values()), None) if metrics else None


def _p99(row: dict) -> Any:
    lat = _get(row, "latency_ms") or {}
    return lat.get("p99") if isinstance(lat, dict) else _get(row, "latency_p99_ms", "p99_ms")


def _throughput(row: Any, path: Path) -> float:
    value = _get(row, "throughput") if isinstance(row, dict) else None
    if not isinstance(value, (int, float)) or value <= 0:
        raise UserInputError(f"{path}: a row without a positive throughput ({str(row)[:80]})")
    return float(value)


def _layout(n: Any, t: Any) -> str:
    return f"{n}×{'default' if t is None else t}"


def read_table2(files: Iterable[Path]) -> pd.DataFrame:
    """One row per layout in file order, the stored baseline (if any) first."""
    out = []
    for path in files:
        head, rows = _rows(read_json(path, "table2"), path)
        base = head.get("baseline") if isinstance(head.get("baseline"), dict) else None
        if base is not None:
            rows = [{**base, "label": f"{base.get('label') or 'baseline'} (baseline)"}, *rows]
        tputs = [_throughput(r, path) for r in rows]
        layouts = [(_get(r, "instances"), _get(r, "threads")) for r in rows]
        base_tp, base_label = (tputs[0], str(base.get("label") or "baseline")) if base else _default_base(tputs, layouts)
        for r, tp, (n, t) in zip(rows, tputs, layouts):
            speedup = _get(r, "speedup", "speed_up")
            label = _layout(n, t) + (" (baseline)" if r is rows[0] and base else "")
            out.append({"source": str(path), "task": str(head.get("task", "")), "layout": label,
                        "instances": n, "threads": t, "throughput": tp,
                        "speedup": float(speedup) if speedup is not None else tp / base_tp,
                        "accuracy": _accuracy(r, head.get("metric")), "latency_p99_ms": _p99(r),
                        "baseline": base_label})
    return pd.DataFrame(out, columns=TABLE2_COLUMNS)


def _default_base(tputs: list[float], layouts) -> tuple[float, str]:
    """Without a stored baseline: one instance with the most threads (a plain single process)."""
    singles = [i for i, (n, _) in enumerate(layouts) if n == 1]
    i = max(singles, key=lambda j: layouts[j][1] or 0) if singles else 0
    return tputs[i], _layout(*layouts[i])


def read_ablation(files: Iterable[Path]) -> pd.DataFrame:
    """The ladder in file order; rows marked ``reference`` are shown but break no step gain."""
    out = []
    for path in files:
        head, rows = _rows(read_json(path, "ablation"), path)
        tputs = [_throughput(r, path) for r in rows]
        metric = head.get("metric")
        prev = None
        for i, (r, tp) in enumerate(zip(rows, tputs)):
            speedup = _get(r, "speedup", "cumulative_speedup", "speed_up")
            speedup = float(speedup) if speedup is not None else tp / tputs[0]
            reference = bool(r.get("reference"))
            gain = r["step_gain"] if "step_gain" in r else (None if reference else speedup / prev if prev else 1.0)
            out.append({"source": str(path), "task": str(head.get("task", "")), "step": i,
                        "name": str(r.get("name") or r.get("label") or f"step {i}"), "throughput": tp,
                        "speedup": speedup, "step_gain": gain, "accuracy": _accuracy(r, metric),
                        "metric": str(metric or "accuracy"), "description": str(r.get("description", "")),
                        "reference": reference, "usd_per_100m": r.get("usd_per_100m")})
            prev = prev if reference else speedup
    return pd.DataFrame(out, columns=ABLATION_COLUMNS)
