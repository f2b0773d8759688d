"""A content-keyed artifact cache that several processes may fill at once.

An artifact is built into a private temp dir, then renamed into place (atomic on one file
system); a per-key ``flock`` makes a second builder wait for the first instead of redoing it.
A directory counts as present only once its ``meta.json`` exists.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

META = "meta.json"


def content_key(*parts: Any) -> str:
    """Hash of JSON-able parts, stable across processes and runs."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@contextmanager
def locked(cache_dir: Path, key: str) -> Iterator[None]:
    locks = cache_dir / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{key}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_meta(path: Path) -> dict[str, Any]:
    return json.loads((path / META).read_text())


def get_or_build(cache_dir: Path, key: str, build: Callable[[Path], dict[str, Any]]) -> tuple[Path, bool]:
    """(artifact dir, hit). ``build(tmp_dir)`` fills the dir and returns its meta dict."""
    cache_dir = Path(cache_dir)
    final = cache_dir / key
    if (final / META).is_file():
        return final, True
    with locked(cache_dir, key):
        if (final / META).is_file():  # another process built it while we waited
            return final, True
        if final.exists():  # a half-moved leftover cannot happen with rename; clear debris anyway
            shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=cache_dir))
        try:
            meta = build(tmp)
            (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log.info("cached %s", final)
    return final, False
