"""Significance heat maps (AxFormer): which layers, heads and FFN groups a task needs.

Scores come from where they were stored — a trial's ``significance`` attribute, or a model
directory's significance.json written by the pipeline — and are never recomputed here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colors

from compress.errors import UserInputError
from compress.significance import FILE, Significance
from reports.figures import figure
from reports.pareto import mpl_text


def read(path: Path) -> Significance:
    """Scores from a model directory (its significance.json) or from the JSON file itself."""
    path = Path(path)
    f = path / FILE if path.is_dir() else path
    if not f.is_file():
        raise UserInputError(f"--significance {path}: no {FILE} there (build with a recipe whose approx is not 'none')")
    return Significance.from_json(f.read_text())


def _grid(rows: tuple[tuple[float, ...], ...]) -> np.ndarray:
    """Ragged per-layer scores (head-pruned layers have fewer heads) as a NaN-padded matrix."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _heat(ax, grid: np.ndarray, norm, xlabel: str, title: str):
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdBu_r", norm=norm, aspect="auto")
    if grid.size <= 16 * 16:
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=5)
    ax.set_xticks(range(grid.shape[1]))
    ax.set_yticks(range(grid.shape[0]))
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(False)
    return image


def plot(sig: Significance, path: Path, title: str) -> Path:
    """Layer bars beside layer × head and layer × FFN-group heat maps; the two maps share one
    colour scale centred on 0 (red: removing it raises the loss; blue: removing it lowers it)."""
    heads, ffn = _grid(sig.heads), _grid(sig.ffn_groups)
    values = np.concatenate([heads[np.isfinite(heads)], ffn[np.isfinite(ffn)]])
    half = max(float(np.abs(values).max()) if values.size else 0.0, 1e-6)
    norm = colors.TwoSlopeNorm(vmin=-half, vcenter=0.0, vmax=half)
    n = len(sig.layers)
    with figure(path, width=10.5, height=1.6 + 0.42 * n, ncols=3,
                gridspec_kw={"width_ratios": [1.2, max(heads.shape[1], 1), max(ffn.shape[1], 1)]}) as (fig, axes):
        bar, head_ax, ffn_ax = axes
        bar.barh(range(n), sig.layers, color=["#e15759" if v > 0 else "#4e79a7" for v in sig.layers])
        bar.set_yticks(range(n), [f"layer {i}" for i in range(n)])
        bar.set_ylim(n - 0.5, -0.5)
        bar.axvline(0, c="dimgray", lw=0.8)
        bar.set_xlabel("loss rise")
        bar.set_title("blocks")
        _heat(head_ax, heads, norm, "attention head", "heads (zeroed one at a time)")
        head_ax.set_yticks(range(n), [""] * n)
        image = _heat(ffn_ax, ffn, norm, "FFN neuron group", "FFN groups (zeroed one at a time)")
        ffn_ax.set_yticks(range(n), [""] * n)
        fig.colorbar(image, ax=axes[1:], shrink=0.9, label="held-aside loss increase")
        fig.suptitle(mpl_text(f"{title} — base loss {sig.base_loss:.4f} on {sig.rows} held-aside rows"), fontsize=10)
    return path


def table(sig: Significance) -> pd.DataFrame:
    """Per layer: its score, and the least/most significant head and FFN group."""
    rows: list[dict[str, Any]] = []
    for i, (layer, heads, ffn) in enumerate(zip(sig.layers, sig.heads, sig.ffn_groups)):
        h, f = np.asarray(heads, float), np.asarray(ffn, float)
        rows.append({"layer": str(i), "block": f"{layer:.4f}", "heads": str(len(h)),
                     "least significant head": f"{int(h.argmin())} ({h.min():.4f})" if h.size else "",
                     "most significant head": f"{int(h.argmax())} ({h.max():.4f})" if h.size else "",
                     "FFN groups min / max": f"{f.min():.4f} / {f.max():.4f}" if f.size else ""})
    return pd.DataFrame(rows)
