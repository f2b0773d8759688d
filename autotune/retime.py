"""Speed-ups from one run: the pick and the two references timed again beside each other.

A trial's throughput and the study's references were timed at different moments, often
hours apart on a shared machine, so their ratio also measures how busy the machine was
each time. Here the three are timed in interleaved rounds (pick, baseline, int8 teacher,
the order rotated each round) under one hold of the timing lock; each round gives its own
ratios and the median of those is kept, with their spread.
"""
from __future__ import annotations

import logging
import math
import statistics
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from autotune.runtime import Runtime
from autotune.timing_lock import timing_lock

if TYPE_CHECKING:  # measure's imports cost seconds: deploy configs and reports read Retimed without them
    from autotune.measure import Measurement
    from compress.tasks import Example, TaskSpec

log = logging.getLogger(__name__)

# The out-of-the-box baseline: the teacher in PyTorch fp32, padded to the task's max length, one
# row at a time, library thread defaults (FastFormers' starting point)
BASELINE = Runtime(engine="torch-fp32", padding="fixed", batch_size=1, instances=1, threads=None)
# Search rows timed per model and round. The baseline pays for padding every row to the task's max
# length: in the SST-2 quick sweep of benchmarks/results/suite-quick.md (2 cores) it did 36 rows/s,
# so 256 of the 436 search rows are ~7 s a round, and 3 rounds plus one worker start-up per
# timing (kept across the rounds) stay near a minute; the pick (39x: ~1,400 rows/s) still runs ~0.2 s a pass
# after its warm-up batches. Without a cap, BoolQ's 1,600 longer rows would take minutes a round.
ROWS = 256
NAMES = ("pick", "baseline", "int8_teacher")
# Seconds of timed passes per timing at least: a fast pick runs 256 rows in a fifth of a second, and a
# single pass that short swung 800-1,400 ex/s between rounds (SST-2 quick, 2 cores); the median of
# several passes is steadier. Passes per timing come from the stored throughputs, capped.
MIN_TIMED_S = 2.0
MAX_PASSES = 15


def passes_for(throughput: float | None, rows: int) -> int:
    if not throughput or throughput <= 0:
        return 1
    return max(1, min(MAX_PASSES, math.ceil(MIN_TIMED_S * throughput / rows)))


def rounds_for(measure_repeats: int) -> int:
    """Odd, so the median is one round's ratio: 3 for the quick preset (2 repeats), 5 overnight (3)."""
    return max(3, 2 * measure_repeats - 1)


def rounds_text(rounds: int) -> str:
    """How a re-timed ratio was taken, as the reports and logs say it."""
    return "1 round" if rounds == 1 else f"{rounds} rounds, median"


def _median_range(values: Sequence[float]) -> tuple[float, tuple[float, float]]:
    return float(statistics.median(values)), (float(min(values)), float(max(values)))


@dataclass(frozen=True)
class Retimed:
    """Throughputs (examples/s) per round, in round order, and the ratios derived from them."""
    rows: int  # search rows timed in each timing
    runtime: Runtime  # the pick's; the int8 teacher ran at it with engine ort-int8, the baseline at BASELINE
    pick: tuple[float, ...]
    baseline: tuple[float, ...]
    int8_teacher: tuple[float, ...]
    busy_pct: tuple[float, ...]  # per round: the busiest the machine was just before one of its timings
    passes: tuple[int, ...] = (1, 1, 1)  # timed passes per timing (median kept), in NAMES order

    def __post_init__(self) -> None:
        sizes = {len(self.pick), len(self.baseline), len(self.int8_teacher), len(self.busy_pct)}
        if len(sizes) != 1 or not self.pick:
            raise ValueError(f"retimed: rounds of unequal or zero length ({sorted(sizes)})")

    @property
    def rounds(self) -> int:
        return len(self.pick)

    @property
    def pick_throughput(self) -> float:
        return float(statistics.median(self.pick))

    def _ratios(self, other: tuple[float, ...]) -> tuple[float, tuple[float, float]]:
        return _median_range([p / o for p, o in zip(self.pick, other)])

    @property
    def over_baseline(self) -> float:
        return self._ratios(self.baseline)[0]

    @property
    def over_baseline_range(self) -> tuple[float, float]:
        return self._ratios(self.baseline)[1]

    @property
    def over_int8_teacher(self) -> float:
        return self._ratios(self.int8_teacher)[0]

    @property
    def over_int8_teacher_range(self) -> tuple[float, float]:
        return self._ratios(self.int8_teacher)[1]

    @property
    def busiest_pct(self) -> float:
        return max(self.busy_pct)

    def describe(self, stored_over_baseline: float | None = None, stored_over_int8: float | None = None) -> str:
        """The sweep's closing log line."""
        (bl, bh), (il, ih) = self.over_baseline_range, self.over_int8_teacher_range
        text = (f"re-timed beside each other ({rounds_text(self.rounds)}): pick {self.pick_throughput:.1f} ex/s = "
                f"{self.over_baseline:.1f}x the out-of-the-box baseline ({bl:.1f}-{bh:.1f}), "
                f"{self.over_int8_teacher:.2f}x the ORT-int8 teacher at the same runtime ({il:.2f}-{ih:.2f})")
        stored = [f"{x:.{p}f}x {what}" for x, p, what in ((stored_over_baseline, 1, "the baseline"),
                                                          (stored_over_int8, 2, "the batch-1 int8 reference"))
                  if x is not None]
        return text + (f"; stored trial figures: {', '.join(stored)}" if stored else "")

    def to_dict(self) -> dict[str, Any]:
        """The measured fields, and the derived ratios for readers of the JSON (ignored when read)."""
        return {"rows": self.rows, "runtime": self.runtime.to_dict(), "pick": list(self.pick),
                "baseline": list(self.baseline), "int8_teacher": list(self.int8_teacher),
                "busy_pct": list(self.busy_pct), "passes": list(self.passes), "rounds": self.rounds,
                "pick_throughput": self.pick_throughput,
                "over_baseline": self.over_baseline, "over_baseline_range": list(self.over_baseline_range),
                "over_int8_teacher": self.over_int8_teacher,
                "over_int8_teacher_range": list(self.over_int8_teacher_range)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Retimed":
        return cls(rows=int(d["rows"]), runtime=Runtime.from_dict(d["runtime"]),
                   passes=tuple(int(x) for x in d.get("passes", (1, 1, 1))),
                   **{k: tuple(float(x) for x in d[k]) for k in (*NAMES, "busy_pct")})


def interleaved(timings: dict[str, Callable[[], Measurement]], rounds: int) -> dict[str, list[Measurement]]:
    """Each timing once a round, the order rotated by one each round, so no model always runs
    first (or right after the slow baseline)."""
    names = list(timings)
    out: dict[str, list[Measurement]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            out[name].append(timings[name]())
        log.info("re-timing round %d/%d: %s", r + 1, rounds,
                 ", ".join(f"{n} {out[n][-1].throughput:.1f} ex/s" for n in names))
    return out


def retime(pick_dir: Path, teacher_dir: Path, rows: Sequence[Example], spec: TaskSpec, runtime: Runtime,
           cache_dir: Path, rounds: int, expected: dict[str, float] | None = None) -> Retimed:
    """The pick at ``runtime``, the teacher at BASELINE and the teacher in ORT int8 at ``runtime``,
    interleaved under one hold of the timing lock: no other worker's timing lands between them.
    Each of the three keeps its workers across the rounds (started once, idle while the others run).
    ``expected``: stored throughputs by name, which size each timing's passes (``passes_for``)."""
    from autotune.measure import BUSY_PCT, Timing  # seconds of imports: not on reads of Retimed (see above)

    runs = {"pick": (pick_dir, runtime), "baseline": (teacher_dir, BASELINE),
            "int8_teacher": (teacher_dir, replace(runtime, engine="ort-int8"))}
    passes = {n: passes_for((expected or {}).get(n), len(rows)) for n in runs}
    log.info("re-timing the pick (%s), the out-of-the-box baseline (%s) and the ORT-int8 teacher at the pick's "
             "runtime beside each other: %d rounds on %d search rows (passes per timing: %s)", runtime.label,
             BASELINE.label, rounds, len(rows), ", ".join(f"{n} {k}" for n, k in passes.items()))
    with timing_lock(), ExitStack() as started:
        timed = {n: started.enter_context(Timing(d, rows, spec, rt, cache_dir)) for n, (d, rt) in runs.items()}
        got = interleaved({n: (lambda t=t, k=passes[n]: t.measure(repeats=k)) for n, t in timed.items()}, rounds)
    busy = tuple(max(got[n][r].busy_before_pct or 0.0 for n in NAMES) for r in range(rounds))
    out = Retimed(rows=len(rows), runtime=runtime, busy_pct=busy, passes=tuple(passes[n] for n in NAMES),
                  **{n: tuple(m.throughput for m in got[n]) for n in NAMES})
    if out.busiest_pct > BUSY_PCT:
        log.warning("the machine was up to %.0f%% busy during the re-timing: each round's ratio is still taken "
                    "beside each other, but the spread may be wide", out.busiest_pct)
    return out


def unbusy(what: str, m: dict[str, Any], again: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A reference timed while others kept the machine busy is timed once more before it is used;
    the new figure replaces it, whatever it is (the log says if the machine stayed busy)."""
    from autotune.measure import BUSY_PCT  # seconds of imports: not on reads of Retimed (see above)

    busy = m.get("busy_before_pct")
    if busy is None or busy <= BUSY_PCT:
        return m
    new = again()
    log.info("%s was timed with the machine %.0f%% busy (%.1f ex/s); re-timed: %.1f ex/s (%.0f%% busy)", what, busy,
             m["throughput"], new["throughput"], new.get("busy_before_pct") or 0.0)
    if (new.get("busy_before_pct") or 0.0) > BUSY_PCT:
        log.warning("%s: the machine is still busy; its figure may be low (run_sweep.py sweep "
                    "--remeasure-references on a quiet machine)", what)
    return new
