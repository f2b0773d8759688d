"""Energy trackers, each saying how it measured (FastFormers reports energy next to speed).

Preference order with ``auto``: experiment-impact-tracker (needs RAPL), a direct RAPL
read of /sys/class/powercap, and — always available — a CPU-time × TDP-per-core model
that is an estimate, not a measurement, and is labelled so.

Trackers that read counters span the whole pool call (model load and warm-up included)
and are prorated to the timed region by ``timed_fraction``; the CPU-time model uses the
workers' own CPU time inside the timed region.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from compress.errors import UserInputError

log = logging.getLogger(__name__)

POWERCAP = Path("/sys/class/powercap")
# The paper's Azure F16s v2 runs a Xeon Platinum 8168: 205 W TDP over 24 cores.
DEFAULT_TDP_PER_CORE_W = 205.0 / 24


@dataclass(frozen=True)
class EnergyReading:
    joules: float
    method: str
    measured: bool  # False: a model estimate


class Tracker(Protocol):
    method: str
    measured: bool

    def start(self) -> None: ...

    def stop(self, cpu_seconds: float, timed_fraction: float) -> EnergyReading: ...


def _rapl_packages() -> list[Path]:
    """Top-level RAPL package domains whose counters this user can read."""
    out = []
    for d in sorted(POWERCAP.glob("intel-rapl:*")):
        if d.name.count(":") == 1 and (d / "energy_uj").is_file():
            try:
                int((d / "energy_uj").read_text())
                out.append(d)
            except (OSError, ValueError):
                pass
    return out


class CpuTimeTdp:
    """joules = CPU seconds of the instances × TDP per core: an estimate for machines without RAPL."""

    method = "cpu-time×TDP estimate"
    measured = False

    def __init__(self, tdp_per_core_w: float = DEFAULT_TDP_PER_CORE_W):
        self.watts = tdp_per_core_w

    def start(self) -> None:
        pass

    def stop(self, cpu_seconds: float, timed_fraction: float) -> EnergyReading:
        return EnergyReading(cpu_seconds * self.watts, f"{self.method} ({self.watts:.2f} W/core)", False)


class Rapl:
    """Package energy counters (whole sockets, so other load on the machine is included)."""

    method = "RAPL package counters"
    measured = True

    def __init__(self) -> None:
        self.domains = _rapl_packages()
        if not self.domains:
            raise RuntimeError("no readable RAPL counters under /sys/class/powercap")

    def _read(self) -> list[int]:
        return [int((d / "energy_uj").read_text()) for d in self.domains]

    def start(self) -> None:
        self.begin = self._read()

    def stop(self, cpu_seconds: float, timed_fraction: float) -> EnergyReading:
        total = 0
        for d, a, b in zip(self.domains, self.begin, self._read()):
            wrap = int((d / "max_energy_range_uj").read_text()) if (d / "max_energy_range_uj").is_file() else 0
            total += b - a if b >= a else b + wrap - a
        return EnergyReading(total / 1e6 * timed_fraction, f"{self.method} (prorated to timed region)", True)


class ImpactTrackerEnergy:
    """experiment-impact-tracker (Henderson et al. 2020): RAPL power attributed to this process tree."""

    method = "experiment-impact-tracker"
    measured = True

    def __init__(self) -> None:
        if not _rapl_packages():
            raise RuntimeError("experiment-impact-tracker needs RAPL (/sys/class/powercap)")
        import pandas
        import pandas.io.json

        if not hasattr(pandas.io.json, "json_normalize"):  # removed in pandas 2; the tracker still imports it
            pandas.io.json.json_normalize = pandas.json_normalize
        from experiment_impact_tracker.compute_tracker import ImpactTracker

        self._cls = ImpactTracker

    def start(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="impact-")
        self.tracker = self._cls(self.dir)
        self.tracker.launch_impact_monitor()

    def stop(self, cpu_seconds: float, timed_fraction: float) -> EnergyReading:
        from experiment_impact_tracker.data_utils import load_initial_info, log_final_info
        from experiment_impact_tracker.utils import gather_additional_info

        try:
            self.tracker.p.terminate()
            self.tracker.p.join()
            log_final_info(self.dir)
            info = gather_additional_info(load_initial_info(self.dir), self.dir)
            kwh = float(info["kw_hr_cpu"]) + float(info["kw_hr_gpu"])  # without the tracker's PUE factor
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        return EnergyReading(kwh * 3.6e6 * timed_fraction, f"{self.method} (prorated to timed region)", True)


TRACKERS = {"impact-tracker": ImpactTrackerEnergy, "rapl": Rapl, "cpu-time": CpuTimeTdp}


def pick(name: str = "auto", tdp_per_core_w: float = DEFAULT_TDP_PER_CORE_W) -> Tracker:
    """The named tracker, or with ``auto`` the first that works here."""
    order = ["impact-tracker", "rapl", "cpu-time"] if name == "auto" else [name]
    for n in order:
        if n not in TRACKERS:
            raise UserInputError(f"unknown energy tracker {name!r}; known: auto, {', '.join(TRACKERS)}")
        try:
            return CpuTimeTdp(tdp_per_core_w) if n == "cpu-time" else TRACKERS[n]()
        except Exception as exc:  # noqa: BLE001 - fall through to the next method
            (log.warning if _rapl_packages() else log.debug)("energy tracker %s unavailable: %s", n, exc)
            if name != "auto":
                raise
    return CpuTimeTdp(tdp_per_core_w)
