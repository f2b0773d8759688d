"""Tokenise once, then batch: length-sorted dynamic padding (FastFormers section 6.1)
or the fixed pad-to-max baseline the paper compares against.

Batches remember the original row positions so predictions can be put back in order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import numpy as np

from compress.tasks import Example

Padding = Literal["dynamic", "fixed"]


@dataclass(frozen=True)
class Encoded:
    """Unpadded token ids per row, plus the tokenizer's pad id and feature names."""

    features: dict[str, list[np.ndarray]]
    pad_id: int
    max_length: int

    def __len__(self) -> int:
        return len(self.features["input_ids"])

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(x) for x in self.features["input_ids"]], dtype=np.int64)


@dataclass(frozen=True)
class Batch:
    indices: np.ndarray  # original row positions
    features: dict[str, np.ndarray]  # input_ids, attention_mask[, token_type_ids], int64 [B, L]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.features["input_ids"].shape)  # type: ignore[return-value]


def encode(tokenizer, examples: Sequence[Example], max_length: int) -> Encoded:
    """Tokenise every row once, truncated to ``max_length``, without padding."""
    text_a = [ex.text_a for ex in examples]
    pairs = [ex.text_b for ex in examples]
    kwargs = dict(truncation=True, max_length=max_length, padding=False)
    if any(b is not None for b in pairs):
        out = tokenizer(text_a, [b or "" for b in pairs], **kwargs)
    else:
        out = tokenizer(text_a, **kwargs)
    keep = [k for k in ("input_ids", "token_type_ids") if k in out]
    feats = {k: [np.asarray(v, dtype=np.int64) for v in out[k]] for k in keep}
    return Encoded(feats, int(tokenizer.pad_token_id or 0), max_length)


def mean_tokens(tokenizer, examples: Sequence[Example], max_length: int, sample: int = 256, seed: int = 0) -> float:
    """Mean tokens per row on a seeded sample: what training and evaluation cost scales with."""
    if not examples:
        return 0.0
    idx = np.random.default_rng(seed).choice(len(examples), min(sample, len(examples)), replace=False)
    return float(encode(tokenizer, [examples[i] for i in idx], max_length).lengths.mean())


def make_batches(enc: Encoded, batch_size: int, padding: Padding = "dynamic", sort: bool | None = None) -> list[Batch]:
    """Split rows into batches; ``dynamic`` sorts by length and pads each batch to its longest row."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    sort = (padding == "dynamic") if sort is None else sort
    n = len(enc)
    order = np.argsort(enc.lengths, kind="stable") if sort else np.arange(n)
    batches = []
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        width = enc.max_length if padding == "fixed" else int(enc.lengths[idx].max())
        batches.append(Batch(idx, _pad(enc, idx, width)))
    return batches


def _pad(enc: Encoded, idx: np.ndarray, width: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    ids = np.full((len(idx), width), enc.pad_id, dtype=np.int64)
    mask = np.zeros((len(idx), width), dtype=np.int64)
    types = np.zeros((len(idx), width), dtype=np.int64) if "token_type_ids" in enc.features else None
    for r, i in enumerate(idx):
        row = enc.features["input_ids"][i]
        ids[r, : len(row)] = row
        mask[r, : len(row)] = 1
        if types is not None:
            types[r, : len(row)] = enc.features["token_type_ids"][i]
    out["input_ids"], out["attention_mask"] = ids, mask
    if types is not None:
        out["token_type_ids"] = types
    return out


def padding_overhead(batches: Iterable[Batch]) -> tuple[int, int]:
    """(real tokens, padded tokens) over all batches."""
    real = padded = 0
    for b in batches:
        real += int(b.features["attention_mask"].sum())
        padded += int(b.features["attention_mask"].size)
    return real, padded


def restore_order(batches: Sequence[Batch], outputs: Sequence[np.ndarray]) -> np.ndarray:
    """Stack per-batch outputs back into original row order."""
    n = sum(len(b.indices) for b in batches)
    first = np.asarray(outputs[0])
    result = np.empty((n,) + first.shape[1:], dtype=first.dtype)
    for b, out in zip(batches, outputs):
        result[b.indices] = out
    return result
