"""Sign-matching attention (AxFormer) vs exact attention in PyTorch: accuracy and speed.

Same fine-tuned model, same dev rows, same dynamic batches; exact eager attention is the
reference (ratio 1), rounds interleaved, median of --repeats. A keep fraction below 1 is
the approximation; PyTorch's fused SDPA attention is shown for scale.

    python benchmarks/sign_matching.py --model .cache/compress/<fine-tuned teacher> --task sst2
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from compress.batching import encode  # noqa: E402
from compress.models import load_classifier, load_tokenizer  # noqa: E402
from compress.sign_matching import apply  # noqa: E402
from compress.tasks import load_task, score  # noqa: E402
from compress.train import predict  # noqa: E402

log = logging.getLogger("sign_matching")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a fine-tuned classifier directory")
    p.add_argument("--task", default="sst2")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--keep", type=float, nargs="+", default=[0.5, 0.25])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    data = load_task(args.task, args.data_dir)
    dev = [ex for ex in data.splits["dev"] if ex.label is not None]
    enc = encode(load_tokenizer(args.model), dev, data.spec.max_length)
    variants = {"exact (eager)": load_classifier(args.model, attn_implementation="eager"),
                "exact (SDPA)": load_classifier(args.model, attn_implementation="sdpa")}
    for keep in args.keep:
        variants[f"sign matching, keep {keep:g}"] = apply(load_classifier(args.model, attn_implementation="eager"), keep)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    metrics = {}
    with torch.inference_mode():
        for name, model in variants.items():  # warm-up + accuracy
            metrics[name] = score(data.spec, dev, predict(model.eval(), enc, args.batch_size))
        for r in range(args.repeats):
            for name, model in variants.items():
                t0 = time.perf_counter()
                predict(model, enc, args.batch_size)
                seconds[name].append(time.perf_counter() - t0)
    ref = statistics.median(seconds["exact (eager)"])
    rows = [{"variant": name, **metrics[name], "throughput": len(dev) / statistics.median(s),
             "speed_vs_exact": ref / statistics.median(s)} for name, s in seconds.items()]
    metric = data.spec.primary_metric
    md = [f"# Sign-matching attention, {args.task} dev ({len(dev)} rows), PyTorch fp32, batch {args.batch_size}, "
          f"{args.threads} threads, median of {args.repeats} interleaved rounds\n",
          f"| variant | {metric} | throughput (ex/s) | speed vs exact eager |", "|---|---|---|---|"]
    md += [f"| {r['variant']} | {r[metric] * 100:.2f} | {r['throughput']:.1f} | {r['speed_vs_exact']:.2f}× |" for r in rows]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"sign_matching-{args.task}.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    (out / f"sign_matching-{args.task}.md").write_text("\n".join(md) + "\n")
    log.info("\n%s", "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
