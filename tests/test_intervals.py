"""Bootstrap intervals: exact point scores, sklearn-equal weighted metrics, paired resamples."""
from __future__ import annotations

import time

import numpy as np
import pytest

from compress import metrics as M
from compress.intervals import (Interval, bootstrap, interval, intervals, paired_difference, point, unit_stats,
                                weighted_metric)
from compress.tasks import Example, get_task, score

WORDS = ("Apple", "Google", "New York", "New York City", "the Paris", "London", "Bank of England", "York")


def make(name: str, n: int, seed: int = 0, signal: float = 1.0):
    """``n`` rows (or groups) of a task with random labels and logits that lean to the label."""
    spec = get_task(name)
    rng = np.random.default_rng(seed)
    exs: list[Example] = []
    if spec.scoring == "rows":
        exs = [Example("a", "b", int(y)) for y in rng.integers(0, spec.num_labels, n)]
    elif spec.scoring == "choice":
        for g in range(n):
            right = int(rng.integers(2))
            exs += [Example("p", f"c{k}", int(k == right), f"g{g}") for k in range(2)]
    elif spec.scoring == "multirc":
        for g in range(n):
            exs += [Example("p", "q a", int(y), f"q{g}") for y in rng.integers(0, 2, rng.integers(1, 6))]
    else:  # record: golds may differ from the candidates in case, articles or extra tokens
        for g in range(n):
            cands = [str(c) for c in rng.choice(WORDS, size=rng.integers(2, 6), replace=False)]
            golds = (cands[0].lower(), "York") if g % 3 else (cands[0],)
            exs += [Example("p", c, int(c in golds), f"r{g}", c, golds) for c in cands]
    labels = np.array([ex.label for ex in exs])
    logits = rng.normal(size=(len(exs), spec.num_labels)).astype(np.float32)
    logits[np.arange(len(exs)), labels] += signal
    return spec, exs, logits


ALL = ("sst2", "mrpc", "cola", "cb", "copa", "multirc", "record")


@pytest.mark.parametrize("name", ALL)
def test_value_is_exactly_the_official_score(name):
    spec, exs, logits = make(name, 60)
    official = score(spec, exs, logits)
    got = intervals(spec, exs, logits, n_boot=200)
    assert set(got) == set(official)
    stats = unit_stats(spec, exs, logits)
    for m, v in official.items():
        assert got[m].value == v
        assert point(stats, m) == pytest.approx(v, abs=1e-9)  # the bootstrap's own arithmetic
        assert got[m].low <= v <= got[m].high
    assert interval(spec, exs, logits, n_boot=200) == got[spec.primary_metric]


@pytest.mark.parametrize("name", ALL)
def test_units_are_rows_or_groups(name):
    spec, exs, logits = make(name, 40)
    want = len(exs) if spec.scoring == "rows" else len({ex.group for ex in exs})
    assert want == 40
    assert interval(spec, exs, logits, n_boot=50).units == want


def test_deterministic_for_a_seed():
    spec, exs, logits = make("cb", 80)
    a = interval(spec, exs, logits, "macro_f1", n_boot=300, seed=3)
    assert a == interval(spec, exs, logits, "macro_f1", n_boot=300, seed=3)
    others = {(iv.low, iv.high) for iv in (interval(spec, exs, logits, "macro_f1", n_boot=300, seed=s) for s in (4, 5))}
    assert others - {(a.low, a.high)}  # another seed, other resamples


@pytest.mark.parametrize("name", ("sst2", "copa", "multirc"))
def test_narrows_with_more_units(name):
    small, big = (interval(*make(name, n, seed=1), n_boot=400) for n in (100, 2000))
    assert big.high - big.low < 0.5 * (small.high - small.low)  # about sqrt(20) narrower


@pytest.mark.filterwarnings("ignore:A single label was found")
@pytest.mark.parametrize("name,metrics", [("cb", ("accuracy", "macro_f1", "mcc", "f1")), ("cola", ("mcc", "f1")),
                                          ("mrpc", ("f1", "accuracy", "macro_f1", "mcc"))])
def test_weighted_metrics_equal_sklearn_on_the_expanded_sample(name, metrics):
    """Integer weights = a resample: the vectorised metric must be sklearn's on repeated rows."""
    spec, exs, logits = make(name, 50, signal=0.5)
    stats = unit_stats(spec, exs, logits)
    labels, preds = np.array([ex.label for ex in exs]), logits.argmax(-1)
    rng = np.random.default_rng(5)
    weights = [np.ones(50, int), rng.integers(0, 4, 50), (labels == 0).astype(int),  # one class only
               (preds == labels).astype(int), np.eye(50, dtype=int)[7]]
    fns = dict(M.ROW_METRICS, f1=lambda y, p: M.binary_f1(y == 1, p == 1))  # cb's binary f1: class 1 vs rest
    for w in weights:
        for m in metrics:
            want = fns[m](np.repeat(labels, w), np.repeat(preds, w))
            assert weighted_metric(stats, m, w)[0] == pytest.approx(want, abs=1e-9), (m, w)


def test_multirc_f1a_is_over_rows_of_resampled_questions():
    spec, exs, logits = make("multirc", 30)
    stats = unit_stats(spec, exs, logits)
    w = np.random.default_rng(2).integers(0, 3, 30)
    groups = list(dict.fromkeys(ex.group for ex in exs))
    rep = [i for g, k in zip(groups, w) for _ in range(k) for i, ex in enumerate(exs) if ex.group == g]
    labels, preds = np.array([exs[i].label for i in rep]), logits[rep].argmax(-1)
    assert weighted_metric(stats, "f1a", w)[0] == pytest.approx(M.binary_f1(labels, preds), abs=1e-9)


def test_paired_difference_with_itself_is_exactly_zero_and_pairs_resamples():
    spec, exs, logits = make("copa", 50)
    a = unit_stats(spec, exs, logits)
    assert paired_difference(spec, a, a, "accuracy", n_boot=200) == Interval(0.0, 0.0, 0.0, 50)
    b = unit_stats(spec, exs, -logits)  # a worse predictor, the same groups
    boots = bootstrap(spec, [a, b, a], "accuracy", n_boot=200)
    assert boots.shape == (200, 3) and np.array_equal(boots[:, 0], boots[:, 2])
    d = paired_difference(spec, a, b, "accuracy", n_boot=200)
    assert d.value == pytest.approx(point(a, "accuracy") - point(b, "accuracy")) and d.low > 0


def test_rejects_unlabelled_rows_mismatched_units_and_unknown_metrics():
    spec, exs, logits = make("sst2", 10)
    with pytest.raises(ValueError, match="unlabelled"):
        unit_stats(spec, exs[:9] + [Example("x")], logits)
    with pytest.raises(ValueError, match="unlabelled"):
        interval(spec, exs[:9] + [Example("x")], logits)
    with pytest.raises(ValueError, match="same units"):
        bootstrap(spec, [unit_stats(spec, exs, logits), unit_stats(spec, exs[:5], logits[:5])], "accuracy")
    with pytest.raises(ValueError, match="no metric"):
        bootstrap(spec, [unit_stats(spec, exs, logits)], "mcc")


def test_thirty_thousand_rows_in_a_few_seconds():
    spec, exs, logits = make("cb", 30_000, signal=2.0)
    start = time.perf_counter()
    got = intervals(spec, exs, logits)
    assert time.perf_counter() - start < 10.0
    for iv in got.values():
        assert iv.units == 30_000 and iv.low <= iv.value <= iv.high and iv.high - iv.low < 0.02
