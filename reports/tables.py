"""The report's tables as frames of strings, so Markdown, HTML and reruns show identical text.

Costs: ``usd_per_hour`` is the price of the whole measured machine (every instance × thread
of the layout runs on it), so USD per 100M queries = price × 1e8 / throughput / 3600.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import pandas as pd

from autotune.cost import usd_per_100m_or_none as usd_per_100m
from autotune.retime import Retimed, rounds_text
from reports.load import TaskResults


def num(fmt: str) -> Callable[[Any], str]:
    def f(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "n/a"
        if isinstance(v, str):
            return v
        return format(float(v), fmt)
    return f


def text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def layout(instances: Any, threads: Any) -> str:
    t = "default" if threads is None or (isinstance(threads, float) and math.isnan(threads)) else int(threads)
    return f"{int(instances)}×{t}" if instances is not None and not pd.isna(instances) else "n/a"


def render(df: pd.DataFrame, columns: dict[str, tuple[str, Callable[[Any], str]]]) -> pd.DataFrame:
    """``columns``: source column -> (heading, formatter); returns strings only."""
    return pd.DataFrame({head: [fmt(v) for v in df[col]] if col in df else []
                         for col, (head, fmt) in columns.items()}, dtype=object)


def energy_method(measured: Any, method: Any) -> str:
    if not method:
        return "n/a"
    return f"{'measured' if measured else 'estimated'}: {method}"


def best_row(res: TaskResults, usd_per_hour: float) -> dict[str, Any] | None:
    c = res.chosen()
    if c is None:
        return None
    d = res.deploy or {}
    from_deploy = bool(d) and d.get("trial") == c["trial"]
    tput = float(d["throughput"]) if from_deploy else c["throughput"]
    base = (res.references.get("baseline") or {}).get("throughput")
    energy = c["energy_per_query_j"]
    return {
        "task": res.task, "study": res.study, "metric": res.metric, "trial": c["trial"], "recipe": c["recipe"],
        "engine": c["engine"], "layout": layout(c["instances"], c["threads"]), "batch": c["batch_size"],
        "throughput": tput,
        "p50": d.get("latency_p50_ms") if from_deploy else c["latency_p50_ms"],
        "p99": d.get("latency_p99_ms") if from_deploy else c["latency_p99_ms"],
        "dev": d.get("dev_score") if from_deploy else c["accuracy"],
        "heldout": d.get("heldout_score") if from_deploy else None,
        "teacher_heldout": d.get("teacher_heldout_score") if from_deploy else None,
        "confirmed": _confirmed(d.get("heldout_confirmed")) if from_deploy else "n/a",
        **_speedups(d if from_deploy else {}, tput, base),
        "usd": usd_per_100m(tput, usd_per_hour),
        "energy_1k": energy * 1000 if energy is not None and not pd.isna(energy) else None,
        "energy_method": energy_method(c["energy_measured"], c["energy_method"]),
        "source": "deploy config" if from_deploy else "best feasible trial (no deploy config)",
    }


def _speedups(deploy: dict[str, Any], tput: float, base: float | None) -> dict[str, Any]:
    """Re-timed beside the pick where its deploy config holds that (autotune/retime.py), else stored."""
    if deploy.get("retimed"):
        r = Retimed.from_dict(deploy["retimed"])
        return {"speedup": r.over_baseline, "int8x": r.over_int8_teacher,
                "speedup_how": f"re-timed beside the pick ({rounds_text(r.rounds)})"}
    return {"speedup": tput / base if base else None, "int8x": None, "speedup_how": "stored trial figures"}


def _confirmed(flag: Any) -> str:
    return "n/a" if flag is None else ("yes" if flag else "NO")


def best_recipes(results: Iterable[TaskResults], usd_per_hour: float) -> pd.DataFrame:
    rows = [r for r in (best_row(res, usd_per_hour) for res in results) if r is not None]
    df = pd.DataFrame(rows).sort_values(["task", "study"], kind="stable") if rows else pd.DataFrame()
    return render(df, {
        "task": ("task", text), "metric": ("metric", text), "recipe": ("recipe (layers/heads/FFN)", text),
        "engine": ("engine", text), "layout": ("instances×threads", text), "batch": ("batch", num("g")),
        "throughput": ("throughput (ex/s)", num(".1f")), "p50": ("p50 (ms)", num(".2f")),
        "p99": ("p99 (ms)", num(".2f")), "dev": ("dev", num(".4f")), "heldout": ("held-out", num(".4f")),
        "teacher_heldout": ("teacher held-out", num(".4f")), "confirmed": ("meets the floor held out", text),
        "speedup": ("speed-up vs out-of-the-box", num(".2f")),
        "int8x": ("× ORT-int8 teacher at the same runtime", num(".2f")), "speedup_how": ("speed-ups from", text),
        "usd": ("USD / 100M queries", num(".2f")),
        "energy_1k": ("energy / 1,000 queries (J)", num(".1f")), "energy_method": ("energy method", text),
        "source": ("from", text),
    })


def trials(res: TaskResults) -> pd.DataFrame:
    """Every trial of a study with its status (feasible / infeasible / fail / running)."""
    t = res.trials.assign(layout=[layout(n, th) for n, th in zip(res.trials["instances"], res.trials["threads"])])
    return render(t, {
        "trial": ("trial", text), "status": ("status", text), "accuracy": (res.metric, num(".4f")),
        "throughput": ("throughput (ex/s)", num(".1f")), "latency_p99_ms": ("p99 (ms)", num(".2f")),
        "recipe": ("recipe", text), "engine": ("engine", text), "layout": ("instances×threads", text),
        "batch_size": ("batch", num("g")), "error": ("reason", text),
    })


def failed(res: TaskResults) -> pd.DataFrame:
    """Trials that did not complete, with their stored reason (they have no values to plot)."""
    t = res.trials[res.trials["state"] != "COMPLETE"]
    t = t.assign(error=[e or "no reason stored" for e in t["error"]])
    return render(t, {"trial": ("trial", text), "state": ("state", text), "recipe": ("recipe", text),
                      "engine": ("engine", text), "error": ("reason", text)})


def table2(df: pd.DataFrame) -> pd.DataFrame:
    return render(df, {"task": ("task", text), "layout": ("instances×threads", text),
                       "throughput": ("throughput (ex/s)", num(".1f")), "speedup": ("speed-up", num(".2f")),
                       "baseline": ("speed-up vs", text), "accuracy": ("accuracy", num(".4f")),
                       "latency_p99_ms": ("p99 (ms)", num(".2f"))})


def ablation(df: pd.DataFrame) -> pd.DataFrame:
    return render(df, {"task": ("task", text), "name": ("step", text), "description": ("what", text),
                       "throughput": ("throughput (ex/s)", num(".1f")),
                       "speedup": ("cumulative speed-up", num(".2f")), "step_gain": ("this step", num(".2f")),
                       "accuracy": ("accuracy", num(".4f")), "metric": ("metric", text),
                       "usd_per_100m": ("USD / 100M queries (study's price)", num(".2f"))})
