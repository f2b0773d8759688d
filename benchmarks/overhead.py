"""Overhead of the measurement pool: 1 instance × 2 threads through the pool vs a bare
onnxruntime loop over the same inputs with the same session options (target >= 95%).

Interleaved (pool, bare, pool, bare, ...) --rounds times because the machine may be shared;
medians and their ratio are printed.

    python benchmarks/overhead.py --data-dir ../shared/data [--limit N] [--rounds 5]
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bare_loop(path: str, batches, threads: int) -> float:
    """Examples/s of a plain InferenceSession loop (session built and warmed outside the timing)."""
    from autotune.engines import ort_session

    sess = ort_session(path, threads)
    names = [i.name for i in sess.get_inputs()]
    feeds = [{n: b.features[n] for n in names} for b in batches]
    for f in feeds[:2]:
        sess.run(None, f)
    start = time.perf_counter()
    for f in feeds:
        sess.run(None, f)
    return sum(len(b.indices) for b in batches) / (time.perf_counter() - start)


def main() -> int:
    from autotune.engines import prepare
    from autotune.hardware import detect
    from autotune.modeldir import classifier_dir
    from autotune.pool import run_pool
    from compress.tasks import limit_rows
    from compress.batching import encode, make_batches
    from compress.models import load_tokenizer
    from compress.tasks import load_task

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--model", default=None)
    p.add_argument("--cache-dir", default=str(ROOT / ".cache" / "bench"))
    p.add_argument("--engine", default="ort-int8", choices=("ort-int8", "ort-fp32"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    data = load_task("sst2", args.data_dir)
    rows = limit_rows(data.splits["dev"], args.limit)
    model = classifier_dir(args.model, data.spec.num_labels, args.cache_dir)
    batches = make_batches(encode(load_tokenizer(model), rows, data.spec.max_length), 1, "dynamic")
    spec = prepare(args.engine, model, args.cache_dir, reduce_range=not detect().has_vnni)
    cores = detect().cores
    pool, bare = [], []
    for _ in range(args.rounds):
        res = run_pool(spec, batches, instances=1, threads=args.threads, cores=cores)
        pool.append(len(rows) / res.walls[0])
        bare.append(bare_loop(spec.path, batches, args.threads))
    mp, mb = statistics.median(pool), statistics.median(bare)
    print(f"{args.engine}, SST-2 dev {len(rows)} rows, batch 1, 1 instance x {args.threads} threads, "
          f"{args.rounds} interleaved rounds")
    print(f"  pool  median {mp:8.1f} ex/s   all {[round(x) for x in pool]}")
    print(f"  bare  median {mb:8.1f} ex/s   all {[round(x) for x in bare]}")
    print(f"pool / bare: {100 * mp / mb:.1f}% (target >= 95%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
