"""A sweep's trials beside their held-out checks, and its ablation, as one markdown + JSON record.

Reads only what the sweep and `ablation --pick` stored (the study, the deploy config, the
ablation JSON); full dev = the mean of the search and held-out halves (equal halves).

    python benchmarks/sweep_table.py --run runs/sst2-overnight --ablation runs/ablation-overnight \
        --out benchmarks/results/sweep-sst2-overnight
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def markdown(frame, caption: str) -> str:
    """The report's own cell formatting and Markdown table."""
    from reports.document import Table
    from reports.markdown import table
    from reports.tables import num, render, text

    formats = {"trial": num(".0f"), "recipe": text, "batch_size": num(".0f"), "throughput": num(".0f"),
               "accuracy": num(".4f"), "held-out": num(".4f"), "full dev": num(".4f"),
               "feasible": lambda v: "yes" if v else "no"}
    columns = {name: (name, fmt) for name, fmt in formats.items()}  # header = column name
    return table(Table(caption, render(frame, columns))) + "\n"


def main() -> int:
    import optuna
    from reports.length import sweep_length
    from reports.load import load_run

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the sweep's run dir (study.db, deploy/)")
    p.add_argument("--ablation", required=True, help="the out dir of `ablation --pick`")
    p.add_argument("--out", required=True, help="output path without extension")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    run, ablation = Path(args.run), Path(args.ablation)
    (res,) = load_run(run)
    deploy = res.deploy or {}
    st = optuna.load_study(study_name=res.study, storage=f"sqlite:///{run / 'study.db'}")
    checks = {c["trial"]: c["score"] for c in st.user_attrs.get("heldout_checks", [])}
    df = res.trials[res.trials.state == "COMPLETE"].copy()
    df["held-out"] = df.trial.map(checks)
    df["full dev"] = (df.accuracy + df["held-out"]) / 2
    fastest = df.sort_values(["recipe", "throughput"], ascending=[True, False]).groupby("recipe").head(1)
    refs = st.user_attrs["references"]
    length = sweep_length(res.trials)
    text = [f"# {res.task}: sweep {res.study} ({len(df)} complete trials)\n",
            f"Teacher: search half {refs['teacher_metrics'][res.metric]:.4f}, held-out half "
            f"{st.user_attrs['teacher_heldout'][res.metric]:.4f} (PyTorch fp32). Floor on the search half: "
            f"{st.user_attrs['floor']:.4f}; held-out floor {deploy.get('heldout_floor', float('nan')):.4f}.\n",
            f"Length: {length.describe()}.\n",
            "Search-half accuracy and throughput as stored in the study; held-out = the confirmation re-score "
            "under the same runtime; full dev = mean of the two halves.\n",
            markdown(fastest.sort_values("throughput", ascending=False), "Fastest trial of each model"),
            markdown(df.sort_values("trial"), "Every trial"),
            "\n## Ablation with the sweep's pick\n", (ablation / "ablation.md").read_text().split("\n", 1)[1]]
    out = Path(args.out)
    out.with_suffix(".md").write_text("\n".join(text))
    out.with_suffix(".json").write_text(json.dumps(
        {"deploy": deploy, "length": length.to_dict(), "ablation": json.loads((ablation / "ablation.json").read_text()),
         "heldout_checks": st.user_attrs.get("heldout_checks", []), "teacher_heldout": st.user_attrs["teacher_heldout"],
         "references": {"teacher_metrics": refs["teacher_metrics"]},
         "baseline_throughput": refs["baseline"]["throughput"],
         "teacher_ort_int8_b1_throughput": refs["teacher_ort_int8"]["throughput"]}, indent=2, default=str))
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
