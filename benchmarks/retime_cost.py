"""What the sweep's closing re-timing costs in wall time, and the ratios it gives, for a pick from
the cache: run it under two code trees in turn (A B A B ...) to compare them in one session.

    PYTHONPATH=/path/to/tree python benchmarks/retime_cost.py CACHE/PICK_KEY --task sst2 \
        [--data-dir ../shared/data] [--cache-dir runs/cache] [--runtime '{"engine": "ort-int8", ...}'] [--rounds 3]

The teacher is the pick's ancestor in the cache (its meta.json ``parent`` chain); the rows are the
first ``retime.ROWS`` of the search half, as the sweep takes them. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path


def teacher_of(model_dir: Path) -> Path:
    """The teacher step the pick was built from, up its cache ``parent`` chain."""
    meta = json.loads((model_dir / "meta.json").read_text())
    while meta["step"] != "teacher":
        model_dir = model_dir.parent / meta["parent"]
        meta = json.loads((model_dir / "meta.json").read_text())
    return model_dir


def main() -> None:
    import autotune
    from autotune import api
    from autotune.retime import ROWS, retime
    from autotune.runtime import Runtime
    from compress.tasks import limit_rows

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pick", type=Path, help="a model directory in the cache")
    p.add_argument("--task", default="sst2", help="a registered task or a custom task's spec (.json)")
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--cache-dir", default="runs/cache")
    p.add_argument("--runtime", default='{"engine": "ort-int8", "batch_size": 8, "instances": 2, "threads": 1}')
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = api.load_task(args.task, args.data_dir)
    rows = limit_rows(data.splits["dev"], ROWS)
    runtime = Runtime.from_dict(json.loads(args.runtime))
    start = time.perf_counter()
    got = retime(args.pick, teacher_of(args.pick), rows, data.spec, runtime, Path(args.cache_dir), args.rounds)
    print(json.dumps({"code": str(Path(autotune.__file__).parents[1]), "wall_s": round(time.perf_counter() - start, 1),
                      "rounds": got.rounds, "over_int8_teacher": round(got.over_int8_teacher, 3),
                      "over_baseline": round(got.over_baseline, 2), "busiest_pct": got.busiest_pct}), flush=True)


if __name__ == "__main__":
    main()
