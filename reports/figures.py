"""Matplotlib set-up shared by every figure: Agg (no display), one style, reproducible PNGs."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"figure.dpi": 100, "savefig.dpi": 110, "font.size": 9, "axes.titlesize": 10,
         "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8, "svg.hashsalt": "fastformers-report"}
# No software/time stamps in the file, so the same results give the same bytes.
PNG_METADATA = {"Software": None}


@contextmanager
def figure(path: Path, width: float = 7.5, height: float = 4.8) -> Iterator[tuple]:
    """Yields (fig, ax) under the report style; writes ``path`` as PNG when the block ends."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
        try:
            yield fig, ax
            fig.savefig(path, format="png", metadata=PNG_METADATA)
        finally:
            plt.close(fig)
