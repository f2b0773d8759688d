"""Stop a trial whose student cannot reach the accuracy floor, while it is still training.

A distilled student that ends its first epoch far below the floor rarely recovers, yet a full
build (distillation, pruning, re-distillation) costs 25-45 minutes on 2 cores. Optuna's pruners
judge one objective value against other trials' at the same step; here the question is the
constraint: can this student still meet the floor? The rule, in words a user can check:

    at a training step's evaluation, the best score so far plus the most that any earlier finished
    run of the same step (student, redistill, approx) gained after the same fraction of its
    training, plus a margin, is still below the floor  =>  the trial is hopeless.

A finished step is judged with no gain left to come: pruning and re-distilling a student never
lifted it above itself in these runs, so a student already below the floor ends its trial before
the prunings are built. Until ``min_curves`` earlier runs of a step have finished, a step is judged
only once it is done. The curves are scored by the build on the sweep's search split, the rows the
floor is set on. The stopped step's state stays in the model cache (compress/pipeline.py), so a
trial stopped under a strict rule resumes where it stopped when it is run again with a looser one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:
    from compress.pipeline import Progress


@dataclass(frozen=True)
class Curve:
    """One training step's evaluations: (optimizer step, score), the start first."""

    step: str
    key: str
    total: int
    points: tuple[tuple[int, float], ...]
    done: bool
    seconds: float = 0.0  # spent training it in the trial that recorded it (0 when cached)

    @classmethod
    def of(cls, p: Progress) -> "Curve":
        return cls(p.step, p.key, p.total, p.curve, p.done, p.seconds)

    @property
    def best(self) -> float:
        return max(score for _, score in self.points)

    def best_until(self, fraction: float) -> float:
        return max(score for s, score in self.points if s <= fraction * self.total + 1e-9)

    def gain_after(self, fraction: float) -> float:
        """What its kept score gained after ``fraction`` of its planned steps."""
        return self.best - self.best_until(fraction)

    @property
    def trained_steps(self) -> int:
        return self.points[-1][0]

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "key": self.key, "total": self.total, "points": [list(p) for p in self.points],
                "done": self.done, "seconds": round(self.seconds, 3)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Curve":
        return cls(d["step"], d["key"], int(d["total"]), tuple((int(s), float(v)) for s, v in d["points"]),
                   bool(d["done"]), float(d.get("seconds", 0.0)))


class Hopeless(Exception):
    """Raised from the build's progress hook; ``curve`` is the step it stopped."""

    def __init__(self, reason: str, curve: Curve):
        super().__init__(reason)
        self.reason, self.curve = reason, curve

    @property
    def saved_s(self) -> float:
        """The stopped step's untrained rest at its own pace (later steps not counted)."""
        c = self.curve
        done = max(1, c.trained_steps)
        return 0.0 if c.done else c.seconds * max(0, c.total - done) / done


@dataclass(frozen=True)
class HopelessRule:
    floor: float  # metric units, as the sweep's accuracy floor
    margin: float = 0.01  # metric units: the benefit of the doubt (ORT vs PyTorch scoring, noise)
    min_curves: int = 2  # finished earlier runs of a step before it may be stopped mid-training

    def verdict(self, p: Progress, earlier: Sequence[Curve]) -> str | None:
        """The one-line reason ``p``'s trial is hopeless, or None."""
        fraction = 1.0 if p.done else p.train_step / max(1, p.total)
        known = [c for c in earlier if c.done and c.step == p.step and c.key != p.key]
        if not p.done and len(known) < self.min_curves:
            return None
        gain = max((c.gain_after(fraction) for c in known), default=0.0) if not p.done else 0.0
        if p.best + gain + self.margin >= self.floor:
            return None
        where = "finished" if p.done else f"at step {p.train_step}/{p.total}"
        recovered = (f" plus the most {len(known)} earlier {p.step} runs gained after that point (+{gain:.4f})"
                     if not p.done else "")
        return (f"hopeless: {p.step} {where} scores {p.best:.4f}{recovered} and a {self.margin * 100:g}-point margin, "
                f"below the floor {self.floor:.4f}")


class Watch:
    """The progress hook of one trial's build: it records the trial's curves and raises
    ``Hopeless`` when the rule says so (no rule: it only records)."""

    def __init__(self, rule: HopelessRule | None, earlier: Iterable[Curve] = ()):
        self.rule, self.earlier = rule, list(earlier)
        self.curves: dict[str, Curve] = {}  # by step key, in build order

    def __call__(self, p: Progress) -> None:
        self.curves[p.key] = Curve.of(p)
        reason = self.rule.verdict(p, self.earlier) if self.rule is not None else None
        if reason:
            raise Hopeless(reason, self.curves[p.key])


def earlier_curves(curves_per_trial: Iterable[Iterable[Curve]]) -> list[Curve]:
    """Finished curves, one per step key (a cached step appears in every trial that reuses it)."""
    out: dict[str, Curve] = {}
    for curves in curves_per_trial:
        for c in curves:
            if c.done:
                out.setdefault(c.key, c)
    return list(out.values())
