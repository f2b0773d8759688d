"""A machine-wide lock around timing: workers may build models in parallel, but two
measurements on the same cores at the same moment would corrupt each other's numbers."""
from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


def default_lock_path() -> Path:
    return Path(os.environ.get("FASTFORMERS_LOCK_DIR", "/tmp")) / "fastformers-timing.lock"


@contextmanager
def timing_lock(path: Path | None = None) -> Iterator[float]:
    """Hold the lock while timing; yields the seconds spent waiting for it."""
    path = Path(path or default_lock_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another worker to finish timing (%s)", path)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield time.monotonic() - start
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
