"""Training steps with freed memory kept in the heap (compress/heap.py) vs glibc's defaults.

Each timing is a fresh process that loads the teacher source, encodes --rows training rows of a
task and runs --steps optimizer steps through compress.train.train (bf16 autocast where the CPU
has it), with FASTFORMERS_KEEP_HEAP=1 or 0; the two variants alternate, --repeats rounds. Printed
per round: seconds a step, the share of CPU time spent in the kernel, peak RSS; then the median
of the per-round ratios default / kept (> 1: kept is faster).

    python benchmarks/train_allocator.py --teacher packaged:all-mpnet-base-v2 --task boolq --max-length 256
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(args) -> None:
    import numpy as np

    from compress.batching import encode
    from compress.models import load_classifier, load_tokenizer
    from compress.tasks import load_task
    from compress.train import TrainConfig, ce_loss, train

    data = load_task(args.task, args.data_dir)
    rows = list(data.splits["train"] if data.splits.get("train") else data.splits["dev"])[: args.rows]
    tok = load_tokenizer(args.teacher)
    enc = encode(tok, rows, args.max_length or data.spec.max_length)
    model = load_classifier(args.teacher, num_labels=data.spec.num_labels)
    labels = np.array([ex.label for ex in rows])
    cfg = TrainConfig(epochs=1.0, lr=5e-5, batch_size=args.batch_size, max_steps=args.steps, eval_every=10**9,
                      patience=10**9, progress=False, bf16=False if args.fp32 else None)
    before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    train(model, data.spec, enc, ce_loss(labels), rows[:8], encode(tok, rows[:8], 64), cfg, desc="bench")
    seconds, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    print(json.dumps({"s_per_step": seconds / args.steps, "sys_share": system / max(1e-9, user + system),
                      "peak_rss_gb": after.ru_maxrss / 2**20,
                      "faults_per_step_k": (after.ru_minflt - before.ru_minflt) / args.steps / 1000,
                      "switches_per_step_k": (after.ru_nvcsw + after.ru_nivcsw - before.ru_nvcsw - before.ru_nivcsw)
                      / args.steps / 1000}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="packaged:all-MiniLM-L6-v2")
    p.add_argument("--task", default="boolq")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--max-length", type=int, help="default: the task's")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast, even where the CPU has it")
    p.add_argument("--out", help="write the result as JSON here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        child(args)
        return 0
    runs: dict[str, list[dict]] = {"default": [], "kept": []}
    for r in range(args.repeats):
        for name in (("default", "kept") if r % 2 == 0 else ("kept", "default")):
            env = {**os.environ, "FASTFORMERS_KEEP_HEAP": "1" if name == "kept" else "0"}
            out = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], env=env, check=True,
                                 capture_output=True, text=True).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1]))
            print(f"round {r + 1} {name:7s} " + "  ".join(f"{k} {v:.3f}" for k, v in runs[name][-1].items()), flush=True)
    ratios = [d["s_per_step"] / k["s_per_step"] for d, k in zip(runs["default"], runs["kept"])]
    result = {"config": vars(args), "runs": runs, "ratios": ratios, "median_ratio": statistics.median(ratios)}
    print(f"default / kept seconds a step: median {result['median_ratio']:.2f}x "
          f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
