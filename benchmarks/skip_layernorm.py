"""SkipLayerNormalization fused vs left as Add + LayerNormalization, the same model int8 on CPU.

autotune/backends/ort_export.py leaves it unfused on CPU (and the engines stop the session from
fusing it back) because onnxruntime's CPU kernel for it was measured slower than the ops it replaces.
This re-measures that on the machine at hand: both graphs quantised the same way, timed
interleaved (fused, unfused, fused, ...) --rounds times, medians and their ratio printed, the
two graphs' predictions compared, and then one profiled pass of each (outside the timing): the
milliseconds onnxruntime spent per op type, the normalisation ops' among them.

    python benchmarks/skip_layernorm.py --data-dir ../shared/data [--model DIR] [--batch-size 8]
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from autotune.backends.ort_export import export_onnx
    from autotune.backends.ort_quantize import quantize_int8
    from autotune.engines import ort_session
    from autotune.hardware import detect
    from autotune.modeldir import classifier_dir
    from compress.batching import encode, make_batches
    from compress.models import load_tokenizer
    from compress.tasks import load_task

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--model", default=None, help="a classifier dir (default: the packaged model, new head)")
    p.add_argument("--cache-dir", default=str(ROOT / ".cache" / "bench"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    data = load_task("sst2", args.data_dir)
    rows = data.splits["dev"]
    model = classifier_dir(args.model, data.spec.num_labels, args.cache_dir)
    batches = make_batches(encode(load_tokenizer(model), rows, data.spec.max_length), args.batch_size, "dynamic")
    vnni = detect().has_vnni
    sessions, paths = {}, {}
    for name, fused in (("fused", True), ("unfused", False)):
        exported = export_onnx(model, args.cache_dir, skip_layer_norm=fused)
        q = quantize_int8(exported, args.cache_dir, per_channel=True, reduce_range=not vnni)
        paths[name] = str(q.path)
        sessions[name] = ort_session(paths[name], args.threads)  # fused nodes stay fused: only new fusions are off
    names = [i.name for i in sessions["fused"].get_inputs()]
    feeds = [{n: b.features[n] for n in names} for b in batches]
    logits = {k: np.concatenate([s.run(None, f)[0] for f in feeds]) for k, s in sessions.items()}
    rate: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(args.rounds):
        for k, s in sessions.items():
            start = time.perf_counter()
            for f in feeds:
                s.run(None, f)
            rate[k].append(len(rows) / (time.perf_counter() - start))
    med = {k: statistics.median(v) for k, v in rate.items()}
    agree = float((logits["fused"].argmax(1) == logits["unfused"].argmax(1)).mean())
    print(f"ort-int8, SST-2 dev {len(rows)} rows, batch {args.batch_size}, {args.threads} thread(s), "
          f"{args.rounds} interleaved rounds, model {model}")
    for k in sessions:
        print(f"  {k:8s} median {med[k]:8.1f} ex/s   all {[round(x) for x in rate[k]]}")
    print(f"unfused / fused: {med['unfused'] / med['fused']:.3f}x; predictions agree on {100 * agree:.1f}% of rows, "
          f"max |logit diff| {float(np.abs(logits['fused'] - logits['unfused']).max()):.4f}")
    for k, path in paths.items():
        ms = op_ms(ort_session(path, args.threads, profile_prefix=str(Path(args.cache_dir) / f"profile-{k}")), feeds)
        total = sum(ms.values())
        norm = {op: t for op, t in ms.items() if op in NORM_OPS}
        print(f"  {k:8s} profiled pass: {total:7.1f} ms in kernels; " + ", ".join(
            f"{op} {t:.1f} ms ({100 * t / total:.1f}%)" for op, t in sorted(norm.items(), key=lambda x: -x[1])))
    return 0


NORM_OPS = ("SkipLayerNormalization", "LayerNormalization", "Add")


def op_ms(session, feeds) -> dict[str, float]:
    """Kernel milliseconds per op type over one pass of ``feeds`` (the session was made with a profile prefix)."""
    for f in feeds:
        session.run(None, f)
    path = session.end_profiling()
    events = json.loads(Path(path).read_text())
    os.remove(path)
    ms: dict[str, float] = collections.defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            ms[e["args"]["op_name"]] += e["dur"] / 1000
    return dict(ms)


if __name__ == "__main__":
    sys.exit(main())
