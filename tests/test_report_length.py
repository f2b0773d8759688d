"""A resumed sweep's length: trial times read back from a real sqlite study, merged into stretches."""
from __future__ import annotations

import optuna
from optuna.trial import TrialState

from reports.length import sweep_length
from reports.load import load_run
from tests.stamped import add


def test_resumed_sweep_length_from_stored_trials(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s",
                                directions=["maximize", "maximize"])
    # first run, 06:00-06:40: a 20-minute build, a 2 s sibling, a failure with its reason
    add(study, 0, 0, 20, key="m1")
    add(study, 1, 20.05, 20.1, key="m1")
    add(study, 2, 20.2, 40, state=TrialState.FAIL, error="RuntimeError: out of memory")
    # a trial the killed first run left behind: failed when the second run found it stale at 08:00;
    # its end is unknown, so it must neither count nor bridge the pause
    add(study, 3, 40, 120, state=TrialState.FAIL)
    # second run, 08:00-09:00, with two workers whose trials overlap
    add(study, 4, 120, 160, key="m2")
    add(study, 5, 130, 180, key="m3")
    (res,) = load_run(tmp_path)
    assert res.trials.loc[res.trials.trial == 0, "seconds"].item() == 1200.0
    assert res.trials.loc[res.trials.trial == 4, "started"].item() == "2026-11-23 08:00:00"
    # the CSV's `finished` column is the sweep's own budget rule: the killed trial 3 is not in it
    assert res.trials["finished"].tolist() == [True, True, True, False, True, True]

    length = sweep_length(res.trials)
    assert [(s.start.strftime("%H:%M"), s.end.strftime("%H:%M"), s.trials) for s in length.stretches] == [
        ("06:00", "06:40", 3), ("08:00", "09:00", 2)]
    assert length.seconds == 100 * 60 and length.trials == 5 and length.models == 3
    assert length.describe().startswith("1 h 40 min of trials in 2 stretches (2026-11-23 06:00–06:40, 2026-11-23 08:00–09:00;")
    assert length.to_dict()["stretches"][1] == {"start": "2026-11-23 08:00:00", "end": "2026-11-23 09:00:00",
                                                "seconds": 3600.0, "trials": 2}


def test_a_pause_shorter_than_the_gap_stays_one_stretch(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s",
                                directions=["maximize", "maximize"])
    add(study, 0, 0, 10)
    add(study, 1, 14, 15)  # 4 min later: the same run (e.g. a slow model load), not a resume
    (res,) = load_run(tmp_path)
    length = sweep_length(res.trials)
    assert len(length.stretches) == 1 and length.describe().startswith("15 min 00 s of trials in 1 stretch (")
    assert sweep_length(res.trials.iloc[0:0]).describe() == "no trial has finished yet"
