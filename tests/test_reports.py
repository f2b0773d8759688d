"""Reports from a real Optuna sqlite study: browser rendering, escaping, determinism, failed
and infeasible trials kept off the front, one-line refusals."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from autotune.hopeless import Curve
from autotune.measure import Measurement
from autotune.runtime import Runtime
from autotune.trial_record import TrialRecord, meets
from compress.errors import UserInputError
from compress.recipe import Recipe
from reports import pareto
from reports.build import Inputs, write
from reports.load import load_run
from tests import records

EVIL = "<script>alert(1)</script>"
DIST = {"k": CategoricalDistribution([0, 1, 2, 3, 4, 5, 6, 7])}


def measurement(tp: float, acc: float, p99: float, metric: str = "accuracy", engine: str = "ort-int8",
                layout=(1, 2), measured: bool = False) -> Measurement:
    rt = Runtime(engine=engine, padding="dynamic", batch_size=8, instances=layout[0], threads=layout[1])
    return records.measurement(tp, {metric: acc}, p99, rt, measured, core_sets=((0, 1),))


SIG = {"layers": [0.31, -0.002, 0.05], "heads": [[0.1, 0.0, 0.2], [0.01, 0.02, 0.0], [0.3, 0.1, 0.05]],
       "ffn_groups": [[0.01] * 8, [0.0] * 8, [0.02] * 8], "base_loss": 0.35, "rows": 512, "seed": 0}


HOPELESS = "hopeless: student at step 40/300 scores 0.7100 and a 1-point margin, below the floor 0.8800"
STUDENT = Curve("student", "s2", 300, ((0, 0.5), (40, 0.82), (150, 0.87), (300, 0.885)), done=True, seconds=60.0)


def add(study, k: int, tp: float, acc: float, p99: float, floor: float, metric: str = "accuracy",
        layers=3, heads=6, error: str | None = None, hopeless: bool = False) -> None:
    recipe = Recipe(task=study.user_attrs["task"], student_layers=layers, route="subset", heads_kept=heads,
                    ffn_kept=768)
    m = measurement(tp, acc, p99, metric, layout=(2, 1) if k % 2 else (1, 2))
    record = TrialRecord(recipe=recipe, recipe_key=f"key{k}", runtime=m.runtime)
    if error:
        t = create_trial(state=TrialState.FAIL, params={"k": k}, distributions=DIST)
        replace(record, error=error, constraints=(1.0,)).write(t)
        study.add_trial(t)
        return
    if hopeless:  # stopped while its student trained
        t = create_trial(state=TrialState.PRUNED, params={"k": k}, distributions=DIST)
        stopped = Curve("student", f"s{k}", 300, ((0, 0.5), (20, 0.64), (40, 0.71)), done=False, seconds=8.0)
        replace(record, curves=(stopped,), pruned=HOPELESS, saved_s=52.0).write(t)
        study.add_trial(t)
        return
    cons = (floor - acc,)
    if k == 3:  # the deployed pick, scored by significance (AxFormer route)
        record = replace(record, significance=SIG,
                         recipe=replace(recipe, approx="significance-drop", approx_layers=3))
    t = create_trial(values=[acc, tp], params={"k": k}, distributions=DIST)
    if k in (2, 3):  # two trials sharing one distilled student
        record = replace(record, curves=(STUDENT,))
    replace(record, measurement=m, model_dir=f"/cache/m{k}", constraints=cons, feasible=meets(cons)).write(t)
    study.add_trial(t)


def make_study(storage: str, name: str, task: str, metric: str, note: str = "") -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name=name, directions=["maximize", "maximize"])
    floor = 0.88
    for key, value in {"task": task, "metric": metric, "floor": floor, "floor_rule": "teacher − 1.0 points",
                       "hardware": {"hash": "abc123", "cpu_model": "Test CPU", "cores": [[0], [1]]},
                       "config": {"preset": "quick"},
                       "references": {"teacher_metrics": {metric: 0.89},
                                      "baseline": measurement(20.0, 0.89, 60.0, metric, "torch-fp32",
                                                              (1, None)).to_dict(),
                                      "teacher_ort_int8": measurement(80.0, 0.885, 15.0, metric).to_dict(),
                                      "notes": [note] if note else []}}.items():
        study.set_user_attr(key, value)
    add(study, 0, 100.0, 0.890, 20.0, floor, metric, layers=6, heads=12)  # front
    add(study, 1, 150.0, 0.882, 14.0, floor, metric)  # dominated by trial 2 on throughput
    add(study, 2, 200.0, 0.885, 12.0, floor, metric)  # front
    add(study, 3, 300.0, 0.881, 8.0, floor, metric, layers=2)  # front, the fastest feasible
    add(study, 4, 900.0, 0.800, 2.0, floor, metric, layers=1, heads=2)  # fastest of all, but infeasible
    add(study, 5, 0, 0, 0, floor, metric, error=f"RuntimeError: out of memory {EVIL}")
    add(study, 6, 0, 0, 0, floor, metric, layers=1, hopeless=True)
    return study


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    storage = f"sqlite:///{run / 'study.db'}"
    make_study(storage, "sst2-quick", "sst2", "accuracy")
    make_study(storage, f"evil-{EVIL}", EVIL, f"acc {EVIL}", note=f"note {EVIL}")
    (run / "deploy").mkdir()
    (run / "deploy" / "sst2.json").write_text(json.dumps({
        "task": "sst2", "study": "sst2-quick", "trial": 3, "throughput": 310.0, "latency_p50_ms": 4.0,
        "latency_p99_ms": 8.5, "dev_score": 0.881, "heldout_score": 0.872, "recipe": {}, "runtime": {}}))
    from autotune.paper_results import AblationResult, StudyRow, Table2Result

    Table2Result(task="sst2", metric="accuracy", baseline=StudyRow("no thread control", 40.0, 1, None, speedup=1.0),
                 rows=(StudyRow("1×2", 50.0, 1, 2, accuracy=0.88, speedup=1.25),
                       StudyRow("2×1", 90.0, 2, 1, accuracy=0.88, speedup=2.25))).write(run)
    steps = [("baseline: PyTorch fp32", 20.0, 0.89, 1.0, False), ("+ ORT int8", 80.0, 0.885, 4.0, False),
             (f"+ distil {EVIL}", 240.0, 0.883, 3.0, False), ("+ 2×1 instances", 400.0, 0.883, 400 / 240, False),
             ("reference: teacher ORT int8", 100.0, 0.885, None, True)]
    AblationResult(task="sst2", metric="accuracy", steps=tuple(
        StudyRow(name, tp, accuracy=acc, name=name, step=i, speedup=tp / 20.0, step_gain=gain, reference=ref)
        for i, (name, tp, acc, gain, ref) in enumerate(steps))).write(run)
    return run


@pytest.fixture(scope="module")
def report(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write(Inputs(run_dir=run_dir, out_dir=out))
    return out


PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || (e.target && e.target.src) || e)), true);
const origError = console.error;
console.error = (...a) => { window.__errors.push(a.join(' ')); origError(...a); };
window.addEventListener('load', () => {  // synchronous: --dump-dom is taken right after load
  const imgs = Array.from(document.images);
  const pre = document.createElement('pre'); pre.id = 'results';
  pre.textContent = JSON.stringify({widths: imgs.map(i => i.complete ? i.naturalWidth : -1),
                                    errors: window.__errors, scripts: document.querySelectorAll('script').length});
  document.body.appendChild(pre);
});
</script>"""


def test_report_renders_in_headless_chromium(report):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium not installed: `apt-get install -y chromium` (make test installs it)")
    page = report / "probe.html"
    html = (report / "report.html").read_text()
    page.write_text(html.replace("<head>", "<head>" + PROBE, 1))
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
             "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=60)
    found = re.search(r'<pre id="results">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no probe results; chromium said: {proc.stderr[-2000:]}"
    results = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    # (2 Pareto plots + the training curves + a significance heat map) × 2 tasks + Table 2 + ablation
    assert len(results["widths"]) == 10 and all(w > 0 for w in results["widths"]), results
    assert results["errors"] == [], results
    assert results["scripts"] == 1  # the probe only: no stored text became a script


def test_stored_html_is_escaped(report):
    html = (report / "report.html").read_text()
    md = (report / "report.md").read_text()
    assert "<script" not in html and "<script" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "note &lt;script&gt;" in html  # notes, errors and labels too
    assert "data:image/png;base64," in html and "http" not in html.replace("http-equiv", "")


def test_regenerating_gives_identical_outputs(run_dir, report, tmp_path):
    write(Inputs(run_dir=run_dir, out_dir=tmp_path))
    for name in ("trials.csv", "best_recipes.csv", "table2.csv", "ablation.csv", "report.md", "report.html"):
        assert (tmp_path / name).read_bytes() == (report / name).read_bytes(), name


def test_failed_and_infeasible_are_marked_never_on_the_front(run_dir, report):
    sst2 = next(r for r in load_run(run_dir) if r.task == "sst2")
    status = dict(zip(sst2.trials["trial"], sst2.trials["status"]))
    assert status == {0: "feasible", 1: "feasible", 2: "feasible", 3: "feasible", 4: "infeasible", 5: "fail",
                      6: "pruned"}
    for axis in (pareto.THROUGHPUT, pareto.P99):
        assert list(pareto.front(sst2.trials, axis)["trial"]) == ([0, 2, 3] if axis is pareto.THROUGHPUT
                                                                  else [3, 2, 0])
    assert sst2.chosen()["trial"] == 3  # the deployed one, not the faster infeasible trial 4
    html = (report / "report.html").read_text()
    assert 'class="infeasible"><td>4</td>' in html and 'class="fail"><td>5</td>' in html
    assert "RuntimeError: out of memory" in html
    assert 'class="pruned"><td>6</td>' in html and HOPELESS in html  # stopped as hopeless, with its reason
    assert "score against training step per trial" in html and "1 trial(s) stopped as hopeless" in html
    assert {(c.trial, c.stopped_here) for c in sst2.curves} == {(2, False), (3, False), (6, True)}
    csv = (report / "trials.csv").read_text()
    assert ",infeasible," in csv and ",fail," in csv
    best = (report / "best_recipes.csv").read_text().splitlines()
    assert any(line.startswith("sst2,") and "0.8720" in line and "310.0" in line for line in best), best


def test_pareto_mask_matches_optuna():
    import numpy as np
    from optuna.study._multi_objective import _is_pareto_front

    rng = np.random.default_rng(0)
    pts = rng.random((40, 2))
    ours = pareto.pareto_mask(pts[:, 0], pts[:, 1], x_larger_is_better=True)
    assert (ours == _is_pareto_front(-pts, assume_unique_lexsorted=False)).all()


def test_bad_input_is_one_line(tmp_path, run_dir):
    from autotune.cli import main

    with pytest.raises(UserInputError, match="no study.db in it"):
        load_run(tmp_path)
    elsewhere = tmp_path / "elsewhere"  # a sweep run with --storage: its config names the study's storage
    elsewhere.mkdir()
    (elsewhere / "sweep_config.json").write_text(json.dumps({"storage": f"sqlite:///{run_dir / 'study.db'}"}))
    assert [r.study for r in load_run(elsewhere)] == [r.study for r in load_run(run_dir)]
    empty = tmp_path / "empty"
    optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'e.db'}")
    with pytest.raises(UserInputError, match="holds no study"):
        load_run(empty, f"sqlite:///{tmp_path / 'e.db'}")
    bad = tmp_path / "table2.json"
    bad.write_text("{\n oops")
    with pytest.raises(UserInputError, match=r"table2.json:2:\d+: malformed JSON"):
        write(Inputs(run_dir=run_dir, out_dir=tmp_path / "out", table2=bad))
    assert main(["report", "--run", str(tmp_path / "nope")]) == 2
    assert main(["report", "--run", str(run_dir), "--study", "sst2-quick", "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "report.html").is_file()


def test_significance_heat_map_from_stored_scores_only(run_dir, report, tmp_path):
    """The pick's scores come from the storage (its model dir does not exist); extra model dirs
    are read from their significance.json; a dir without scores is one line."""
    md = (report / "report.md").read_text()
    assert "Significance per layer (the chosen recipe's model" in md
    assert [p.stat().st_size > 5000 for p in (report / "figures").glob("*-sst2-significance.png")] == [True]
    model = tmp_path / "model"
    model.mkdir()
    (model / "significance.json").write_text(json.dumps(SIG))
    out = tmp_path / "rep"
    write(Inputs(run_dir=run_dir, out_dir=out, significance=(model,)))
    text = (out / "report.md").read_text()
    assert "## Significance scores" in text and "| 0 | 0.3100 | 3 | 1 (0.0000) | 2 (0.2000) |" in text
    with pytest.raises(UserInputError, match="no significance.json"):
        write(Inputs(run_dir=run_dir, out_dir=tmp_path / "bad", significance=(tmp_path,)))


def test_a_queued_trial_reads_as_queued_with_its_point_not_as_a_lost_one():
    """A chunked overnight sweep ends with its next anchor (or a stopped trial's rerun) queued: the
    morning report names the point and says the next run starts it, instead of 'no reason stored'."""
    from reports.load import TaskResults, trials_frame
    from reports.tables import failed

    study = optuna.create_study(directions=["maximize", "maximize"])
    anchor = {"student_layers": 3, "route": "subset", "heads_kept": 6, "ffn_kept": 768, "engine": "ort-int8",
              "batch_size": 8, "layout": "2x1"}
    study.enqueue_trial(anchor)
    study.enqueue_trial({**anchor, "student_layers": 4}, user_attrs=TrialRecord(requeued_from=36).to_attrs())
    rows = trials_frame(study, "sst2", "accuracy")
    assert list(rows["status"]) == ["waiting", "waiting"]
    assert list(rows["recipe"]) == ["L3 H6 F768", "L4 H6 F768"] and set(rows["engine"]) == {"ort-int8"}
    shown = failed(TaskResults(study="sst2-overnight", task="sst2", metric="accuracy", floor=0.87, floor_rule="",
                               multi=True, references={}, trials=rows))
    assert list(shown["reason"]) == ["queued; not started: the next run of the study starts it",
                                     "trial 36's point, queued again; not started: the next run of the study starts it"]
