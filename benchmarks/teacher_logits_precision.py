"""The teacher's soft targets in bf16 vs fp32: time of the pass, and what changes in the targets.

A fine-tuned teacher predicts --rows training rows of a task in fp32 and with bf16 autocast,
interleaved, --repeats rounds; printed: the median time of each, their ratio (per round and
median), and how far the bf16 targets are from the fp32 ones (argmax agreement, largest
probability difference at the distillation temperature, mean KL(fp32 || bf16)).

    python benchmarks/teacher_logits_precision.py --task superglue-rte --teacher CACHE_DIR/KEY --rows 512
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import torch

    from compress.batching import encode
    from compress.models import load_classifier, load_tokenizer
    from compress.tasks import load_task
    from compress.train import cpu_has_bf16, predict

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="superglue-rte")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--teacher", required=True, help="fine-tuned teacher dir")
    p.add_argument("--rows", type=int, default=512)
    p.add_argument("--max-length", type=int, help="default: the task's")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--out", help="write the result as JSON here")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    data = load_task(args.task, args.data_dir)
    rows = list(data.splits["train"])[: args.rows]
    max_length = args.max_length or data.spec.max_length
    tokenizer, model = load_tokenizer(args.teacher), load_classifier(args.teacher)
    enc = encode(tokenizer, rows, max_length)
    predict(model, encode(tokenizer, rows[:16], max_length))  # warm-up
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    logits: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name in times:
            t0 = time.perf_counter()
            logits[name] = predict(model, enc, bf16=name == "bf16")
            times[name].append(time.perf_counter() - t0)
    ratios = [f / b for f, b in zip(times["fp32"], times["bf16"])]
    log32, log16 = (torch.log_softmax(torch.as_tensor(logits[n]) / args.temperature, -1) for n in ("fp32", "bf16"))
    p32, p16 = log32.exp().numpy(), log16.exp().numpy()
    result = {
        "task": args.task, "teacher": args.teacher, "rows": len(rows), "max_length": max_length,
        "cpu_has_bf16": cpu_has_bf16(), "threads": torch.get_num_threads(),
        "fp32_s": times["fp32"], "bf16_s": times["bf16"], "speedup_per_round": ratios,
        "speedup_median": statistics.median(ratios),
        "argmax_agreement": float((p32.argmax(-1) == p16.argmax(-1)).mean()),
        "max_prob_diff": float(np.abs(p32 - p16).max()),
        "mean_kl": float(torch.nn.functional.kl_div(log16, log32, reduction="batchmean", log_target=True)),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
