"""Students the quick preset can afford on a task: search-half score and build time per recipe.

    python benchmarks/quick_students.py '[{"student_layers": 3, "kd_transfer_examples": 30000}]' \
        [--task sst2 | --task my_spec.json] [--data-dir ../shared/data] [--cache-dir runs/cache]

Each JSON object overrides the quick preset's recipe; the teacher (first, cached) is shared.
Prints the task's majority class on the same rows beside every score, and each model's score on
the held-out half too (the rows a sweep confirms its pick on: they chose nothing).
"""
from __future__ import annotations

import argparse
import json
import time

from autotune import api
from autotune.presets import get_preset
from compress.baselines import trivial_baseline
from compress.batching import encode
from compress.models import load_classifier, load_tokenizer
from compress.recipe import Recipe
from compress.train import evaluate


def quick_recipe(task: str, override: dict) -> Recipe:
    return Recipe.from_dict({**get_preset("quick").recipe, "task": task, "seed": 0, **override})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variants", help="a JSON list of recipe overrides")
    p.add_argument("--task", default="sst2", help="a registered task or a custom task's spec (.json)")
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--cache-dir", default="runs/cache")
    args = p.parse_args()
    data = api.load_task(args.task, args.data_dir)
    metric = data.spec.primary_metric
    trivial = trivial_baseline(data.spec, data.splits["dev"])
    held = data.splits["holdout"]
    held_trivial = trivial_baseline(data.spec, held)
    print(f"{data.spec.name}: search half {len(data.splits['dev'])} rows, {trivial.kind} {metric} "
          f"{trivial.metrics[metric]:.4f}; held out {len(held)} rows, {held_trivial.metrics[metric]:.4f}")
    for override in [{}, *json.loads(args.variants)]:
        t0 = time.time()
        b = api.build(quick_recipe(data.spec.name, override), data, args.cache_dir)
        steps = " ".join(f"{s.name}:{'hit' if s.hit else f'{s.seconds:.0f}s'}" for s in b.steps)
        seconds = time.time() - t0
        print(json.dumps(override), f"search-half {metric} {b.metrics[metric]:.4f}",
              f"held-out {heldout_score(b.model_dir, data):.4f}", f"{seconds:.0f}s", steps, flush=True)


def heldout_score(model_dir, data) -> float:
    model = load_classifier(model_dir)
    enc = encode(load_tokenizer(model_dir), data.splits["holdout"], data.spec.max_length)
    return evaluate(model, data.spec, data.splits["holdout"], enc)[data.spec.primary_metric]


if __name__ == "__main__":
    main()
