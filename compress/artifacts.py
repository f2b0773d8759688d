"""Content-keyed artifact cache: a file is stored under the hash of what it was made from,
so a re-run (or another trial) with the same inputs reuses it, and a half-written file is
never seen (build in a temp dir, then ``os.rename``)."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".json", ".onnx", ".data")
_SKIP = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def hash_dir(path: str | os.PathLike) -> str:
    """sha256 over a model dir's weights and config (tokenizer files excluded: they don't change the graph)."""
    path = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES and p.name not in _SKIP):
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def content_key(*parts: Any) -> str:
    """A short stable key of JSON-able parts."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cached(cache_dir: str | os.PathLike, kind: str, key: str, build: Callable[[Path], None]) -> Path:
    """``cache_dir/kind/key``, built by ``build(tmp_dir)`` on a miss and renamed into place atomically."""
    final = Path(cache_dir) / kind / key
    if final.is_dir():
        log.debug("cache hit %s", final)
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another process won the race: keep theirs
            if not final.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
