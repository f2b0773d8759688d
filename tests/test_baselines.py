"""Trivial baselines by hand, and ``beats`` as a paired bootstrap against them."""
from __future__ import annotations

import numpy as np
import pytest

from compress.baselines import TrivialBaseline, beats, trivial_baseline
from compress.intervals import unit_stats
from compress.tasks import Example, get_task, load_task


def rows(labels, group=None):
    return [Example("a", "b", int(y), group) for y in labels]


def onehot(preds, k=2):
    return np.eye(k)[np.asarray(preds)]


def test_majority_class_share_and_its_macro_f1():
    spec = get_task("cb")
    t = trivial_baseline(spec, rows([0] * 5 + [1] * 3 + [2] * 2))
    assert t.kind == "majority class (entailment)"
    # class 0: f1 = 2*5 / (5 + 10); classes 1 and 2 are present in the labels and score 0
    assert t.metrics == pytest.approx({"accuracy": 0.5, "macro_f1": (2 / 3) / 3})
    assert t.to_dict() == {"kind": t.kind, "metrics": t.metrics}
    assert trivial_baseline(spec, rows([2, 1, 1, 2])).kind == "majority class (contradiction)"  # tie: lowest


@pytest.mark.parametrize("positives", (7, 2))
def test_mrpc_constant_positive_has_f1_2p_over_1_plus_p(positives):
    t = trivial_baseline(get_task("mrpc"), rows([1] * positives + [0] * (10 - positives)))
    p = positives / 10
    assert t.kind == "constant 'equivalent'"  # predicting all positive is the best constant F1
    assert t.metrics == pytest.approx({"f1": 2 * p / (1 + p), "accuracy": p})


def test_cola_every_constant_has_mcc_zero():
    t = trivial_baseline(get_task("cola"), rows([1] * 7 + [0] * 3))
    assert t.kind == "constant 'unacceptable'"  # all tie at 0: the lowest class
    assert t.metrics == pytest.approx({"mcc": 0.0, "accuracy": 0.3})


def test_copa_chance_is_one_half_and_one_third_for_three_choices():
    spec = get_task("copa")
    exs = [ex for g in range(4) for ex in rows([int(g % 2 == 0), int(g % 2)], f"g{g}")]
    t = trivial_baseline(spec, exs)
    assert (t.kind, t.metrics) == ("chance (1 of 2 choices)", {"accuracy": 0.5})
    three = trivial_baseline(spec, rows([0, 1, 0], "g"))
    assert three.kind == "chance (1 of 3 choices)" and three.metrics["accuracy"] == pytest.approx(1 / 3)
    mixed = trivial_baseline(spec, rows([0, 1, 0], "a") + rows([1, 0], "b"))
    assert mixed.kind == "chance (1 of N choices)" and mixed.metrics["accuracy"] == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_multirc_constant_true():
    exs = rows([1, 0, 1], "q1") + rows([1, 1], "q2") + rows([0], "q3")
    t = trivial_baseline(get_task("multirc"), exs)
    # tp=4 fp=2 fn=0 -> f1a = 8/10; only q2 is all True
    assert t.kind == "constant 'True'"
    assert t.metrics == pytest.approx({"f1a": 0.8, "em": 1 / 3})


def test_record_chance_is_the_mean_candidate_score():
    def query(g, cands, golds):
        return [Example("p", c, int(c in golds), g, c, golds) for c in cands]

    exs = query("a", ["Apple", "Google", "New York City"], ("apple",)) + query("b", ["New York", "Paris"], ("New York City",))
    t = trivial_baseline(get_task("record"), exs)
    # a: EM 1/3, F1 1/3; b: EM 0, F1 ("new york" vs "new york city" = 0.8, Paris 0) 0.4
    assert t.kind == "chance (1 of N candidates)"
    assert t.metrics == pytest.approx({"f1": (1 / 3 + 0.4) / 2, "em": 1 / 6})


def test_unlabelled_rows_are_refused():
    with pytest.raises(ValueError, match="unlabelled"):
        trivial_baseline(get_task("sst2"), [Example("a"), Example("b", None, 1)])


def test_beats_needs_a_margin_beyond_noise():
    spec = get_task("sst2")
    labels = np.random.default_rng(0).integers(0, 2, 200)
    exs = rows(labels)
    t = trivial_baseline(spec, exs)
    perfect, ok = beats(spec, exs, onehot(labels), t)
    assert ok and perfect.value == pytest.approx(1 - t.metrics["accuracy"]) and perfect.units == 200
    majority = int(np.mean(labels) > 0.5)
    same, ok = beats(spec, exs, onehot(np.full(200, majority)), t)
    assert not ok and (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    few = exs[:16]
    coin, ok = beats(spec, few, onehot(np.random.default_rng(1).integers(0, 2, 16)), trivial_baseline(spec, few))
    assert not ok and coin.low < 0 < coin.high


def test_beats_on_grouped_tasks():
    spec = get_task("copa")
    right = np.random.default_rng(0).integers(0, 2, 60)
    exs = [ex for g, r in enumerate(right) for ex in rows([int(r == 0), int(r == 1)], f"g{g}")]
    perfect = onehot([ex.label for ex in exs])  # the right row of each group scores highest
    t = trivial_baseline(spec, exs)
    assert t.stats.units == unit_stats(spec, exs, perfect).units == 60
    diff, ok = beats(spec, exs, perfect, t)
    assert ok and diff.value == pytest.approx(0.5)
    few = exs[:16]
    coin = onehot(np.random.default_rng(3).integers(0, 2, 16))
    assert not beats(spec, few, coin, trivial_baseline(spec, few))[1]


def test_real_dev_splits(data_dir):
    cb = trivial_baseline(get_task("cb"), load_task("cb", data_dir).splits["dev"])
    assert isinstance(cb, TrivialBaseline)
    assert cb.kind == "majority class (contradiction)" and cb.metrics["accuracy"] == 28 / 56
    copa = trivial_baseline(get_task("copa"), load_task("copa", data_dir).splits["dev"])
    assert copa.kind == "chance (1 of 2 choices)" and copa.metrics == {"accuracy": 0.5}
    assert copa.stats.units == 100
