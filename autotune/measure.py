"""One measurement: run a model on a task's rows with a Runtime and record everything
needed to trust and compare the number (optimum-benchmark style: config + report).

The accuracy reported is that of the predictions that were timed, merged back in order.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import psutil

from autotune import energy as E
from autotune.engines import prepare
from autotune.hardware import detect
from autotune.pool import Pool
from autotune.runtime import Runtime
from compress.batching import encode, make_batches, padding_overhead
from compress.errors import UserInputError
from compress.intervals import intervals
from compress.models import load_tokenizer
from compress.tasks import Example, TaskSpec, score

log = logging.getLogger(__name__)
# whole-machine CPU busy % before timing above which a timing is suspect (others' work on the cores)
BUSY_PCT = 25.0


@dataclass(frozen=True)
class Measurement:
    throughput: float  # examples / s over the median repeat
    latency_ms: dict[str, float]  # per batch (= per request at batch 1): p50, p90, p99, mean
    wall_s: float  # median repeat: first instance start -> last instance finish
    walls_s: tuple[float, ...]  # every repeat
    peak_rss_mb: tuple[float, ...]  # per instance
    metrics: dict[str, float]  # the task's metrics on the merged, timed predictions
    energy_j: float  # the median repeat
    energy_per_query_j: float
    energy_method: str
    energy_measured: bool  # False: an estimate
    examples: int
    tokens: dict[str, int]  # real and padded tokens fed to the engine
    runtime: Runtime
    model_dir: str
    task: str
    engine_meta: dict = field(default_factory=dict)
    hardware: dict = field(default_factory=dict)
    software: dict = field(default_factory=dict)
    core_sets: tuple = ()
    busy_before_pct: float | None = None  # whole-machine CPU busy % in the 0.5 s before timing (others' work)
    # 95% bootstrap interval of each metric over the timed predictions (compress/intervals.py)
    intervals: dict = field(default_factory=dict)
    # the timed row logits, kept only when asked (paired comparisons on the same rows)
    logits: tuple = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["runtime"] = self.runtime.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Measurement":
        d = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        d["runtime"] = Runtime.from_dict(d["runtime"])
        for k in ("walls_s", "peak_rss_mb"):
            d[k] = tuple(d[k])
        d["core_sets"] = tuple(None if c is None else tuple(c) for c in d.get("core_sets", ()))
        d["logits"] = tuple(tuple(row) for row in d.get("logits", ()))
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "Measurement":
        return cls.from_dict(json.loads(text))


def software_versions() -> dict[str, str]:
    import onnxruntime
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__}


def _plain(d: dict) -> dict:
    """JSON-shaped (tuples become lists) so that a Measurement equals its JSON round trip."""
    return json.loads(json.dumps(d))


def latency_stats(latencies: Sequence[float]) -> dict[str, float]:
    if not latencies:
        return {}
    ms = np.asarray(latencies) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean())}


def _tokenizer(model_dir: Path):
    try:
        return load_tokenizer(model_dir)
    except (UserInputError, OSError, ValueError):
        log.warning("model %s has no tokenizer; using the packaged one", model_dir)
        return load_tokenizer()


def _max_length(model_dir: Path, spec: TaskSpec, runtime: Runtime) -> int:
    want = runtime.max_length or spec.max_length
    cfg = json.loads((model_dir / "config.json").read_text())
    return min(want, int(cfg.get("max_position_embeddings", want)))


class Timing:
    """A model made ready to time on rows at a runtime (encoded, exported or quantised as its engine
    needs, cached; its pinned workers started and warmed up), then measured as often as asked by
    the same workers: the re-timing rounds pay the start-up once, not every round."""

    def __init__(self, model_dir: str | os.PathLike, examples: Sequence[Example], spec: TaskSpec, runtime: Runtime,
                 cache_dir: str | os.PathLike, tokenizer=None, energy: str = "auto", timeout_s: float = 1800.0,
                 keep_logits: bool = False) -> None:
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise UserInputError(f"model {self.model_dir}: not a model directory (no config.json in it)")
        if not examples:
            raise UserInputError(f"task {spec.name}: no rows to measure")
        self.examples, self.spec, self.runtime = examples, spec, runtime
        self.energy, self.keep_logits = energy, keep_logits
        self.hw = detect()
        tok = tokenizer or _tokenizer(self.model_dir)
        enc = encode(tok, examples, _max_length(self.model_dir, spec, runtime))
        batches = make_batches(enc, runtime.batch_size, runtime.padding)
        self.tokens = dict(zip(("real", "padded"), padding_overhead(batches)))
        self.engine = prepare(runtime.engine, self.model_dir, cache_dir, reduce_range=not self.hw.has_vnni)
        self.pool = Pool(self.engine, batches, runtime.instances, runtime.threads, self.hw.cores,
                         allow_oversubscribe=runtime.allow_oversubscribe, timeout_s=timeout_s)

    def __enter__(self) -> "Timing":
        self.pool.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.pool.close()

    def measure(self, repeats: int = 3) -> Measurement:
        """``repeats`` timed passes; the median one is kept."""
        if repeats < 1:
            raise UserInputError(f"repeats must be at least 1, got {repeats}")
        examples, spec = self.examples, self.spec
        busy = psutil.cpu_percent(interval=0.5)  # this process is idle here: what is busy is someone else
        if busy > BUSY_PCT:
            log.warning("machine %.0f%% busy just before timing: this timing may be low; time on a quiet machine",
                        busy)
        tracker = E.pick(self.energy)
        t0 = time.perf_counter()
        tracker.start()
        res = self.pool.run(repeats)
        total = time.perf_counter() - t0
        mid = sorted(range(repeats), key=lambda r: res.walls[r])[repeats // 2]
        reading = tracker.stop(res.cpu_seconds[mid], min(1.0, sum(res.walls) / total) / repeats)

        labelled = all(ex.label is not None for ex in examples)
        metrics = score(spec, examples, res.logits) if labelled else {}
        cis = {k: v.to_dict() for k, v in intervals(spec, examples, res.logits).items()} if labelled else {}
        wall = res.walls[mid]
        return Measurement(
            throughput=len(examples) / wall,
            latency_ms=latency_stats(res.latencies),
            wall_s=wall,
            walls_s=res.walls,
            peak_rss_mb=res.peak_rss_mb,
            metrics=metrics,
            energy_j=reading.joules,
            energy_per_query_j=reading.joules / len(examples),
            energy_method=reading.method,
            energy_measured=reading.measured,
            examples=len(examples),
            tokens=dict(self.tokens),
            runtime=self.runtime,
            model_dir=str(self.model_dir),
            task=spec.name,
            engine_meta=_plain(self.engine.meta),
            hardware=_plain(self.hw.fingerprint()),
            software=software_versions(),
            core_sets=res.core_sets,
            busy_before_pct=busy,
            intervals=cis,
            logits=tuple(tuple(round(float(x), 5) for x in row) for row in res.logits) if self.keep_logits else (),
        )


def measure(model_dir: str | os.PathLike, examples: Sequence[Example], spec: TaskSpec, runtime: Runtime,
            cache_dir: str | os.PathLike, repeats: int = 3, tokenizer=None, energy: str = "auto",
            timeout_s: float = 1800.0, keep_logits: bool = False) -> Measurement:
    """Export/quantise as the engine needs (cached), run the pool ``repeats`` times, keep the median."""
    if repeats < 1:
        raise UserInputError(f"repeats must be at least 1, got {repeats}")
    with Timing(model_dir, examples, spec, runtime, cache_dir, tokenizer, energy, timeout_s, keep_logits) as t:
        return t.measure(repeats)
