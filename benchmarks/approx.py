"""AxFormer-style approximations against the FastFormers baselines, measured in one run per task.

On a task with the packaged MiniLM fine-tuned (the whole train split unless --max-train):
  1. full int8 (ort-int8) vs significance-guided selective int8 (ort-int8-selective: the
     most significant third of the layers fp32): dev accuracy and throughput;
  2. one-shot significance block dropping vs greedy layer pruning (Peer et al.) and the evenly
     spaced subset (FastFormers) to the same depth, each without and with --kd-epochs of
     distillation from the teacher: dev accuracy and build time;
  3. significance vs first-order head pruning at the same heads kept per layer, neither
     re-distilled: dev accuracy and build time.
Writes approx-TASK.{json,md} and the teacher's significance heat map.

    nice -n 10 python benchmarks/approx.py --task sst2 --epochs 1 --max-length 64
    nice -n 10 python benchmarks/approx.py --task mrpc --epochs 3
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
from compress.significance import Significance  # noqa: E402
from compress.tasks import load_task  # noqa: E402

log = logging.getLogger("approx")


def _build_seconds(built, skip_first: int = 1) -> float:
    """Time of the steps after the shared fine-tuned teacher (from the cache metas: a re-run
    reports the original cost)."""
    return sum(read_meta(s.path)["seconds"] for s in list(built.steps)[skip_first:])


def run_task(task: str, args) -> list[dict]:
    data = load_task(task, args.data_dir)
    metric = data.spec.primary_metric
    base = Recipe(task=task, teacher_epochs=args.epochs, max_train_examples=args.max_train or None,
                  max_length=args.max_length, seed=args.seed, kd_epochs=args.kd_epochs)
    cache = Path(args.cache)
    rows: list[dict] = []

    def add(group: str, name: str, built, **extra) -> None:
        rows.append({"task": task, "group": group, "variant": name, "model_dir": str(built.model_dir),
                     "recipe_key": built.recipe.key(), metric: built.metrics[metric], **extra})
        log.info("%s %s %s: %s", task, group, name, rows[-1])

    teacher = build(base, data, cache, progress=False)
    scored = build(replace(base, approx="significance"), data, cache, progress=False)
    sig_seconds = _build_seconds(scored)
    rows.append({"task": task, "group": "reference", "variant": "fine-tuned teacher (6 layers, 12 heads)",
                 "model_dir": str(teacher.model_dir), metric: teacher.metrics[metric], "significance_s": sig_seconds})
    dev = [ex for ex in data.splits["dev"] if ex.label is not None]
    for engine in ("ort-fp32", "ort-int8", "ort-int8-selective"):
        rt = Runtime(engine=engine, padding="dynamic", batch_size=args.batch_size, instances=1, threads=args.threads)
        m = measure(scored.model_dir, dev, data.spec, rt, cache, repeats=args.repeats, energy="cpu-time")
        rows.append({"task": task, "group": "int8", "variant": engine, "model_dir": str(scored.model_dir),
                     metric: m.metrics[metric], "throughput": m.throughput, "p50_ms": m.latency_ms["p50"],
                     "fp32_nodes": len(m.engine_meta.get("quantize", {}).get("exclude_nodes", []))})
        log.info("%s int8 %s: %s", task, engine, rows[-1])

    depth, kd = args.layers, args.kd_epochs
    sig = Significance.load(scored.model_dir)
    kept = sig.top_layers(depth)
    for epochs in (0.0, kd) if kd else (0.0,):
        tag = f", KD {epochs:g} ep" if epochs else ", no KD"
        sig_drop = build(replace(base, approx="significance-drop", approx_layers=depth, approx_epochs=epochs),
                         data, cache, progress=False)
        add("layers", f"significance one-shot drop to {depth}{tag}", sig_drop, build_s=_build_seconds(sig_drop),
            kept=kept)
        greedy = build(replace(base, student_layers=depth, route="greedy", kd_epochs=epochs,
                               layerdrop_steps=args.layerdrop_steps), data, cache, progress=False)
        dropped = read_meta(greedy.steps[1].path).get("dropped_layers")
        add("layers", f"greedy drop to {depth} ({args.layerdrop_steps} steps/candidate){tag}", greedy,
            build_s=_build_seconds(greedy), kept=[i for i in range(teacher_depth(teacher)) if i not in (dropped or [])])
        subset = build(replace(base, student_layers=depth, kd_epochs=epochs), data, cache, progress=False)
        add("layers", f"evenly spaced subset {depth} (FastFormers){tag}", subset, build_s=_build_seconds(subset))

    heads = args.heads
    sig_heads = build(replace(base, approx="significance-drop", approx_heads=heads), data, cache, progress=False)
    add("heads", f"significance, {heads} heads/layer", sig_heads, build_s=_build_seconds(sig_heads))
    fo = build(replace(base, heads_kept=heads, redistill=False), data, cache, progress=False)
    add("heads", f"first-order, {heads} heads/layer", fo, build_s=_build_seconds(fo))
    from reports.significance import plot

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(sig, out / f"significance-{task}.png", f"{task}: fine-tuned teacher")
    return rows


def teacher_depth(built) -> int:
    return int(read_meta(built.model_dir)["config"]["num_hidden_layers"])


def markdown(rows: list[dict], args) -> str:
    train = f"a seeded {args.max_train}-row train subset" if args.max_train else "the whole train split"
    out = [f"# Approximate computing (AxFormer-style) vs FastFormers baselines: {args.task}\n",
           f"Packaged MiniLM-L6 fine-tuned on {train} for {args.epochs:g} epoch(s), max length {args.max_length}; "
           f"dev split. 'KD' rows distil the dropped/student model from the teacher for {args.kd_epochs:g} epoch(s). "
           f"Build time counts every step after the teacher (significance scoring included). Timing: batch "
           f"{args.batch_size}, 1 instance x {args.threads} thread(s), median of {args.repeats}.\n",
           "| group | variant | metric | throughput (ex/s) | build (s) | layers kept |", "|---|---|---|---|---|---|"]
    for r in rows:
        metric = next(k for k in ("accuracy", "f1", "mcc") if k in r)
        tp = f"{r['throughput']:.1f}" if "throughput" in r else ""
        b = f"{r['build_s']:.0f}" if "build_s" in r else (f"{r['significance_s']:.0f} (scoring)" if "significance_s" in r else "")
        out.append(f"| {r['group']} | {r['variant']} | {metric} {r[metric] * 100:.2f} | {tp} | {b} | {r.get('kept', '')} |")
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="sst2")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--cache-dir", "--cache", dest="cache", default=str(ROOT / ".cache" / "compress"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--max-train", type=int, default=0, help="seeded train subset (0 = the whole split)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--layers", type=int, default=3, help="depth after dropping (of 6)")
    p.add_argument("--heads", type=int, default=6, help="heads kept per layer (of 12)")
    p.add_argument("--layerdrop-steps", type=int, default=20)
    p.add_argument("--kd-epochs", type=float, default=1.0, help="distillation after each layer drop (0 = none)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    rows = run_task(args.task, args)
    out = Path(args.out)
    (out / f"approx-{args.task}.json").write_text(json.dumps({"args": vars(args), "rows": rows,
                                                             "seconds": time.perf_counter() - t0}, indent=2))
    md = markdown(rows, args)
    (out / f"approx-{args.task}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
