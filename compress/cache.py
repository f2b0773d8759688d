"""A content-keyed artifact cache that several processes may fill at once.

An artifact is built into a private temp dir, then renamed into place (atomic on one file
system); a per-key ``flock`` makes a second builder wait for the first instead of redoing it.
A directory counts as present only once its ``meta.json`` exists.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from compress.locks import file_lock

log = logging.getLogger(__name__)

META = "meta.json"


def content_key(*parts: Any) -> str:
    """Hash of JSON-able parts, stable across processes and runs."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def locked(cache_dir: Path, key: str):
    return file_lock(Path(cache_dir) / ".locks" / f"{key}.lock")


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


# derived files (ONNX exports, quantised graphs, seeded heads) in the same cache, grouped by kind:
# cache_dir/<kind>/<key>
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".json", ".onnx", ".data")
_SKIP = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "meta.json",
         "significance.json")


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


def cached(cache_dir: str | os.PathLike, kind: str, key: str, build: Callable[[Path], None]) -> Path:
    """``cache_dir/kind/key``, built by ``build(tmp_dir)`` on a miss (locked, renamed into place)."""

    def with_meta(tmp: Path) -> dict:
        build(tmp)
        return {"kind": kind, "key": key}

    path, _ = get_or_build(Path(cache_dir) / kind, key, with_meta)
    return path
