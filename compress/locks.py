"""One exclusive file lock for every cross-process guard (a cache key's build, the machine-wide
timing, a new SQLite study's schema): ``flock`` is released by the kernel when its holder dies,
so a ``kill -9`` never leaves a stale lock behind."""
from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


@contextmanager
def file_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold ``path`` exclusively (the file and its folder are created); ``on_wait`` is called
    once if another process holds it, before waiting."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
