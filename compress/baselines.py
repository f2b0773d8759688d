"""The score a predictor gets without reading its input, computed from the data it is scored on.

A compressed model is only worth shipping when it beats this beyond noise: CB's dev is half
one class, so 0.50 accuracy is what a constant answer gets. Row tasks and MultiRC get the best
constant label; choice tasks (COPA, ReCoRD) the expected score of a uniformly random pick.
Every baseline carries per-unit statistics, so ``beats`` is a paired bootstrap on the same
resamples as the model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from compress import metrics as M
from compress.intervals import N_BOOT, Interval, UnitStats, group_rows, paired_difference, unit_stats
from compress.tasks import Example, TaskSpec, score


@dataclass(frozen=True)
class TrivialBaseline:
    kind: str  # e.g. "majority class (entailment)", "constant 'True'", "chance (1 of 2 choices)"
    metrics: dict[str, float]
    stats: UnitStats = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "metrics": dict(self.metrics)}


def _constant(spec: TaskSpec, examples: Sequence[Example]) -> TrivialBaseline:
    """The constant label with the best primary metric on these rows; ties go to the lowest."""
    k = max(spec.num_labels, max(ex.label for ex in examples) + 1)
    best: tuple[float, int, dict[str, float], np.ndarray] | None = None
    for c in range(k):
        logits = np.zeros((len(examples), k))
        logits[:, c] = 1.0
        got = score(spec, examples, logits)
        if best is None or got[spec.primary_metric] > best[0]:
            best = (got[spec.primary_metric], c, got, logits)
    _, c, got, logits = best
    name = spec.label_names[c] if c < spec.num_labels else str(c)
    kind = f"majority class ({name})" if spec.primary_metric == "accuracy" else f"constant '{name}'"
    return TrivialBaseline(kind, got, unit_stats(spec, examples, logits))


def _sizes(groups: list[list[int]], noun: str) -> str:
    sizes = {len(r) for r in groups}
    return f"chance (1 of {sizes.pop() if len(sizes) == 1 else 'N'} {noun})"


def _choice(spec: TaskSpec, examples: Sequence[Example]) -> TrivialBaseline:
    """COPA: a random pick is right with probability (#right rows / #rows) in its group."""
    groups = group_rows(examples)
    labels = np.array([ex.label for ex in examples])
    expected = np.array([np.mean(labels[r] == 1) for r in groups])
    stats = UnitStats(np.zeros((len(groups), 2, 2)), {"accuracy": expected})
    return TrivialBaseline(_sizes(groups, "choices"), {"accuracy": float(expected.mean())}, stats)


def _record(spec: TaskSpec, examples: Sequence[Example]) -> TrivialBaseline:
    """ReCoRD: the mean over a query's candidates of each one's max EM / F1 against the golds."""
    groups = group_rows(examples)
    em, f1 = [], []
    for r in groups:
        golds = examples[r[-1]].golds  # score() takes a group's golds from its last row
        cands = [examples[i].candidate for i in r]
        em.append(np.mean([max((float(M._normalize(c) == M._normalize(a)) for a in golds), default=0.0) for c in cands]))
        f1.append(np.mean([max((M.token_f1(c, a) for a in golds), default=0.0) for c in cands]))
    values = {"em": np.array(em), "f1": np.array(f1)}
    stats = UnitStats(np.zeros((len(groups), 2, 2)), values)
    return TrivialBaseline(_sizes(groups, "candidates"), {m: float(values[m].mean()) for m in spec.metrics}, stats)


def trivial_baseline(spec: TaskSpec, examples: Sequence[Example]) -> TrivialBaseline:
    """The best input-blind score on ``examples``: what any shipped model must beat."""
    if not examples:
        raise ValueError(f"task {spec.name}: no rows for a trivial baseline")
    if any(ex.label is None for ex in examples):
        raise ValueError(f"task {spec.name}: cannot score unlabelled rows")
    if spec.scoring == "choice":
        return _choice(spec, examples)
    if spec.scoring == "record":
        return _record(spec, examples)
    return _constant(spec, examples)  # rows and MultiRC: a constant answer


def beats(spec: TaskSpec, examples: Sequence[Example], logits: np.ndarray, trivial: TrivialBaseline,
          n_boot: int = N_BOOT, seed: int = 0) -> tuple[Interval, bool]:
    """Model minus trivial on the primary metric (paired bootstrap); True when its low end is > 0."""
    metric = spec.primary_metric
    value = score(spec, examples, logits)[metric] - trivial.metrics[metric]
    diff = paired_difference(spec, unit_stats(spec, examples, logits), trivial.stats, metric, n_boot, seed, value)
    return diff, diff.low > 0
