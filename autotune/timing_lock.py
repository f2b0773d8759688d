"""A machine-wide lock around timing: workers may build models in parallel, but two
measurements on the same cores at the same moment would corrupt each other's numbers."""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from compress.locks import file_lock

log = logging.getLogger(__name__)


def default_lock_path() -> Path:
    return Path(os.environ.get("FASTFORMERS_LOCK_DIR", "/tmp")) / "fastformers-timing.lock"


@contextmanager
def timing_lock(path: Path | None = None) -> Iterator[float]:
    """Hold the lock while timing; yields the seconds spent waiting for it."""
    path = Path(path or default_lock_path())
    start = time.monotonic()
    with file_lock(path, on_wait=lambda: log.info("waiting for another worker to finish timing (%s)", path)):
        yield time.monotonic() - start
