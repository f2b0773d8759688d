"""Typed trial records for fixture studies: tests store trials as the objective does, through
autotune/trial_record.py, never by hand-written user attrs."""
from __future__ import annotations

from autotune.measure import Measurement
from autotune.runtime import Runtime


def measurement(throughput: float, metrics: dict[str, float], p99: float = 10.0, runtime: Runtime | None = None,
                measured: bool = False, **more) -> Measurement:
    """A complete Measurement with made-up timing details around the figures a test cares about."""
    return Measurement(
        throughput=throughput, latency_ms={"p50": p99 / 2, "p90": p99 * 0.8, "p99": p99, "mean": p99 / 2},
        wall_s=1.0, walls_s=(1.0,), peak_rss_mb=(100.0,), metrics=dict(metrics), energy_j=8.0,
        energy_per_query_j=0.004,
        energy_method="RAPL package counters" if measured else "cpu-time×TDP estimate (4.00 W/core)",
        energy_measured=measured, examples=436, tokens={"real": 1000, "padded": 1200},
        runtime=runtime or Runtime(), model_dir="/cache/m", task="sst2", **more)
