"""Matplotlib set-up shared by every figure: Agg (no display), one style, reproducible PNGs."""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

STYLE = {"figure.dpi": 100, "savefig.dpi": 110, "font.size": 9, "axes.titlesize": 10,
         "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8, "svg.hashsalt": "fastformers-report"}
# No software/time stamps in the file, so the same results give the same bytes.
PNG_METADATA = {"Software": None}


@contextmanager
def figure(path: Path, width: float = 7.5, height: float = 4.8, **subplots) -> Iterator[tuple]:
    """Yields (fig, ax) under the report style (ax an array when ``subplots`` asks for several);
    writes ``path`` as PNG when the block ends."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(width, height), layout="constrained", **subplots)
        try:
            yield fig, ax
            fig.savefig(path, format="png", metadata=PNG_METADATA)
        finally:
            plt.close(fig)


def plain_log_x(ax) -> None:
    """Log x with plain numbers (20, 50, 100) instead of 2×10^1; minor labels only on short ranges."""
    if not (math.isfinite(ax.dataLim.x1) and ax.dataLim.x1 > 0 and ax.dataLim.width >= 0):
        ax.text(0.5, 0.6, "no completed trial to plot", transform=ax.transAxes, ha="center", fontsize=12)
        ax.set_xticks([])
        return  # an empty log axis cannot be drawn
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    if hi / max(lo, 1e-12) < 300:  # under ~2.5 decades the 2× and 5× ticks fit
        ax.xaxis.set_minor_formatter(ticker.FuncFormatter(
            lambda v, _: f"{v:g}" if round(v / 10 ** math.floor(math.log10(v))) in (2, 5) else ""))
    else:
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
