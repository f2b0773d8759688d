"""The feasible Pareto front of accuracy against speed, and its plot.

Only completed, feasible trials can be on the front: an infeasible trial is drawn, but
apart, so a fast model that misses the floor never looks like a candidate. Failed trials
have no values and are listed in the report instead of plotted.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reports.figures import figure, plain_log_x
from reports.load import TaskResults
from reports.tables import layout


@dataclass(frozen=True)
class Axis:
    """Which speed column goes on x, and whether larger is better."""

    column: str
    name: str  # for titles
    label: str
    larger_is_better: bool


THROUGHPUT = Axis("throughput", "throughput", "throughput (examples/s, log scale)", True)
P99 = Axis("latency_p99_ms", "p99 latency", "p99 latency per batch (ms, log scale)", False)


def pareto_mask(x: np.ndarray, y: np.ndarray, x_larger_is_better: bool) -> np.ndarray:
    """True where no other point is at least as good on both and better on one (y: larger is better)."""
    x = np.asarray(x, dtype=float) * (1 if x_larger_is_better else -1)
    y = np.asarray(y, dtype=float)
    keep = np.ones(len(x), dtype=bool)
    for i in range(len(x)):
        better_eq = (x >= x[i]) & (y >= y[i])
        strictly = (x > x[i]) | (y > y[i])
        keep[i] = not np.any(better_eq & strictly)
    return keep


def front(trials: pd.DataFrame, axis: Axis) -> pd.DataFrame:
    """Feasible completed trials on the (accuracy, speed) front, sorted by speed."""
    feas = trials[(trials["status"] == "feasible")].dropna(subset=["accuracy", axis.column])
    if feas.empty:
        return feas
    mask = pareto_mask(feas[axis.column].to_numpy(), feas["accuracy"].to_numpy(), axis.larger_is_better)
    return feas[mask].sort_values([axis.column, "trial"], kind="stable")


def mpl_text(text: str) -> str:
    """Matplotlib reads ``$...$`` as maths; stored names are shown literally."""
    return str(text).replace("$", r"\$")


def _reference(ax, m: dict | None, axis: Axis, metric: str, marker: str, color: str, label: str) -> None:
    if not m:
        return
    x = m.get("throughput") if axis.column == "throughput" else (m.get("latency_ms") or {}).get("p99")
    y = (m.get("metrics") or {}).get(metric)
    if x and y is not None:
        ax.scatter([x], [y], marker=marker, s=140, c=color, edgecolors="black", zorder=5, label=label)


def plot(res: TaskResults, axis: Axis, path: Path) -> Path:
    t = res.trials
    done = t[t["state"] == "COMPLETE"].dropna(subset=["accuracy", axis.column])
    feas, infeas = done[done["status"] == "feasible"], done[done["status"] == "infeasible"]
    best = front(t, axis)
    with figure(path) as (fig, ax):
        ax.scatter(feas[axis.column], feas["accuracy"], s=28, c="#7aa6d6", label="feasible trial", zorder=2)
        ax.scatter(infeas[axis.column], infeas["accuracy"], s=34, marker="x", c="#d62728",
                   label="infeasible trial (misses floor / p99 limit)", zorder=2)
        if not best.empty:
            ax.plot(best[axis.column], best["accuracy"], "-o", c="#ff7f0e", mec="black", ms=7,
                    label="feasible Pareto front", zorder=3)
        if res.floor is not None:
            ax.axhline(res.floor, ls="--", c="dimgray",
                       label=mpl_text(f"accuracy floor {res.floor:.4f} ({res.floor_rule})".replace(" ()", "")))
        _reference(ax, res.references.get("teacher_ort_int8"), axis, res.metric, "*", "gold",
                   "teacher, ORT int8 (1 instance)")
        _reference(ax, res.references.get("baseline"), axis, res.metric, "s", "silver",
                   "out-of-the-box: teacher, PyTorch fp32, padded, batch 1")
        chosen = res.chosen()
        if chosen is not None and pd.notna(chosen.get(axis.column)):
            x, y = chosen[axis.column], chosen["accuracy"]
            ax.scatter([x], [y], s=260, facecolors="none", edgecolors="green", linewidths=2, zorder=6,
                       label="chosen recipe")
            ax.annotate(mpl_text(f"chosen: trial {chosen['trial']}\n{chosen['recipe']}, {chosen['engine']}, "
                                 f"{layout(chosen['instances'], chosen['threads'])}"),
                        (x, y), xytext=(-12, -34), textcoords="offset points", ha="right", fontsize=8,
                        arrowprops={"arrowstyle": "->", "color": "green"}, color="darkgreen")
        plain_log_x(ax)
        ax.set_xlabel(axis.label)
        ax.set_ylabel(mpl_text(textwrap.shorten(f"{res.metric} (dev, search split)", 60, placeholder="…")))
        failed = int((t["state"] != "COMPLETE").sum())
        better = "higher" if axis.larger_is_better else "lower"
        head = textwrap.shorten(f"{res.task}: {res.metric} vs {axis.name}", 95, placeholder="…")
        ax.set_title(mpl_text(f"{head}\n{len(done)} completed, {failed} failed or unfinished (not plotted, listed below); "
                              f"{better} x is better"))
        ax.legend(loc="best", framealpha=0.85)
    return path
