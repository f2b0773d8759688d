"""Dynamic sequence length (FastFormers 6.1) on real SST-2 dev with the packaged tokenizer."""
from __future__ import annotations

import numpy as np
import pytest

from compress.batching import encode, make_batches, padding_overhead, restore_order
from compress.tasks import load_task


@pytest.fixture(scope="module")
def sst2_dev(data_dir):
    return load_task("sst2", data_dir).splits["dev"]


def test_dynamic_batches_pad_at_most_10_percent_on_sst2_dev(sst2_dev, tokenizer):
    enc = encode(tokenizer, sst2_dev, max_length=128)
    real_total = int(enc.lengths.sum())
    dyn_real, dyn_padded = padding_overhead(make_batches(enc, 8, "dynamic"))
    fix_real, fix_padded = padding_overhead(make_batches(enc, 8, "fixed"))
    assert dyn_real == fix_real == real_total
    assert dyn_padded <= 1.10 * real_total
    assert fix_padded == 128 * len(sst2_dev)
    # pad-to-128 computes several times more tokens than length-sorted batches
    assert fix_padded / dyn_padded > 4


def test_batches_cover_every_row_once_and_restore_order(sst2_dev, tokenizer):
    enc = encode(tokenizer, sst2_dev[:50], max_length=64)
    batches = make_batches(enc, 8, "dynamic")
    idx = np.concatenate([b.indices for b in batches])
    assert sorted(idx.tolist()) == list(range(50))
    for b in batches:  # each batch is padded to its own longest member
        assert b.features["attention_mask"].sum(1).max() == b.shape[1]
        assert set(b.features) == {"input_ids", "attention_mask", "token_type_ids"}
    # an "output" that is the row's length, scattered back, equals the unsorted lengths
    outs = [b.features["attention_mask"].sum(1) for b in batches]
    assert restore_order(batches, outs).tolist() == enc.lengths.tolist()


def test_fixed_mode_keeps_file_order_and_truncates(sst2_dev, tokenizer):
    enc = encode(tokenizer, sst2_dev[:20], max_length=16)
    assert enc.lengths.max() <= 16
    batches = make_batches(enc, 4, "fixed")
    assert np.concatenate([b.indices for b in batches]).tolist() == list(range(20))
    assert all(b.shape == (4, 16) for b in batches)


def test_pairs_get_segment_ids(data_dir, tokenizer):
    rte = load_task("rte", data_dir).splits["dev"][:4]
    enc = encode(tokenizer, rte, max_length=128)
    assert all(t.max() == 1 for t in enc.features["token_type_ids"])


def test_the_cost_estimate_grows_with_the_rows_length_measured_on_real_train_rows(data_dir, tokenizer):
    from autotune.presets import REFERENCE_TOKENS, get_preset
    from compress.batching import mean_tokens

    sst2 = load_task("sst2", data_dir).splits["train"]
    multirc = load_task("multirc", data_dir)
    short = mean_tokens(tokenizer, sst2, 128)
    long = mean_tokens(tokenizer, multirc.splits["train"], multirc.spec.max_length)
    assert short == mean_tokens(tokenizer, sst2, 128)  # seeded sample
    assert abs(short - REFERENCE_TOKENS) < 0.5  # the constant is what this measures
    assert long > 15 * short
    quick = get_preset("quick")
    assert quick.estimate_s(8, short) == quick.estimate_s(8)  # calibrated on SST-2: unchanged there
    assert quick.estimate_s(8, long) > 10 * quick.estimate_s(8)
