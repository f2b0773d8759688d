"""The onnxruntime backend's dynamic int8 quantisation of an (optimised) ONNX graph (FastFormers
section 5).

Weights are QInt8 per output channel; activations are quantised on the fly. ``reduce_range``
(7-bit weights) exists for CPUs without VNNI, where u8×s8 products can saturate; with
AVX-512 VNNI / AVX-VNNI full range keeps more accuracy, so callers pass ``not has_vnni``.
Only MatMul and the fused Attention are quantised: they are the time; the embedding
Gather would save memory, not time, and costs accuracy.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from autotune.backends.ort_export import MAX_IR_VERSION, MODEL_FILE, ExportResult
from compress.cache import cached, content_key

log = logging.getLogger(__name__)

DEFAULT_OPS = ("MatMul", "Attention")


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    key: str
    source: ExportResult
    params: dict


def quantize_int8(exported: ExportResult, cache_dir: str | os.PathLike, per_channel: bool = True,
                  reduce_range: bool = False, op_types: tuple[str, ...] = DEFAULT_OPS,
                  exclude_nodes: tuple[str, ...] = ()) -> QuantizeResult:
    """Dynamic int8 copy of ``exported``, cached by (source key, quantisation params).
    ``exclude_nodes`` stay fp32 (selective quantisation, compress/approx.py)."""
    params = {"per_channel": per_channel, "reduce_range": reduce_range, "op_types": list(op_types),
              "weight_type": "QInt8"}
    if exclude_nodes:  # only when used, so existing cache keys stay valid
        params["exclude_nodes"] = sorted(exclude_nodes)
    key = content_key(exported.key, params)
    out = cached(cache_dir, "onnx-int8", key, lambda tmp: _build(exported.path, tmp, params))
    return QuantizeResult(out / MODEL_FILE, key, exported, params)


def _build(src: Path, tmp: Path, params: dict) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = tmp / MODEL_FILE
    quantize_dynamic(
        src, dst,
        op_types_to_quantize=params["op_types"],
        per_channel=params["per_channel"],
        reduce_range=params["reduce_range"],
        weight_type=QuantType.QInt8,
        nodes_to_exclude=params.get("exclude_nodes", []),
        # the fused contrib ops have no shape inference, so the quantiser cannot infer their types
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    model = onnx.load(str(dst))
    if model.ir_version > MAX_IR_VERSION:
        model.ir_version = MAX_IR_VERSION
        onnx.save(model, str(dst))
    ops: dict[str, int] = {}
    for n in model.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    (tmp / "quantize.json").write_text(json.dumps({"source": str(src), "params": params, "ops": ops}, indent=2))
    log.info("quantised %s -> %s", src, tmp.name)
