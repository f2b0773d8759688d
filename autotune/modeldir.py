"""A classifier directory for any model source.

Every engine must run the same weights, so a bare encoder (such as the packaged MiniLM)
gets its fresh classification head once, from a fixed seed, saved into the content cache;
torch and ONNX engines and every pool instance then load that one directory.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from compress.cache import cached, content_key, hash_dir
from compress.models import PACKAGED, load_classifier, load_tokenizer, resolve

log = logging.getLogger(__name__)


def classifier_dir(source: str | os.PathLike | None, num_labels: int, cache_dir: str | os.PathLike,
                   seed: int = 0) -> Path:
    """``source`` itself when it is a local classifier with ``num_labels`` labels, else a cached copy with a head."""
    where = resolve(source)
    path = Path(where)
    if not path.is_dir():
        raise ValueError(f"model {source}: classifier_dir needs a local model directory")
    config = json.loads((path / "config.json").read_text())
    is_classifier = any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or ())
    n = len(config.get("id2label") or {}) or config.get("num_labels", 2)
    if is_classifier and n == num_labels:
        return path

    def build(tmp: Path) -> None:
        import torch

        torch.manual_seed(seed)
        load_classifier(where, num_labels=num_labels).save_pretrained(tmp)
        load_tokenizer(where).save_pretrained(tmp)

    key = content_key(hash_dir(path), num_labels, seed)
    out = cached(cache_dir, "classifier", key, build)
    log.info("model %s has no %d-label head; using %s (fresh head, seed %d)", source or PACKAGED, num_labels, out, seed)
    return out
