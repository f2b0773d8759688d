"""One trial as a typed record: the contract between the search and everything after it.

The objective writes it into the Optuna trial; confirmation, deployment, the budget, the sweep
and the reports read it back with ``TrialRecord.from_trial``. Only this module names the user
attrs, so what a trial holds, and when it counts as feasible, is decided in one place. The attr
names are those stored since the first sweeps: never rename them, or older studies stop loading.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState

from autotune.hopeless import Curve
from autotune.runtime import Runtime
from compress.recipe import Recipe

if TYPE_CHECKING:
    from autotune.measure import Measurement

# Optuna's own constraint names, what its samplers read; the user attr keeps the same values
CONSTRAINT_NAMES = ("accuracy_floor", "p99_limit")


def meets(constraints) -> bool:
    """Each constraint ≤ 0 is feasible (Optuna's convention); none stored (never measured) is not."""
    return bool(constraints) and all(c <= 0 for c in constraints)


@dataclass(frozen=True)
class TrialRecord:
    """Every field but ``number`` and ``state`` (Optuna's) is a user attr of that name; None
    (``()`` for constraints) is one the trial does not hold, e.g. before it was measured."""

    number: int | None = None
    state: TrialState | None = None
    recipe: Recipe | None = None
    recipe_key: str | None = None  # the model's cache identity (Recipe.key())
    runtime: Runtime | None = None
    measurement: Measurement | None = None  # on the search split
    model_dir: str | None = None
    significance: dict[str, Any] | None = None  # kept with the trial: reports never need the model cache
    constraints: tuple[float, ...] = ()  # accuracy floor, then the p99 limit if any; ≤ 0 each is feasible
    feasible: bool | None = None  # the objective's verdict; None in trials stored before it was kept
    error: str | None = None  # why it failed ("Type: first line"): it used its budget
    stopped: str | None = None  # a stop signal ended it between build steps: not its fault, it reruns
    requeued_from: int | None = None  # the stopped (or hopeless) trial this one reruns
    curves: tuple[Curve, ...] = ()  # the build's training steps as they went (autotune/hopeless.py)
    pruned: str | None = None  # why it was stopped as hopeless: Optuna's PRUNED state; it used its budget
    saved_s: float | None = None  # the stopped step's untrained rest, at its own pace

    # ------------------------------------------------------------ what a trial counts as

    @property
    def is_feasible(self) -> bool:
        """The one feasibility rule (the pick, the runtime siblings, the reports): a completed trial by
        its stored verdict, else (older studies) by its constraints."""
        if self.state != TrialState.COMPLETE:
            return False
        return self.feasible if self.feasible is not None else meets(self.constraints)

    @property
    def used_budget(self) -> bool:
        """Completed, stopped as hopeless, or failed by its own error (not killed: a trial a killed process
        left behind is failed later by its stale heartbeat and re-run, and its end is unknown)."""
        return self.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            self.state == TrialState.FAIL and self.error is not None)

    @property
    def spent_time(self) -> bool:
        """Counts in the time budget and the sweep's length: used budget, or ended by a stop signal
        between compression steps (autotune/stop.py), whose steps are cached for the retry."""
        return self.used_budget or (self.state == TrialState.FAIL and self.stopped is not None)

    @property
    def reason(self) -> str:
        """Why it did not complete: its error, the stop signal that ended it, or why it was hopeless
        ("" if none)."""
        return self.error or self.stopped or self.pruned or ""

    # ------------------------------------------------------------ Optuna and JSON

    def to_attrs(self) -> dict[str, Any]:
        """The user attrs of the fields set (JSON values)."""
        d = {"recipe": self.recipe.to_dict() if self.recipe is not None else None, "recipe_key": self.recipe_key,
             "runtime": self.runtime.to_dict() if self.runtime is not None else None,
             "measurement": self.measurement.to_dict() if self.measurement is not None else None,
             "model_dir": self.model_dir, "significance": self.significance,
             "constraints": list(self.constraints) or None, "feasible": self.feasible, "error": self.error,
             "stopped": self.stopped, "requeued_from": self.requeued_from,
             "curves": [c.to_dict() for c in self.curves] or None, "pruned": self.pruned, "saved_s": self.saved_s}
        return {k: v for k, v in d.items() if v is not None}

    def write(self, trial) -> None:
        """The fields set here onto an Optuna trial (live or frozen); the others are left as they are,
        so the objective writes a trial in steps: what it is before building, then how it ended. A
        verdict goes with Optuna's own constraints, which the samplers read."""
        for key, value in self.to_attrs().items():
            trial.set_user_attr(key, value)
        if self.feasible is not None:
            for name, value in zip(CONSTRAINT_NAMES, self.constraints):
                trial.set_constraint(name, value)

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any], number: int | None = None,
                   state: TrialState | None = None) -> "TrialRecord":
        from autotune.measure import Measurement  # numpy and sklearn: not for the storage helpers nor `deploy`

        a = attrs
        return cls(
            number=number, state=state,
            recipe=Recipe.from_dict(a["recipe"]) if a.get("recipe") else None,
            recipe_key=a.get("recipe_key"),
            runtime=Runtime.from_dict(a["runtime"]) if a.get("runtime") else None,
            measurement=Measurement.from_dict(a["measurement"]) if a.get("measurement") else None,
            model_dir=a.get("model_dir"), significance=a.get("significance"),
            constraints=tuple(a.get("constraints") or ()), feasible=a.get("feasible"), error=a.get("error"),
            stopped=a.get("stopped"), requeued_from=a.get("requeued_from"),
            curves=tuple(Curve.from_dict(c) for c in a.get("curves") or ()), pruned=a.get("pruned"),
            saved_s=a.get("saved_s"))

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> "TrialRecord":
        return cls.from_attrs(trial.user_attrs, trial.number, trial.state)

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "state": self.state.name if self.state is not None else None,
                **self.to_attrs()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrialRecord":
        state = d.get("state")
        return cls.from_attrs(d, d.get("number"), TrialState[state] if state else None)
