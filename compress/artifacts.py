"""Derived files (ONNX exports, quantised graphs, seeded heads) in the same content-keyed
cache as the compression steps, grouped by kind: ``cache_dir/<kind>/<key>``."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

from compress.cache import content_key, get_or_build

__all__ = ["cached", "content_key", "hash_dir"]

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
