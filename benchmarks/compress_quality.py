"""Quality of the compression recipes on SST-2 (the FastFormers table, CPU edition).

Rows: the packaged all-MiniLM-L6-v2 fine-tuned on the full SST-2 train split (teacher), a
3-layer student distilled from it, and that student with 50% of heads and FFN neurons pruned
then re-distilled. For each: recipe, parameters, dev accuracy, time to build (the sum of
the build times of every cached step on its chain, so a re-run reports the original cost).

    nice -n 10 python benchmarks/compress_quality.py --data-dir ../shared/data --cache .cache/compress
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.cache import read_meta  # noqa: E402
from compress.pipeline import build  # noqa: E402
from compress.recipe import Recipe  # noqa: E402
from compress.tasks import load_task  # noqa: E402

log = logging.getLogger("compress_quality")

TARGETS = {"teacher": "dev accuracy >= 88.0", "student": "within 1.5 points of the teacher",
           "pruned": "within 2 points of the unpruned student"}


def recipes(args) -> dict[str, Recipe]:
    teacher = Recipe(task="sst2", teacher_epochs=args.teacher_epochs, teacher_lr=args.teacher_lr,
                     teacher_batch_size=32, max_length=64, max_train_examples=args.max_train or None, seed=args.seed)
    student = replace(teacher, student_layers=3, kd_epochs=args.kd_epochs, kd_lr=args.kd_lr,
                      kd_temperature=args.temperature, kd_batch_size=32)
    pruned = replace(student, heads_kept=6, ffn_kept=768, redistill=True, redistill_epochs=args.redistill_epochs)
    return {"teacher": teacher, "student": student, "pruned": pruned}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--cache-dir", "--cache", dest="cache", default=str(ROOT / ".cache" / "compress"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--teacher-epochs", type=float, default=1.0)
    p.add_argument("--teacher-lr", type=float, default=5e-5)
    p.add_argument("--kd-epochs", type=float, default=2.0)
    p.add_argument("--kd-lr", type=float, default=1e-4)
    p.add_argument("--redistill-epochs", type=float, default=1.0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-train", type=int, default=0, help="train rows sampled from the split (default 0: all 67,349)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=list(TARGETS), action="append", help="build only these rows")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("transformers").setLevel(logging.ERROR)

    data = load_task("sst2", args.data_dir)
    rows = []
    for name, recipe in recipes(args).items():
        if args.only and name not in args.only:
            continue
        built = build(recipe, data, Path(args.cache), progress=True)
        metas = [read_meta(s.path) for s in built.steps]
        rows.append({
            "model": name, "recipe": recipe.to_dict(), "recipe_key": recipe.key(), "model_dir": str(built.model_dir),
            "parameters": metas[-1]["parameters"], "encoder_parameters": encoder_parameters(built.model_dir),
            "dev_accuracy": built.metrics["accuracy"],
            "build_seconds": sum(m["seconds"] for m in metas),
            "steps": [{"name": s.name, "key": s.key, "hit": s.hit, "seconds": m["seconds"],
                       "dev": m["metrics"]} for s, m in zip(built.steps, metas)],
            "target": TARGETS[name],
        })
        log.info("%s: %s", name, {k: rows[-1][k] for k in ("parameters", "dev_accuracy", "build_seconds")})
    acc = {r["model"]: r["dev_accuracy"] * 100 for r in rows}
    checks = {}
    if "teacher" in acc:
        checks["teacher >= 88.0"] = acc["teacher"] >= 88.0
    if {"teacher", "student"} <= acc.keys():
        checks["student within 1.5 of teacher"] = acc["teacher"] - acc["student"] <= 1.5
    if {"student", "pruned"} <= acc.keys():
        checks["pruned within 2.0 of student"] = acc["student"] - acc["pruned"] <= 2.0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compress_quality.json").write_text(json.dumps({"rows": rows, "checks": checks}, indent=2))
    (out / "compress_quality.md").write_text(markdown(rows, checks))
    sys.stdout.write(markdown(rows, checks))
    return 0 if all(checks.values()) else 1


def encoder_parameters(model_dir: Path) -> int:
    """Parameters in the Transformer layers alone (no embeddings, pooler or head): what pruning shrinks."""
    from transformers import AutoConfig

    from compress.prune import expected_parameters

    cfg = AutoConfig.from_pretrained(model_dir)
    h = cfg.hidden_size
    outside = (cfg.vocab_size + cfg.max_position_embeddings + cfg.type_vocab_size) * h + 2 * h + h * h + h
    return expected_parameters(cfg, cfg.num_labels) - outside - (h * cfg.num_labels + cfg.num_labels)


def describe(r: dict) -> str:
    rc = r["recipe"]
    text = f"MiniLM-L6 fine-tuned {rc['teacher_epochs']:g} ep, lr {rc['teacher_lr']:g}"
    if rc["student_layers"]:
        text += f"; {rc['student_layers']}-layer KD {rc['kd_epochs']:g} ep, lr {rc['kd_lr']:g}, T {rc['kd_temperature']:g}"
    if rc["heads_kept"] or rc["ffn_kept"]:
        text += f"; keep {rc['heads_kept']}/12 heads, {rc['ffn_kept']}/1536 FFN; re-KD {rc['redistill_epochs']:g} ep"
    return text


def markdown(rows: list[dict], checks: dict[str, bool]) -> str:
    lines = ["| model | recipe | parameters (all / Transformer layers) | dev accuracy (%) | time to build (min) |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {describe(r)} | {r['parameters'] / 1e6:.2f} M / {r['encoder_parameters'] / 1e6:.2f} M | {r['dev_accuracy'] * 100:.2f} "
                     f"| {r['build_seconds'] / 60:.1f} |")
    lines.append("")
    lines += [f"- {k}: {'met' if v else 'NOT met'}" for k, v in checks.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
