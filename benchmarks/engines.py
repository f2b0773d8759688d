"""ORT int8 + fusion vs the PyTorch fp32 pad-to-max baseline (FastFormers section 5).

Packaged all-MiniLM-L6-v2 (or --model, a fine-tuned classifier dir), SST-2 dev, batch 1,
one process with the libraries' default threads for both, the median of --repeats passes.
Prints the speed-up (target >= 7x) and the accuracy of each (with a fine-tuned --model the
int8 model should be within 1 point of fp32; the packaged model's fresh head is chance level).

    python benchmarks/engines.py --data-dir ../shared/data [--model DIR] [--limit N]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from autotune.measure import measure
    from autotune.modeldir import classifier_dir
    from autotune.runtime import Runtime
    from compress.tasks import limit_rows
    from compress.tasks import load_task

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--model", default=None, help="classifier dir (default: packaged MiniLM with a seeded fresh head)")
    p.add_argument("--cache-dir", default=str(ROOT / ".cache" / "bench"))
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="pin one instance to this many cores (default: "
                   "library default threads, no pinning — the out-of-the-box baseline)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    data = load_task("sst2", args.data_dir)
    rows = limit_rows(data.splits["dev"], args.limit)
    model = classifier_dir(args.model, data.spec.num_labels, args.cache_dir)
    runs = {
        "torch-fp32 pad-to-max": Runtime("torch-fp32", "fixed", 1, instances=1, threads=args.threads),
        "ort-int8 fused, dynamic length": Runtime("ort-int8", "dynamic", 1, instances=1, threads=args.threads),
    }
    res = {k: measure(model, rows, data.spec, rt, args.cache_dir, repeats=args.repeats) for k, rt in runs.items()}
    print(f"model {model}, SST-2 dev {len(rows)} rows, batch 1, threads {args.threads or 'library default'}, median of {args.repeats}")
    for k, m in res.items():
        print(f"  {k:<32} {m.throughput:8.1f} ex/s  p50 {m.latency_ms['p50']:6.2f} ms  accuracy {m.metrics['accuracy']:.4f}"
              f"  fused {m.engine_meta.get('fused_ops', '-')}")
    base, fast = res.values()
    print(f"speed-up ort-int8 / torch-fp32: {fast.throughput / base.throughput:.2f}x (target >= 7x)")
    print(f"accuracy difference: {100 * (fast.metrics['accuracy'] - base.metrics['accuracy']):+.2f} points "
          f"(target within 1 point with a fine-tuned model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
