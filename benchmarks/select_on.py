"""Does picking checkpoints on held-aside training rows close the gap between the halves of dev?

A sweep checks its floor on the search half of dev. With ``select_on: dev`` that half also picks
every training step's checkpoint (early stopping), so a model's search-half score is biased up and
its held-out score falls short. This builds the same recipes with ``select_on`` dev and train,
for several seeds, and scores each model (PyTorch fp32) on both halves of the sweep's own split:
a smaller search − held-out gap, or a better held-out score, is what ``train`` is for.

    python benchmarks/select_on.py --data-dir ../shared/data --seeds 0,1,2

Defaults are the quick preset's training budget (10,000 train rows, 1 epoch per step), with the
overnight anchor shape (4 layers, 4 heads, 384 FFN neurons); every build is cached.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def score(model_dir: Path, rows, spec) -> float:
    from compress.batching import encode
    from compress.models import load_classifier, load_tokenizer
    from compress.train import evaluate

    model = load_classifier(model_dir).eval()
    enc = encode(load_tokenizer(str(model_dir)), rows, spec.max_length)
    return evaluate(model, spec, rows, enc)[spec.primary_metric]


def main() -> int:
    from autotune.task_data import load_data
    from compress.pipeline import build
    from compress.recipe import Recipe

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="sst2")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--cache-dir", default=str(ROOT / ".cache" / "compress"))
    p.add_argument("--seeds", default="0,1,2", help="recipe seeds (training order, head draws); the split stays the sweep's")
    p.add_argument("--split-seed", type=int, default=0, help="the sweep's --seed (it draws the two halves)")
    p.add_argument("--max-train", type=int, default=10000)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ffn", type=int, default=384)
    p.add_argument("--out", default=None, help="write the rows as JSON here too")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    data = load_data(args.task, args.data_dir, args.split_seed, 0.5)
    spec = data.spec
    halves = {"search": data.splits["dev"], "held": data.splits["holdout"]}
    rows = []
    print("| seed | select_on | model | search half | held-out half | search − held |\n|---:|---|---|---:|---:|---:|",
          flush=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        for select_on in ("dev", "train"):
            teacher = Recipe(task=args.task, max_train_examples=args.max_train, teacher_epochs=args.epochs,
                             seed=seed, select_on=select_on)
            student = replace(teacher, student_layers=args.layers, kd_epochs=args.epochs, heads_kept=args.heads,
                              ffn_kept=args.ffn, redistill_epochs=args.epochs, redistill_hidden_weight=1.0)
            for name, recipe in (("teacher", teacher), ("student", student)):
                built = build(recipe, data, Path(args.cache_dir), progress=False)
                s, h = (score(built.model_dir, halves[k], spec) for k in ("search", "held"))
                rows.append({"seed": seed, "select_on": select_on, "model": name, "search": s, "held": h,
                             "model_dir": str(built.model_dir)})
                print(f"| {seed} | {select_on} | {name} | {s:.4f} | {h:.4f} | {s - h:+.4f} |", flush=True)

    print("\n| select_on | model | mean search | mean held-out | mean search − held |\n|---|---|---:|---:|---:|")
    for select_on in ("dev", "train"):
        for name in ("teacher", "student"):
            mine = [r for r in rows if r["select_on"] == select_on and r["model"] == name]
            s, h = (statistics.mean(r[k] for r in mine) for k in ("search", "held"))
            print(f"| {select_on} | {name} | {s:.4f} | {h:.4f} | {s - h:+.4f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
