"""Score against training step for every trial's build: how students learned, where trials were
stopped as hopeless (autotune/hopeless.py), and the floor they had to reach."""
from __future__ import annotations

from pathlib import Path

from reports.figures import figure
from reports.load import TaskResults

STEPS = ("student", "redistill", "approx")


def plot(res: TaskResults, path: Path) -> Path | None:
    """One panel per trained build step; a step shared by several trials is drawn once, labelled by
    the first; a stopped one is dashed and ends in a cross. None when no trial recorded a curve."""
    shown: dict[str, dict] = {}
    for tc in res.curves:
        entry = shown.setdefault(tc.curve.key, {"curve": tc.curve, "trials": [], "stopped": False})
        entry["trials"].append(tc.trial)
        if len(tc.curve.points) > len(entry["curve"].points):
            entry["curve"] = tc.curve  # a resumed run's longer curve
        entry["stopped"] = entry["stopped"] or (tc.stopped_here and not entry["curve"].done)
    steps = [s for s in STEPS if any(e["curve"].step == s for e in shown.values())]
    if not steps:
        return None
    with figure(path, width=4.2 * len(steps), height=3.8, ncols=len(steps), squeeze=False) as (fig, axes):
        for ax, step in zip(axes[0], steps):
            for entry in (e for e in shown.values() if e["curve"].step == step):
                c = entry["curve"]
                xs, ys = [p[0] for p in c.points], [p[1] for p in c.points]
                label = f"trial {entry['trials'][0]}" + (" (stopped)" if entry["stopped"] else "")
                line, = ax.plot(xs, ys, ls="--" if entry["stopped"] else "-", marker=".", lw=1, label=label)
                if entry["stopped"]:
                    ax.plot(xs[-1], ys[-1], marker="x", ms=9, mew=2, color=line.get_color())
            if res.floor is not None:
                ax.axhline(res.floor, color="black", lw=1, ls=":", label=f"floor {res.floor:.4f}")
            ax.set_title(f"{res.task}: {step} training")
            ax.set_xlabel("optimizer step")
            ax.set_ylabel(f"{res.metric} (search split)")
            ax.legend(loc="lower right", ncols=2)
    return path
