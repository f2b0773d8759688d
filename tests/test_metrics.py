"""Official metrics against values computed by hand."""
from __future__ import annotations

import numpy as np
import pytest

from compress import metrics as M
from compress.tasks import Example, get_task, score


def logits_for(preds):
    out = np.zeros((len(preds), 2))
    out[np.arange(len(preds)), preds] = 1.0
    return out


def test_accuracy_f1_mcc_by_hand():
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    p = np.array([1, 1, 0, 0, 0, 1, 1, 0])
    # tp=3 fp=1 fn=1 tn=3
    assert M.accuracy(y, p) == pytest.approx(6 / 8)
    assert M.binary_f1(y, p) == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert M.matthews(y, p) == pytest.approx((3 * 3 - 1 * 1) / np.sqrt(4 * 4 * 4 * 4))


def test_cb_macro_f1_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    # class0: tp1 fp1 fn1 -> 0.5 ; class1: tp2 fp1 fn0 -> 0.8 ; class2: tp1 fp0 fn1 -> 2/3
    assert M.macro_f1(y, p) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    exs = [Example("a", "b", int(v)) for v in y]
    lg = np.eye(3)[p]
    assert score(get_task("cb"), exs, lg) == pytest.approx({"accuracy": 4 / 6, "macro_f1": (0.5 + 0.8 + 2 / 3) / 3})


def test_mrpc_reports_f1_and_accuracy():
    exs = [Example("a", "b", v) for v in (1, 0, 1, 1)]
    got = score(get_task("mrpc"), exs, logits_for([1, 1, 1, 0]))
    assert got == pytest.approx({"f1": 2 * 2 / (2 * 2 + 1 + 1), "accuracy": 0.5})


def test_cola_matthews():
    exs = [Example("a", None, v) for v in (1, 1, 0, 0)]
    assert score(get_task("cola"), exs, logits_for([1, 1, 0, 0]))["mcc"] == pytest.approx(1.0)
    assert score(get_task("cola"), exs, logits_for([0, 0, 1, 1]))["mcc"] == pytest.approx(-1.0)


def test_multirc_f1a_and_per_question_exact_match():
    # question q1: 3 options all right; q2: 2 options, one wrong; q3: 1 option right
    groups = ["q1", "q1", "q1", "q2", "q2", "q3"]
    labels = [1, 0, 1, 1, 0, 0]
    preds = [1, 0, 1, 1, 1, 0]
    exs = [Example("p", "q a", y, g) for g, y in zip(groups, labels)]
    got = score(get_task("multirc"), exs, logits_for(preds))
    # tp=3 fp=1 fn=0 -> f1a = 6/7 ; EM = 2 of 3 questions
    assert got == pytest.approx({"f1a": 6 / 7, "em": 2 / 3})


def test_copa_choice_accuracy_uses_group_argmax():
    exs = [Example("p", "c1", 1, "a"), Example("p", "c2", 0, "a"), Example("p", "c1", 0, "b"), Example("p", "c2", 1, "b")]
    lg = np.array([[0.0, 2.0], [0.0, 1.0], [0.0, 3.0], [0.0, 0.5]])  # picks choice1 in both
    assert score(get_task("copa"), exs, lg) == {"accuracy": 0.5}


def test_record_em_and_f1():
    exs = [Example("p", "q", 0, "g", "Barack Obama", ("Obama",)), Example("p", "q", 1, "g", "Obama", ("Obama",)),
           Example("p", "q", 1, "h", "the Eiffel Tower", ("Eiffel Tower",))]
    lg = np.array([[0.0, 2.0], [0.0, 1.0], [0.0, 1.0]])
    got = score(get_task("record"), exs, lg)
    # g picks "Barack Obama": EM 0, F1 = 2*(1/2*1)/(1/2+1) = 2/3 ; h: articles dropped -> EM 1
    assert got == pytest.approx({"em": 0.5, "f1": (2 / 3 + 1) / 2})


def test_score_refuses_mismatch():
    with pytest.raises(ValueError):
        score(get_task("sst2"), [Example("a", None, 1)], np.zeros((2, 2)))
