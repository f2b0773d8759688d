"""Quick-preset students against the ORT-int8 teacher, timed in turn in one run (batch 8, 1 × 2
threads unless ``--layout``, search half), ``--rounds`` rounds, median; prints each ratio over the teacher
and each model's held-out score under the same engine.

    python benchmarks/quick_speed.py '[{"student_layers": 4, "kd_transfer_examples": 30000, "heads_kept": 6,
        "ffn_kept": 384}]' [--rounds 3] [--task sst2 | --task my_spec.json] [--data-dir ../shared/data] [--cache-dir runs/cache]

Models are built (or read from the cache) as benchmarks/quick_students.py builds them. Each model's
pinned workers start once (``api.timing``) and are asked again every round.
"""
from __future__ import annotations

import argparse
import json
import statistics
from contextlib import ExitStack

from autotune import api
from autotune.runtime import Runtime
from compress.baselines import trivial_baseline
from compress.intervals import Interval
from quick_students import quick_recipe  # run as benchmarks/quick_speed.py: its folder is on sys.path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variants", help="a JSON list of recipe overrides (the teacher is timed first)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--layout", default="1x2", help="instances x threads, e.g. 2x1 (the quick sweep's pick)")
    p.add_argument("--task", default="sst2", help="a registered task or a custom task's spec (.json)")
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--cache-dir", default="runs/cache")
    args = p.parse_args()
    instances, threads = (int(x) for x in args.layout.split("x"))
    data = api.load_task(args.task, args.data_dir)
    metric = data.spec.primary_metric
    variants = [{}, *json.loads(args.variants)]
    dirs = [api.build(quick_recipe(data.spec.name, v), data, args.cache_dir).model_dir for v in variants]
    runtime = Runtime(engine="ort-int8", batch_size=8, instances=instances, threads=threads)
    timed: list[list[float]] = [[] for _ in dirs]
    with ExitStack() as stack:
        timings = [stack.enter_context(api.timing(d, data, runtime, args.cache_dir)) for d in dirs]
        for _ in range(args.rounds):  # interleaved: every model once per round
            for i, timing in enumerate(timings):
                timed[i].append(timing.measure(repeats=1).throughput)
    teacher = statistics.median(timed[0])
    trivial = trivial_baseline(data.spec, data.splits["holdout"])
    print(f"held out: {len(data.splits['holdout'])} rows, {trivial.kind} {metric} {trivial.metrics[metric]:.4f}")
    for v, t, d in zip(variants, timed, dirs):
        # the score a sweep confirms its pick by: the held-out half, under the engine (int8 rounding included)
        held = api.measure(d, data, runtime, args.cache_dir, split="holdout", repeats=1).intervals[metric]
        print(json.dumps(v), f"{statistics.median(t):.1f} ex/s", f"x{statistics.median(t) / teacher:.2f}",
              [round(x) for x in t], f"held-out {metric} (this engine) {Interval.from_dict(held).describe()}",
              flush=True)


if __name__ == "__main__":
    main()
