"""Search space, floor, storage and best-trial selection with a real Optuna storage."""
from __future__ import annotations

import logging

import optuna
import pytest

from autotune import study as S
from autotune.floor import AccuracyFloor
from autotune.space import SearchSpace, factorisations, whole_machine
from autotune.storage import finished_count, open_storage
from autotune.trial_record import TrialRecord, meets
from compress.errors import UserInputError
from tests.records import measurement

SPACE = SearchSpace(student_layers=(6, 3), heads_kept=(12, 6), ffn_kept=(1536, 768), layouts=((1, 2), (2, 1)))


def test_factorisations_of_cores():
    assert factorisations(2) == ((1, 1), (1, 2), (2, 1))
    assert (4, 4) in factorisations(16) and (2, 8) in factorisations(16) and (3, 5) not in factorisations(16)
    assert all(n * t <= 16 for n, t in factorisations(16))


def test_space_refusals_are_one_line():
    SPACE.validate(6, 12, 1536, physical_cores=2)
    with pytest.raises(UserInputError, match="heads_kept is empty"):
        SearchSpace((6,), (), (1536,), layouts=((1, 1),)).validate(6, 12, 1536, 2)
    with pytest.raises(UserInputError, match="heads_kept value 16 is outside 1..12"):
        SearchSpace((6,), (16,), (1536,), layouts=((1, 1),)).validate(6, 12, 1536, 2)
    with pytest.raises(UserInputError, match="2 instances x 2 threads needs 4 physical cores; this machine has 2"):
        SearchSpace((6,), (12,), (1536,), layouts=((2, 2),)).validate(6, 12, 1536, 2)
    SearchSpace((6,), (12,), (1536,), layouts=((2, 2),)).validate(6, 12, 1536, 2, oversubscribe=True)
    with pytest.raises(UserInputError, match="unknown engine 'tensorrt'"):
        SearchSpace((6,), (12,), (1536,), engines=("tensorrt",), layouts=((1, 1),)).validate(6, 12, 1536, 2)


def test_space_json_round_trip():
    assert SearchSpace.from_dict(SPACE.to_dict()) == SPACE
    import json

    assert SearchSpace.from_dict(json.loads(SPACE.to_json())) == SPACE


def test_floor_rules():
    assert AccuracyFloor(below_teacher=1.0).threshold(0.90) == pytest.approx(0.89)
    assert AccuracyFloor(absolute=0.85, below_teacher=None).threshold(0.90) == 0.85
    with pytest.raises(UserInputError, match="above the teacher's own dev score"):
        AccuracyFloor(absolute=0.95, below_teacher=None).threshold(0.90)
    with pytest.raises(UserInputError, match="between 0 and 1"):
        AccuracyFloor(absolute=88.0)


def test_unreachable_storage_is_refused_with_one_line(tmp_path):
    with pytest.raises(UserInputError, match=r"--storage postgresql://nobody@127.0.0.1:1/x: cannot open the Optuna storage .*refused"):
        open_storage("postgresql://nobody@127.0.0.1:1/x", tmp_path)
    with pytest.raises(UserInputError, match="--storage sqlite:////proc/no/such/study.db: folder /proc/no/such does not exist"):
        open_storage("sqlite:////proc/no/such/study.db", tmp_path)


def stored_study(tmp_path, results: dict[int, tuple[float, float]], floor: float,
                 models: dict[int, str] | None = None) -> optuna.Study:
    """A real sqlite study whose trial k scored results[k] = (accuracy, ex/s) under ``floor``,
    trial k's recipe key ``models[k]`` when given."""
    st = S.open_study(open_storage(None, tmp_path), "t", multi=True, seed=0, n_trials=len(results))

    def objective(trial):
        k = trial.suggest_categorical("k", list(results))
        acc, thr = results[k]
        # no stored verdict, as in studies from before it was kept: feasibility by the constraints
        TrialRecord(recipe_key=models[k] if models else None, constraints=(floor - acc,),
                    measurement=measurement(thr, {"accuracy": acc})).write(trial)
        trial.set_constraint("accuracy_floor", floor - acc)
        return acc, thr

    for k in results:
        st.enqueue_trial({"k": k})
    st.optimize(objective, n_trials=len(results))
    return st


def test_infeasible_trials_are_never_best(tmp_path):
    """A real sqlite study where the fastest trials miss the floor."""
    st = stored_study(tmp_path, {0: (0.95, 100.0), 1: (0.70, 900.0), 2: (0.85, 300.0), 3: (0.79, 5000.0)}, 0.8)
    best = S.best_trial(st)
    assert best.params["k"] == 2  # not 3 (faster but 0.79 < 0.8) nor 1
    assert {t.params["k"] for t in S.feasible_trials(st)} == {0, 2}
    assert finished_count(st) == 4


def test_routes_become_recipes(tmp_path):
    """FastFormers and AxFormer routes map to the recipes the pipeline builds; runtime-only
    differences keep the recipe key."""
    from autotune.space import Choice
    from autotune.sweep import Sweep, SweepConfig

    sweep = Sweep(SweepConfig(task="sst2", run_dir=str(tmp_path), preset="overnight"))
    shape = (6, 12, 1536)
    sig, _ = sweep.to_trial(Choice(3, "significance", 6, 768, "ort-int8", 8, 1, 2), shape)
    assert (sig.approx, sig.approx_layers, sig.approx_heads, sig.ffn_kept) == ("significance-drop", 3, 6, 768)
    assert sig.student_layers is None and sig.heads_kept is None and sig.approx_epochs == sig.kd_epochs > 0
    sub, rt = sweep.to_trial(Choice(3, "subset", 6, 1536, "ort-int8", 8, 1, 2), shape)
    assert (sub.student_layers, sub.route, sub.heads_kept, sub.ffn_kept, sub.approx) == (3, "subset", 6, None, "none")
    sub2, rt2 = sweep.to_trial(Choice(3, "subset", 6, 1536, "ort-fp32", 32, 2, 1), shape)
    assert sub2.key() == sub.key() and rt2 != rt
    full, _ = sweep.to_trial(Choice(6, "none", 12, 1536, "ort-int8-selective", 1, 1, 2), shape)
    assert full.student_layers is None and full.approx == "significance"  # the engine needs the scores
    SearchSpace(student_layers=(3,), heads_kept=(6,), ffn_kept=(768,), routes=("significance",),
                layouts=((1, 2),)).validate(6, 12, 1536, 2)
    with pytest.raises(UserInputError, match="unknown route 'magic'"):
        SearchSpace(student_layers=(3,), heads_kept=(6,), ffn_kept=(768,), routes=("magic",),
                    layouts=((1, 2),)).validate(6, 12, 1536, 2)


def test_anchors_fit_the_space_or_are_skipped():
    from autotune.space import anchor_params

    space = SearchSpace(student_layers=(6, 4), heads_kept=(12, 6), ffn_kept=(1536, 768), routes=("subset",),
                        batch_sizes=(1, 32), layouts=((1, 2), (2, 1)))
    a = dict(student_layers=4, route="subset", heads_kept=6, ffn_kept=768, engine="ort-int8", batch_size=32)
    assert anchor_params(a, space, 6, 2) == {**a, "layout": "2x1"}
    assert anchor_params({**a, "route": "significance"}, space, 6, 2) is None
    assert anchor_params({**a, "student_layers": 6}, space, 6, 2) == {
        k: v for k, v in {**a, "student_layers": 6, "layout": "2x1"}.items() if k != "route"}
    assert anchor_params(a, space, 6, 4) is None  # 4x1 is not a layout of this space


def test_heldout_confirmation_ships_the_fastest_trial_that_also_passes_held_out(tmp_path):
    """A real sqlite study; the fastest feasible trial is worse held out than on the search rows."""
    from autotune.confirm import confirm, heldout_floor

    search = {0: (0.90, 100.0), 1: (0.88, 900.0), 2: (0.89, 500.0), 3: (0.70, 5000.0)}  # (accuracy, ex/s)
    heldout = {0: 0.91, 1: 0.85, 2: 0.895, 3: 0.90}
    st = stored_study(tmp_path, search, 0.85)
    ranked = S.ranked_feasible(st)
    assert [t.params["k"] for t in ranked] == [1, 2, 0]  # 3 is infeasible however fast
    asked: list[int] = []

    def held(trial):
        asked.append(trial.params["k"])
        return {"metrics": {"accuracy": heldout[trial.params["k"]]}}

    floor = heldout_floor(AccuracyFloor(below_teacher=1.0), teacher_heldout=0.90)
    assert floor == pytest.approx(0.89)
    picked, checks, measured = confirm(ranked, held, floor, "accuracy", top=5)
    assert picked.params["k"] == 2 and asked == [1, 2]  # stops at the first that passes
    assert [c.passed for c in checks] == [False, True] and measured[-1]["metrics"]["accuracy"] == 0.895
    asked.clear()
    picked, checks, _ = confirm(ranked, held, 0.95, "accuracy", top=2)
    assert picked is None and asked == [1, 2] and not any(c.passed for c in checks)
    assert heldout_floor(AccuracyFloor(absolute=0.8, below_teacher=None), teacher_heldout=0.99) == 0.8


def test_heldout_checks_each_model_once_and_names_the_closest_when_none_passes(tmp_path):
    from autotune.confirm import closest, confirm

    search = {0: (0.90, 3000.0), 1: (0.90, 2900.0), 2: (0.89, 2000.0), 3: (0.90, 1000.0)}
    models = {0: "fast", 1: "fast", 2: "mid", 3: "slow"}  # trial 1: the fast model at another batch size
    heldout = {"fast": 0.85, "mid": 0.88, "slow": 0.87}
    ranked = S.ranked_feasible(stored_study(tmp_path, search, 0.85, models))
    asked: list[int] = []

    def held(trial):
        asked.append(trial.params["k"])
        return {"metrics": {"accuracy": heldout[models[trial.params["k"]]]}}

    picked, checks, _ = confirm(ranked, held, 0.89, "accuracy", top=3)
    assert picked is None and asked == [0, 2, 3]  # trial 1 is the fast model again: not re-checked
    assert checks[closest(checks)].trial == 2  # closest to the floor held out, not the fastest


def test_heldout_checks_are_kept_in_the_study_for_resumed_runs(tmp_path):
    """A resumed run (the study reloaded from its sqlite file) re-measures no checked trial, and
    reads the scores a study from before the stored metrics kept in heldout_checks."""
    from autotune.confirm import ATTR_CHECKS, confirm, remembered

    st = stored_study(tmp_path, {0: (0.90, 3000.0), 1: (0.90, 2000.0), 2: (0.90, 1000.0)}, 0.85,
                      {0: "a", 1: "b", 2: "c"})
    heldout = {0: 0.80, 1: 0.86, 2: 0.95}
    asked: list[int] = []

    def held(trial):
        asked.append(trial.number)
        return {"metrics": {"accuracy": heldout[trial.number]}, "throughput": 1.0}

    picked, _, measured = confirm(S.ranked_feasible(st), remembered(st, held, "accuracy"), 0.85, "accuracy", top=3)
    assert picked.number == 1 and asked == [0, 1] and measured[-1] == {"metrics": {"accuracy": 0.86}}
    resumed = optuna.load_study(study_name="t", storage=open_storage(None, tmp_path))
    picked, checks, _ = confirm(S.ranked_feasible(resumed), remembered(resumed, held, "accuracy"), 0.90,
                                "accuracy", top=3)  # a stricter floor reaches trial 2, never checked before
    assert picked.number == 2 and asked == [0, 1, 2] and [c.score for c in checks] == [0.80, 0.86, 0.95]

    resumed.set_user_attr("heldout_metrics", {})
    resumed.set_user_attr(ATTR_CHECKS, [c.to_dict() for c in checks])  # what such an older study holds
    of = remembered(resumed, held, "accuracy")
    assert [of(t)["metrics"]["accuracy"] for t in S.ranked_feasible(resumed)] == [0.80, 0.86, 0.95]
    assert asked == [0, 1, 2]


def measured(trial, model: str, throughput: float, accuracy: float, floor: float = 0.8) -> None:
    """What the objective stores for a measured trial of ``model``, under ``floor``."""
    cons = (floor - accuracy,)
    TrialRecord(recipe_key=model, measurement=measurement(throughput, {"accuracy": accuracy}), constraints=cons,
                feasible=meets(cons)).write(trial)


def test_a_feasible_model_is_queued_at_every_other_batch_size_once(tmp_path):
    """RuntimeSiblings on a real study: new feasible models get batch-size siblings, others none."""
    st = S.open_study(open_storage(None, tmp_path), "t", multi=True, seed=0, n_trials=20)
    accuracy = {"good": 0.9, "bad": 0.5}

    def objective(trial):
        model = trial.suggest_categorical("model", ["good", "bad"])
        batch = trial.suggest_categorical("batch_size", [1, 8, 32])
        measured(trial, model, 10.0 * batch, accuracy[model])
        return accuracy[model], 10.0 * batch

    st.enqueue_trial({"model": "bad", "batch_size": 8})
    st.enqueue_trial({"model": "good", "batch_size": 8})
    st.optimize(objective, n_trials=4, callbacks=[S.RuntimeSiblings((1, 8, 32))])
    done = [(t.params["model"], t.params["batch_size"]) for t in st.trials]
    assert done == [("bad", 8), ("good", 8), ("good", 1), ("good", 32)]  # siblings run next, in order
    assert not [t for t in st.trials if t.state.name == "WAITING"]  # the siblings queued no siblings


def test_siblings_cover_whole_machine_layouts_once_per_model_and_engine(tmp_path):
    """A feasible (model, engine) is queued at every batch size × whole-machine layout; the same model
    under another engine gets its own siblings; layouts that leave cores idle are never queued."""
    assert whole_machine(factorisations(2)) == ("1x2", "2x1")
    assert whole_machine(factorisations(16)) == ("1x16", "2x8", "4x4", "8x2", "16x1")
    st = S.open_study(open_storage(None, tmp_path), "t", multi=True, seed=0, n_trials=20)

    def objective(trial):
        engine = trial.suggest_categorical("engine", ["int8", "fp32"])
        batch = trial.suggest_categorical("batch_size", [1, 8])
        layout = trial.suggest_categorical("layout", ["1x1", "1x2", "2x1"])
        measured(trial, "m", float(batch), 0.9)
        return 0.9, float(batch)

    st.enqueue_trial({"engine": "int8", "batch_size": 8, "layout": "2x1"})
    st.optimize(objective, n_trials=4, callbacks=[S.RuntimeSiblings((1, 8), whole_machine(factorisations(2)))])
    st.enqueue_trial({"engine": "fp32", "batch_size": 1, "layout": "1x2"})
    st.optimize(objective, n_trials=4, callbacks=[S.RuntimeSiblings((1, 8), whole_machine(factorisations(2)))])
    done = [(t.params["engine"], t.params["batch_size"], t.params["layout"]) for t in st.trials]
    assert done == [("int8", 8, "2x1"), ("int8", 1, "1x2"), ("int8", 8, "1x2"), ("int8", 1, "2x1"),
                    ("fp32", 1, "1x2"), ("fp32", 8, "1x2"), ("fp32", 1, "2x1"), ("fp32", 8, "2x1")]
    assert not [t for t in st.trials if t.state.name == "WAITING"]


def test_a_model_first_feasible_with_a_slow_engine_is_queued_once_with_the_primary_one(tmp_path):
    """EngineSiblings on a real study: a feasible model drawn with fp32 is tried with int8 at the same batch
    and layout, once (its runtime siblings queue no more); one drawn with int8 first, or infeasible, gets none."""
    st = S.open_study(open_storage(None, tmp_path), "t", multi=True, seed=0, n_trials=20)
    accuracy = {"m": 0.9, "n": 0.9, "bad": 0.5}

    def objective(trial):
        model = trial.suggest_categorical("model", ["m", "n", "bad"])
        engine = trial.suggest_categorical("engine", ["int8", "fp32"])
        batch = trial.suggest_categorical("batch_size", [1, 8])
        measured(trial, model, float(batch), accuracy[model])
        return accuracy[model], float(batch)

    for params in ({"model": "m", "engine": "fp32", "batch_size": 8}, {"model": "bad", "engine": "fp32", "batch_size": 8},
                   {"model": "n", "engine": "int8", "batch_size": 8}, {"model": "n", "engine": "fp32", "batch_size": 1}):
        st.enqueue_trial(params)
    st.optimize(objective, n_trials=9, callbacks=[S.EngineSiblings("int8"), S.RuntimeSiblings((1, 8))])
    done = [(t.params["model"], t.params["engine"], t.params["batch_size"]) for t in st.trials]
    # m's int8 trial comes first among m's queued ones, then the runtime siblings of each (model, engine)
    assert done == [("m", "fp32", 8), ("bad", "fp32", 8), ("n", "int8", 8), ("n", "fp32", 1), ("m", "int8", 8),
                    ("m", "fp32", 1), ("n", "int8", 1), ("n", "fp32", 8), ("m", "int8", 1)]
    assert not [t for t in st.trials if t.state.name == "WAITING"]


def test_anchors_wait_for_the_siblings_of_a_feasible_anchor_and_resume_where_they_stopped(tmp_path):
    """AnchorQueue with RuntimeSiblings on a real sqlite study, stopped and reloaded midway."""
    storage = open_storage(None, tmp_path)
    accuracy = {"a": 0.9, "b": 0.5, "c": 0.85}

    def objective(trial):
        model = trial.suggest_categorical("model", ["a", "b", "c"])
        batch = trial.suggest_categorical("batch_size", [1, 8])
        measured(trial, model, 10.0 * batch, accuracy[model])
        return accuracy[model], 10.0 * batch

    anchors = [{"model": m, "batch_size": 8} for m in "abc"]

    def run(n):
        st = S.open_study(storage, "t", multi=True, seed=0, n_trials=20)
        queue = S.AnchorQueue(anchors)
        queue(st)
        st.optimize(objective, n_trials=n, callbacks=[S.RuntimeSiblings((1, 8)), queue])
        return [(t.params["model"], t.params["batch_size"]) for t in st.trials if t.state.name == "COMPLETE"]

    assert run(2) == [("a", 8), ("a", 1)]  # a's sibling before the next anchor
    assert run(3) == [("a", 8), ("a", 1), ("b", 8), ("c", 8), ("c", 1)]  # resumed: b, then c and its sibling


def test_a_presets_pruning_choices_are_shares_of_the_teacher_and_counts_on_the_command_line_are_not(
        tmp_path, data_dir, caplog):
    """The quick preset was sized on MiniLM (12 heads, FFN 1536): its FFN 1536 means 'no cut' there, but
    half the FFN of an MPNet-base teacher (3072), so no trial could keep a base-size FFN whole."""
    from dataclasses import replace

    from autotune.cli import build_parser
    from autotune.commands.sweep_cmd import config_from_args
    from autotune.presets import get_preset
    from autotune.sweep import Sweep
    from tests._tiny import save_tiny

    quick = get_preset("quick").space
    assert quick.for_teacher(12, 1536) == replace(quick, sized_for_heads=None, sized_for_ffn=None)  # as sized
    assert quick.for_teacher(12, 3072).ffn_kept == (3072, 1536, 768)  # MPNet-base, RoBERTa-base, BERT-base
    assert get_preset("overnight").space.for_teacher(12, 3072).ffn_kept == (3072, 2304, 1536, 1024, 768)
    anchor = get_preset("quick").anchors[1]
    assert quick.scale_point(anchor, 12, 3072) == {**anchor, "ffn_kept": 768}  # 384 of 1536: a quarter

    teacher = save_tiny(tmp_path / "teacher", layers=4, heads=4, hidden=16, intermediate=64)

    def sweep(*flags, announce=True):
        args = build_parser().parse_args(["sweep", "--task", "sst2", "--data-dir", str(data_dir), "--preset", "quick",
                                          "--teacher", str(teacher), "--run-dir", str(tmp_path / "run"), *flags])
        s = Sweep(config_from_args(args))
        s.check_inputs(announce=announce)
        return s

    def said_scaled():
        return sum("pruning choices scaled" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.INFO, logger="autotune.sweep"):
        sweep(announce=False)  # a suite's up-front check: its sweep says it once, later
        assert said_scaled() == 0
        scaled = sweep()
        assert said_scaled() == 1
    assert (scaled.space.heads_kept, scaled.space.ffn_kept) == ((4, 2, 1), (64, 32, 16))
    assert [(a["heads_kept"], a["ffn_kept"]) for a in scaled.anchors((4, 4, 64))] == [(4, 32), (2, 16), (4, 16), (4, 64)]
    given = sweep("--ffn", "48,24")  # counts given by the user stay counts; the preset's heads still scale
    assert (given.space.heads_kept, given.space.ffn_kept) == ((4, 2, 1), (48, 24))
    assert given.anchors((4, 4, 64)) == []  # the anchors' FFN shares are not in that space
