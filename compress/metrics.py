"""The official metric of every task, computed from per-row predictions.

Row-level predictions are what the engines produce; grouped tasks (COPA, MultiRC,
ReCoRD) are scored per group here so that every engine is scored the same way.
"""
from __future__ import annotations

import re
import string
from collections import Counter, defaultdict
from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef


def accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    return float(accuracy_score(labels, preds))


def binary_f1(labels: np.ndarray, preds: np.ndarray) -> float:
    return float(f1_score(labels, preds, pos_label=1, average="binary", zero_division=0))


def macro_f1(labels: np.ndarray, preds: np.ndarray) -> float:
    return float(f1_score(labels, preds, average="macro", zero_division=0))


def matthews(labels: np.ndarray, preds: np.ndarray) -> float:
    return float(matthews_corrcoef(labels, preds))


ROW_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "f1": binary_f1,
    "macro_f1": macro_f1,
    "mcc": matthews,
}


def group_argmax(groups: Sequence[str], scores: np.ndarray) -> dict[str, int]:
    """Position (within its group, in row order) of the best-scoring row of each group."""
    best: dict[str, tuple[float, int]] = {}
    seen: Counter[str] = Counter()
    for g, s in zip(groups, scores):
        k = seen[g]
        seen[g] += 1
        if g not in best or s > best[g][0]:
            best[g] = (float(s), k)
    return {g: k for g, (_, k) in best.items()}


def choice_accuracy(groups: Sequence[str], labels: np.ndarray, scores: np.ndarray) -> float:
    """COPA-style: a group is right when its best-scoring row is a positive row."""
    pick = group_argmax(groups, scores)
    gold: dict[str, set[int]] = defaultdict(set)
    seen: Counter[str] = Counter()
    for g, y in zip(groups, labels):
        if y == 1:
            gold[g].add(seen[g])
        seen[g] += 1
    return float(np.mean([pick[g] in gold[g] for g in pick]))


def multirc_scores(groups: Sequence[str], labels: np.ndarray, preds: np.ndarray) -> dict[str, float]:
    """F1a over all answer options and exact match per question (SuperGLUE's definition)."""
    per_q: dict[str, bool] = {}
    for g, y, p in zip(groups, labels, preds):
        per_q[g] = per_q.get(g, True) and bool(y == p)
    return {"f1a": binary_f1(labels, preds), "em": float(np.mean(list(per_q.values())))}


def _normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    p, g = _normalize(prediction).split(), _normalize(gold).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def record_scores(
    groups: Sequence[str], candidates: Sequence[str], golds: Sequence[tuple[str, ...]], scores: np.ndarray
) -> dict[str, float]:
    """ReCoRD: the best-scoring candidate entity per query, max EM/F1 over gold answers."""
    pick = group_argmax(groups, scores)
    cands: dict[str, list[str]] = defaultdict(list)
    gold_of: dict[str, tuple[str, ...]] = {}
    for g, c, gl in zip(groups, candidates, golds):
        cands[g].append(c)
        gold_of[g] = gl
    em, f1 = [], []
    for g, k in pick.items():
        pred = cands[g][k]
        em.append(max((float(_normalize(pred) == _normalize(a)) for a in gold_of[g]), default=0.0))
        f1.append(max((token_f1(pred, a) for a in gold_of[g]), default=0.0))
    return {"em": float(np.mean(em)), "f1": float(np.mean(f1))}
