"""95 % bootstrap intervals for every task metric, over rows or over groups.

A score on a few dozen rows (CB's held-out half is 28 rows: one row is 3.6 points) means
little without its interval, and two models scored on the same rows are compared by a paired
bootstrap: both are re-scored on the same resamples. Grouped tasks (COPA, MultiRC, ReCoRD)
resample whole groups, as their metrics are computed per group. Seeded: the same inputs give
the same interval in any process.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from compress import metrics as M
from compress.tasks import Example, TaskSpec, score

LEVEL = 0.95
N_BOOT = 1000


@dataclass(frozen=True)
class Interval:
    value: float  # the point score (tasks.score on all the rows)
    low: float
    high: float
    units: int  # rows, or groups for grouped tasks: what was resampled
    level: float = LEVEL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Interval":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def describe(self, digits: int = 4) -> str:
        return f"{self.value:.{digits}f} (95% {self.low:.{digits}f}-{self.high:.{digits}f})"


_CHUNK = 1_000_000  # resample weights held at once (replicates x units): 8 MB


# ---------------------------------------------------------------- per-unit statistics


@dataclass(frozen=True)
class UnitStats:
    """One predictor's sufficient statistics per resampling unit (a row, or a group).

    A metric of any resample is a function of weighted sums of these, so a bootstrap is a
    matrix product rather than a re-scoring per replicate.
    """

    confusion: np.ndarray  # (U, K, K): counts of (label, pred) rows within each unit
    values: dict[str, np.ndarray]  # per-unit values of the metrics that are means over groups

    @property
    def units(self) -> int:
        return len(self.confusion)


def group_rows(examples: Sequence[Example]) -> list[list[int]]:
    """Row indices of each group, groups in first-seen order (the order metrics.py uses)."""
    rows: dict[str | None, list[int]] = {}
    for i, ex in enumerate(examples):
        rows.setdefault(ex.group, []).append(i)
    return list(rows.values())


def unit_stats(spec: TaskSpec, examples: Sequence[Example], logits: np.ndarray) -> UnitStats:
    """Units are rows for row tasks, groups for choice, MultiRC and ReCoRD (scored per group)."""
    logits = np.asarray(logits)  # keep the dtype: score() breaks ties on the same margins
    if len(examples) != len(logits):
        raise ValueError(f"{len(examples)} examples but {len(logits)} predictions")
    if any(ex.label is None for ex in examples):
        raise ValueError(f"task {spec.name}: cannot score unlabelled rows")
    if not examples:
        raise ValueError(f"task {spec.name}: no rows to score")
    labels = np.array([ex.label for ex in examples], dtype=int)
    preds = logits.argmax(-1)
    k = max(spec.num_labels, logits.shape[-1], int(labels.max()) + 1)
    rows = np.zeros((len(labels), k, k))
    rows[np.arange(len(labels)), labels, preds] = 1.0
    if spec.scoring == "rows":
        return UnitStats(rows, {})
    groups = group_rows(examples)
    conf = np.zeros((len(groups), k, k))
    np.add.at(conf, np.repeat(np.arange(len(groups)), [len(r) for r in groups]), rows[np.concatenate(groups)])
    if spec.scoring == "multirc":
        return UnitStats(conf, {"em": np.array([float(np.all(labels[r] == preds[r])) for r in groups])})
    margin = logits[:, 1] - logits[:, 0]
    picks = [r[int(np.argmax(margin[r]))] for r in groups]  # first best row, as group_argmax
    if spec.scoring == "choice":
        return UnitStats(conf, {"accuracy": (labels[picks] == 1).astype(float)})
    if spec.scoring == "record":
        em, f1 = [], []
        for r, i in zip(groups, picks):
            pred, golds = examples[i].candidate, examples[r[-1]].golds
            em.append(max((float(M._normalize(pred) == M._normalize(a)) for a in golds), default=0.0))
            f1.append(max((M.token_f1(pred, a) for a in golds), default=0.0))
        return UnitStats(conf, {"em": np.array(em), "f1": np.array(f1)})
    raise ValueError(f"task {spec.name}: unknown scoring {spec.scoring!r}")


# ---------------------------------------------------------------- metrics of weighted units


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (sklearn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den != 0)


def _from_confusion(metric: str, c: np.ndarray) -> np.ndarray:
    """Row metrics of (B, K, K) confusion matrices, with sklearn's semantics."""
    diag = np.einsum("bkk->bk", c)
    t, p = c.sum(2), c.sum(1)  # per class: true count, predicted count
    n = t.sum(1)
    if metric == "accuracy":
        return diag.sum(1) / n
    if metric in ("f1", "f1a"):  # binary, positive label 1
        return _ratio(2 * diag[:, 1], t[:, 1] + p[:, 1])
    if metric == "macro_f1":  # over the classes present in labels or predictions
        present = (t + p) > 0
        return _ratio(2 * diag, t + p).sum(1) / present.sum(1)
    if metric == "mcc":  # sklearn's multiclass formula; 0 when undefined
        cov_tp = diag.sum(1) * n - (t * p).sum(1)
        den = (n**2 - (p * p).sum(1)) * (n**2 - (t * t).sum(1))
        return _ratio(cov_tp, np.sqrt(np.maximum(den, 0.0)))
    raise ValueError(f"unknown metric {metric!r}")


def weighted_metric(stats: UnitStats, metric: str, weights: np.ndarray | None = None) -> np.ndarray:
    """The metric under per-unit weights (B, U); all-ones weights give the point score."""
    w = np.ones((1, stats.units)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    if metric in stats.values:  # a mean over groups
        return w @ stats.values[metric] / w.sum(1)
    u, k, _ = stats.confusion.shape
    return _from_confusion(metric, (w @ stats.confusion.reshape(u, k * k)).reshape(-1, k, k))


def point(stats: UnitStats, metric: str) -> float:
    return float(weighted_metric(stats, metric)[0])


def _resamples(units: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Multinomial counts per unit (a resample with replacement), chunk by chunk."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, _CHUNK // units))
    for start in range(0, n_boot, chunk):
        c = min(chunk, n_boot - start)
        idx = rng.integers(0, units, size=(c, units)) + units * np.arange(c)[:, None]
        yield np.bincount(idx.ravel(), minlength=c * units).reshape(c, units).astype(float)


def bootstrap(spec: TaskSpec, stats: Sequence[UnitStats], metric: str, n_boot: int = N_BOOT,
              seed: int = 0) -> np.ndarray:
    """(n_boot, len(stats)): every predictor scored on the same resamples, so columns pair."""
    if metric not in spec.metrics:
        raise ValueError(f"task {spec.name} has no metric {metric!r}; it has {list(spec.metrics)}")
    units = {s.units for s in stats}
    if len(units) != 1:
        raise ValueError(f"paired bootstrap needs the same units for every predictor, got {sorted(units)}")
    out = [np.stack([weighted_metric(s, metric, w) for s in stats], 1) for w in _resamples(units.pop(), n_boot, seed)]
    return np.concatenate(out)


def bounds(samples: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def interval(spec: TaskSpec, examples: Sequence[Example], logits: np.ndarray, metric: str | None = None,
             n_boot: int = N_BOOT, seed: int = 0) -> Interval:
    """One metric's point score (exactly tasks.score) and its percentile bootstrap interval."""
    metric = metric or spec.primary_metric
    return intervals(spec, examples, logits, n_boot, seed, (metric,))[metric]


def intervals(spec: TaskSpec, examples: Sequence[Example], logits: np.ndarray, n_boot: int = N_BOOT,
              seed: int = 0, metrics: Sequence[str] | None = None) -> dict[str, Interval]:
    """An interval for every metric score() reports (or those in ``metrics``)."""
    values = score(spec, examples, logits)
    stats = unit_stats(spec, examples, logits)
    out = {}
    for m in metrics or values:
        low, high = bounds(bootstrap(spec, [stats], m, n_boot, seed)[:, 0])
        out[m] = Interval(values[m], low, high, stats.units)
    return out


def paired_difference(spec: TaskSpec, a: UnitStats, b: UnitStats, metric: str, n_boot: int = N_BOOT,
                      seed: int = 0, value: float | None = None) -> Interval:
    """metric(a) - metric(b), both re-scored on the same resamples of the same units."""
    boots = bootstrap(spec, [a, b], metric, n_boot, seed)
    low, high = bounds(boots[:, 0] - boots[:, 1])
    diff = point(a, metric) - point(b, metric) if value is None else value
    return Interval(float(diff), low, high, a.units)
