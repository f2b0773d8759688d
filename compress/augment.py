"""Augmented copies of training rows for the distillation transfer set (TinyBERT-style).

A small task leaves a student too few rows to match its teacher on: TinyBERT (Jiao et al. 2020,
section 3.1) distils on 20 word-replaced copies of each row, labelled by the teacher. It takes a
single-piece word's replacements from BERT's masked-LM predictions and a multi-piece word's from
GloVe neighbours; neither is at hand offline here (the packaged sentence-transformers models have
no masked-LM head), so a word that is one vocabulary token is replaced, with probability
``p_replace``, by one of its ``neighbours`` nearest vocabulary words in the teacher's own input
embedding space (cosine). Other words, punctuation and spacing stay as they are. The teacher labels
every copy (its logits are the distillation target), so a replacement that flips the meaning does
not teach a wrong label. Deterministic under ``seed``.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Sequence

import numpy as np

from compress.tasks import Example

log = logging.getLogger(__name__)

P_REPLACE = 0.4  # TinyBERT's p_t
NEIGHBOURS = 15  # TinyBERT's K
VERSION = 1  # bump when the rows this module writes change
_WORD = re.compile(r"[^\W\d_]+")  # runs of letters


class WordNeighbours:
    """Each whole-word vocabulary token's nearest whole-word tokens in an embedding matrix."""

    def __init__(self, tokenizer, embeddings: np.ndarray, k: int = NEIGHBOURS):
        ids = np.arange(min(len(tokenizer), embeddings.shape[0]))
        decoded = [w.strip() for w in tokenizer.batch_decode([[int(i)] for i in ids])]
        keep = [i for i, w in zip(ids, decoded) if len(w) > 1 and w.isalpha()]
        # a word counts when it is one token where it stands mid-sentence (after a space, for BPE vocabularies)
        again = tokenizer([" " + decoded[i] for i in keep], add_special_tokens=False)["input_ids"]
        words: dict[str, int] = {}
        for i, enc in zip(keep, again):
            if list(enc) == [int(i)]:
                words.setdefault(decoded[i], int(i))
        self.words = sorted(words)
        self.index = {w: j for j, w in enumerate(self.words)}
        vec = embeddings[[words[w] for w in self.words]].astype(np.float32)
        self.vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-8)
        self.k = k
        self.lower = bool(getattr(tokenizer, "do_lower_case", False))
        self._near: dict[int, np.ndarray] = {}

    def key(self, word: str) -> int | None:
        return self.index.get(word.lower() if self.lower else word)

    def prepare(self, words: set[str], chunk: int = 512) -> None:
        """Find the neighbours of many words in a few matrix products."""
        todo = sorted({i for i in map(self.key, words) if i is not None and i not in self._near})
        for s in range(0, len(todo), chunk):
            part = np.array(todo[s:s + chunk])
            sim = self.vec[part] @ self.vec.T
            sim[np.arange(len(part)), part] = -np.inf
            for i, row in zip(part, np.argpartition(-sim, self.k, axis=1)[:, : self.k]):
                self._near[int(i)] = np.sort(row)

    def of(self, word: str) -> np.ndarray | None:
        """Indices (into ``words``) of the word's neighbours, itself excluded; None: not one token."""
        i = self.key(word)
        if i is None:
            return None
        if i not in self._near:
            self.prepare({word})
        return self._near[i]


def augment_text(text: str, near: WordNeighbours, rng: np.random.Generator, p_replace: float = P_REPLACE) -> str:
    def swap(m: re.Match) -> str:
        word = m.group(0)
        cands = near.of(word)
        if cands is None or rng.random() >= p_replace:
            return word
        new = near.words[int(cands[rng.integers(len(cands))])]
        return new.capitalize() if word[0].isupper() and near.lower else new

    return _WORD.sub(swap, text)


def augment_rows(rows: Sequence[Example], n: int, near: WordNeighbours, seed: int,
                 p_replace: float = P_REPLACE) -> list[Example]:
    """``n`` augmented copies, taken from ``rows`` in turn (every row once before any twice), unlabelled;
    a copy identical to its source is replaced by one more draw, then kept (a row of no known words)."""
    rng = np.random.default_rng(seed)
    near.prepare({w for ex in rows for t in (ex.text_a, ex.text_b or "") for w in _WORD.findall(t)})
    out: list[Example] = []
    for i in range(n):
        src = rows[i % len(rows)]
        for _ in range(3):
            a = augment_text(src.text_a, near, rng, p_replace)
            b = augment_text(src.text_b, near, rng, p_replace) if src.text_b is not None else None
            if a != src.text_a or b != src.text_b:
                break
        group = None if src.group is None else f"{src.group}~aug{i // len(rows)}"
        out.append(replace(src, text_a=a, text_b=b, label=None, group=group))
    log.info("augmented %d rows from %d (%d words with neighbours)", n, len(rows), len(near.words))
    return out
