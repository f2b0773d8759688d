"""Shared fixtures: the real data beside the repo, and the packaged tokenizer."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FASTFORMERS_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"real task data not found at {DATA}; set FASTFORMERS_DATA")
    return DATA


@pytest.fixture(scope="session")
def tokenizer():
    from compress.models import load_tokenizer

    return load_tokenizer()
