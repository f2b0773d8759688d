"""TinyBERT-style augmentation: embedding neighbours of whole-word tokens, seeded word-replaced copies,
and the transfer set filled with them (cached) where the train split runs out."""
from __future__ import annotations

import json

import numpy as np
import pytest

from compress.augment import WordNeighbours, augment_rows
from compress.errors import UserInputError
from compress.models import load_tokenizer
from compress.pipeline import build
from compress.recipe import Recipe
from compress.tasks import Example
from tests._tiny import save_tiny, sst2_slice


@pytest.fixture(scope="module")
def near():
    tok = load_tokenizer()
    emb = np.random.default_rng(0).normal(size=(tok.vocab_size, 16)).astype(np.float32)
    vocab = tok.get_vocab()
    emb[vocab["great"]] = emb[vocab["good"]] * 2.0  # same direction: cosine 1
    return WordNeighbours(tok, emb, k=3)


def test_neighbours_are_whole_words_nearest_first(near):
    assert "good" in near.words and "great" in near.words
    assert not any(w.startswith("#") for w in near.words)  # word pieces are not words
    assert "great" in [near.words[i] for i in near.of("good")]
    assert "good" not in [near.words[i] for i in near.of("good")]  # never itself
    assert near.of("Good") is not None  # an uncased vocabulary matches any case
    assert near.of("xqzvbnmw") is None  # several pieces: left alone


def test_copies_are_seeded_unlabelled_and_keep_punctuation(near):
    rows = [Example("a good film , really .", label=1), Example("the plot is thin !", "yes", label=0, group="q1")]
    one, two = augment_rows(rows, 5, near, seed=3), augment_rows(rows, 5, near, seed=3)
    assert one == two and augment_rows(rows, 5, near, seed=4) != one
    assert len(one) == 5 and all(ex.label is None for ex in one)
    assert [ex.group for ex in one] == [None, "q1~aug0", None, "q1~aug1", None]
    assert all(ex.text_a.endswith(" .") and " , " in ex.text_a for ex in one[::2])
    assert all(ex.text_a.endswith(" !") for ex in one[1::2])
    assert sum(ex.text_a != rows[i % 2].text_a for i, ex in enumerate(one)) >= 4
    assert all(len(ex.text_a.split()) == len(rows[i % 2].text_a.split()) for i, ex in enumerate(one))


def test_augmented_rows_fill_the_transfer_set_once(tmp_path):
    teacher = save_tiny(tmp_path / "teacher", layers=2)
    data = sst2_slice(train=40, dev=16)
    recipe = Recipe(task="sst2", teacher=str(teacher), teacher_epochs=1, teacher_lr=1e-3, student_layers=1,
                    kd_epochs=1, kd_lr=1e-3, kd_batch_size=16, max_train_examples=32,
                    kd_transfer_examples=128, kd_augment=2)
    built = build(recipe, data, tmp_path / "cache", progress=False)
    meta = json.loads((built.model_dir / "meta.json").read_text())
    # 32 teacher rows + the 8 other train rows + 64 copies (2 per teacher row; 128 not reached)
    assert meta["params"]["transfer"]["rows"] == 104
    assert meta["train"]["steps"] == 7
    made = list((tmp_path / "cache" / "augment").glob("*/rows.json"))
    assert len(made) == 1 and len(json.loads(made[0].read_text())) == 64
    stamp = made[0].stat().st_mtime_ns
    again = build(recipe, data, tmp_path / "cache", progress=False)
    assert all(s.hit for s in again.steps) and made[0].stat().st_mtime_ns == stamp
    with pytest.raises(UserInputError, match="kd_augment must be a non-negative integer"):
        Recipe(task="sst2", kd_augment=-1).check()
