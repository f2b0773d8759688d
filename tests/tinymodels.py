"""Tiny random BERT classifiers and slices of the shared data for fast, real tests."""
from __future__ import annotations

import os
from pathlib import Path

from tests._tiny import save_tiny
from tests.conftest import DATA


def make_tiny(path: Path, prune: dict[int, list[int]] | None = None, layers: int = 2, seed: int = 0) -> Path:
    """A 2-layer, 4-head, hidden-64 classifier (optionally head-pruned) + the packaged tokenizer."""
    return save_tiny(path, prune=prune, layers=layers, heads=4, hidden=64, intermediate=128, seed=seed)


def sst2_rows(n: int):
    from compress.tasks import load_task

    data = load_task("sst2", DATA)
    return data.spec, data.splits["dev"][:n]


# ---- plug-in engines for the failure tests (loaded by name inside the workers)

class _Raising:
    def predict(self, batch_features):
        raise RuntimeError("boom: engine exploded on purpose")


def raising_engine(spec, threads):
    return _Raising()


def dying_engine(spec, threads):
    os._exit(7)
