"""Charts of the fixed studies: Table 2 (instances × threads) and the Table 3 speed-up ladder."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from reports.figures import figure, plain_log_x
from reports.pareto import mpl_text


def _title(df: pd.DataFrame, what: str) -> str:
    task = textwrap.shorten(str(df["task"].iloc[0]), 60, placeholder="…") if len(df) else ""
    return mpl_text(f"{task}: {what}" if task else what)


def table2(df: pd.DataFrame, path: Path) -> Path:
    """Speed-up of each instances × threads layout, one bar each, value on the bar."""
    with figure(path, width=7.5, height=4.2) as (fig, ax):
        colors = ["#bab0ac" if "(baseline)" in str(x) else "#4c78a8" for x in df["layout"]]
        bars = ax.bar(range(len(df)), df["speedup"], color=colors)
        ax.bar_label(bars, labels=[f"×{v:.2f}\n{t:.0f}/s" for v, t in zip(df["speedup"], df["throughput"])],
                     fontsize=7, padding=2)
        ax.set_xticks(range(len(df)), [mpl_text(s) for s in df["layout"]], rotation=90 if len(df) > 10 else 0)
        ax.axhline(1.0, c="dimgray", ls="--", lw=1, label="baseline (×1)")
        ax.set_xlabel("instances × intra-op threads per instance")
        ax.set_ylabel(mpl_text(f"speed-up in throughput (× vs {df['baseline'].iloc[0]})"))
        ax.set_ylim(0, float(df["speedup"].max()) * 1.25)
        ax.set_title(_title(df, "multi-instance inference (FastFormers Table 2)"))
        ax.legend(loc="upper left")
    return path


def ablation(df: pd.DataFrame, path: Path) -> Path:
    """Cumulative speed-up after each optimisation step, with the accuracy at that step beside it."""
    df = df.sort_values("step")
    with figure(path, width=7.5, height=1.2 + 0.55 * len(df)) as (fig, ax):
        y = list(range(len(df)))[::-1]  # first step at the top
        lo = min(0.8, float(df["speedup"].min()) * 0.8)  # log axis: bars start at its left edge
        colors = ["#bab0ac" if r else "#59a14f" for r in df["reference"]]
        bars = ax.barh(y, df["speedup"] - lo, left=lo, color=colors)
        labels = [f"×{s:.2f} ({'reference' if r else f'step ×{g:.2f}' if pd.notna(g) else 'step n/a'})  "
                  + (f"{m} {a:.4f}" if pd.notna(a) else "accuracy n/a")
                  for s, g, a, m, r in zip(df["speedup"], df["step_gain"], df["accuracy"], df["metric"],
                                           df["reference"])]
        ax.bar_label(bars, labels=[mpl_text(s) for s in labels], fontsize=7, padding=3)
        ax.set_yticks(y, [mpl_text(n) for n in df["name"]])
        ax.set_xlim(lo, float(df["speedup"].max()) * 12)
        plain_log_x(ax)
        ax.axvline(1.0, c="dimgray", ls="--", lw=1)
        ax.set_xlabel("cumulative speed-up in throughput (× vs the first step, log scale)")
        ax.set_title(_title(df, "cumulative optimisation ladder (FastFormers Table 3)"))
    return path
