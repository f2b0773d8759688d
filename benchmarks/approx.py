"""AxFormer-style approximations against the FastFormers baselines, measured in one run.

On a task with the packaged MiniLM fine-tuned (reduced: a seeded subset of train, 1 epoch):
  1. full int8 (ort-int8) vs significance-guided selective int8 (ort-int8-selective: the
     most significant third of the layers fp32): dev accuracy and throughput;
  2. one-shot significance block dropping vs greedy layer pruning (Peer et al.) to the same
     depth, neither distilled afterwards: dev accuracy and build time;
  3. significance vs first-order head pruning at the same heads kept per layer, neither
     re-distilled: dev accuracy and build time.

    nice -n 10 python benchmarks/approx.py --tasks sst2 mrpc --data-dir ../shared/data
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autotune.measure import measure  # noqa: E402
from autotune.runtime import Runtime  # noqa: E402
from compress.cache import read_meta  # noqa: E402
from compress.pipeline import build  # noqa: E402
from compress.recipe import Recipe  # noqa: E402
from compress.tasks import load_task  # noqa: E402

log = logging.getLogger("approx")


def _build_seconds(built, skip_first: int = 1) -> float:
    """Time of the steps after the shared fine-tuned teacher (from the cache metas: a re-run
    reports the original cost)."""
    return sum(read_meta(s.path)["seconds"] for s in list(built.steps)[skip_first:])


def run_task(task: str, args) -> list[dict]:
    data = load_task(task, args.data_dir)
    metric = data.spec.primary_metric
    base = Recipe(task=task, teacher_epochs=args.epochs, max_train_examples=args.max_train, max_length=args.max_length,
                  seed=args.seed)
    cache = Path(args.cache)
    rows: list[dict] = []

    def add(group: str, name: str, built, **extra) -> None:
        rows.append({"task": task, "group": group, "variant": name, "model_dir": str(built.model_dir),
                     "recipe_key": built.recipe.key(), metric: built.metrics[metric], **extra})
        log.info("%s %s %s: %s", task, group, name, rows[-1])

    teacher = build(base, data, cache, progress=False)
    scored = build(replace(base, approx="significance"), data, cache, progress=False)
    sig_seconds = _build_seconds(scored)
    dev = [ex for ex in data.splits["dev"] if ex.label is not None]
    for engine in ("ort-fp32", "ort-int8", "ort-int8-selective"):
        rt = Runtime(engine=engine, padding="dynamic", batch_size=args.batch_size, instances=1, threads=args.threads)
        m = measure(scored.model_dir, dev, data.spec, rt, cache, repeats=args.repeats, energy="cpu-time")
        rows.append({"task": task, "group": "int8", "variant": engine, "model_dir": str(scored.model_dir),
                     metric: m.metrics[metric], "throughput": m.throughput, "p50_ms": m.latency_ms["p50"],
                     "fp32_nodes": len(m.engine_meta.get("quantize", {}).get("exclude_nodes", []))})
        log.info("%s int8 %s: %s", task, engine, rows[-1])

    depth = args.layers
    sig_drop = build(replace(base, approx="significance-drop", approx_layers=depth), data, cache, progress=False)
    add("layers", f"significance drop to {depth}", sig_drop,
        build_s=_build_seconds(sig_drop))
    greedy = build(replace(base, student_layers=depth, route="greedy", kd_epochs=0,
                           layerdrop_steps=args.layerdrop_steps), data, cache, progress=False)
    add("layers", f"greedy drop to {depth} ({args.layerdrop_steps} steps/candidate)", greedy,
        build_s=_build_seconds(greedy), dropped=read_meta(greedy.model_dir).get("dropped_layers"))
    rows[-2]["kept"] = scored_kept(scored.model_dir, depth)

    heads = args.heads
    sig_heads = build(replace(base, approx="significance-drop", approx_heads=heads), data, cache, progress=False)
    add("heads", f"significance, {heads} heads/layer", sig_heads, build_s=_build_seconds(sig_heads))
    fo = build(replace(base, heads_kept=heads, redistill=False), data, cache, progress=False)
    add("heads", f"first-order, {heads} heads/layer", fo, build_s=_build_seconds(fo))
    rows.append({"task": task, "group": "reference", "variant": "fine-tuned teacher (6 layers, 12 heads)",
                 metric: teacher.metrics[metric], "significance_s": sig_seconds})
    return rows


def scored_kept(model_dir: str, depth: int) -> list[int]:
    from compress.significance import Significance

    return Significance.load(model_dir).top_layers(depth)


def markdown(rows: list[dict], args) -> str:
    out = [f"# Approximate computing (AxFormer-style) vs FastFormers baselines\n",
           f"Packaged MiniLM-L6 fine-tuned on a seeded {args.max_train}-row train subset for {args.epochs} epoch(s) "
           f"(reduced training: absolute numbers are below a full fine-tune). Dev split; no re-distillation "
           f"after any drop. Timing: batch {args.batch_size}, 1 instance x {args.threads} thread(s), "
           f"median of {args.repeats}.\n",
           "| task | group | variant | metric | throughput (ex/s) | build (s) |", "|---|---|---|---|---|---|"]
    for r in rows:
        metric = next(k for k in ("accuracy", "f1", "mcc") if k in r)
        tp = f"{r['throughput']:.1f}" if "throughput" in r else ""
        b = f"{r['build_s']:.0f}" if "build_s" in r else (f"{r['significance_s']:.0f} (scoring)" if "significance_s" in r else "")
        out.append(f"| {r['task']} | {r['group']} | {r['variant']} | {metric} {r[metric] * 100:.2f} | {tp} | {b} |")
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["sst2"])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--cache", default=str(ROOT / ".cache" / "compress"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--max-train", type=int, default=4000)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--layers", type=int, default=3, help="depth after dropping (of 6)")
    p.add_argument("--heads", type=int, default=6, help="heads kept per layer (of 12)")
    p.add_argument("--layerdrop-steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    rows = [r for task in args.tasks for r in run_task(task, args)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "approx.json").write_text(json.dumps({"args": vars(args), "rows": rows,
                                                 "seconds": time.perf_counter() - t0}, indent=2))
    md = markdown(rows, args)
    (out / "approx.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
