"""Where a compressed model loses accuracy, and how its speed over the int8 teacher depends on batch.

1. Each model scored on the sweep's two halves of dev (search / held-out, the sweep's own seeded
   split), in PyTorch fp32 and ORT int8 (batch 64, one instance per core): depth, pruning and
   int8 each show up as a separate drop, and a search-half score kept by early stopping shows
   up as a gap between the halves.
2. For each batch size, the teacher and each model as ORT int8, one instance per core, on the
   whole of dev, timed one after the other in the same run (median of --repeats): the ratio
   over the int8 teacher at the same runtime, and the accuracy of what was timed.

    python benchmarks/heldout.py --data-dir ../shared/data --teacher DIR --models DIR [DIR ...]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from autotune.task_data import load_data
    from autotune.hardware import detect
    from autotune.measure import measure
    from autotune.runtime import Runtime

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="sst2", help="a registered task, or a custom task's spec.json (as `sweep --task-spec` "
                   "writes it: benchmarks/prepare_custom_csv.py)")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--teacher", required=True, help="fine-tuned teacher dir")
    p.add_argument("--models", nargs="+", required=True, help="compressed model dirs")
    p.add_argument("--cache-dir", default=str(ROOT / ".cache" / "compress"))
    p.add_argument("--batch-sizes", default="1,4,8,16,32,64")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="the sweep's --seed (it draws the split)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    data = load_data(args.task, args.data_dir, args.seed, 0.5)
    metric = data.spec.primary_metric
    cores = detect().physical_cores
    dirs = [args.teacher, *args.models]

    def run(model: str, rows, engine: str, batch: int, repeats: int):
        rt = Runtime(engine=engine, padding="dynamic", batch_size=batch, instances=cores, threads=1)
        return measure(model, rows, data.spec, rt, args.cache_dir, repeats=repeats)

    print(f"| model | engine | search half | held-out half | ({metric}, batch 64, {cores}x1) |\n|---|---|---:|---:|---|")
    for model in dirs:
        for engine in ("torch-fp32", "ort-int8"):
            search, held = (run(model, data.splits[s], engine, 64, 1).metrics[metric] for s in ("dev", "holdout"))
            print(f"| {Path(model).name} | {engine} | {search:.4f} | {held:.4f} | |", flush=True)

    whole = data.splits["dev"] + data.splits["holdout"]
    print(f"\n| model | batch | ex/s | teacher ex/s | × int8 teacher | {metric} (all dev) |\n|---|---:|---:|---:|---:|---:|")
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        teacher = run(args.teacher, whole, "ort-int8", batch, args.repeats)
        for model in args.models:
            m = run(model, whole, "ort-int8", batch, args.repeats)
            print(f"| {Path(model).name} | {batch} | {m.throughput:.0f} | {teacher.throughput:.0f} | "
                  f"{m.throughput / teacher.throughput:.2f} | {m.metrics[metric]:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
