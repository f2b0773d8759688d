"""The onnxruntime backend's export (it serves only that backend, hence here, not in compress/):
ONNX with dynamic (batch, sequence) axes, then onnxruntime's transformer optimizer, which fuses
Attention, Gelu, EmbedLayerNormalization and, for GPU only, SkipLayerNormalization (FastFormers
section 5: graph optimisation is half of the CPU speed-up).

Why not SkipLayerNormalization on CPU: onnxruntime 1.32's CPU kernel for it took several times
the time of the Add + LayerNormalization it replaces (AMD EPYC, 2 cores); unfused, int8 models
ran 1.15x (6 layers) to 1.33x (2 layers) faster with the same predictions
(``benchmarks/skip_layernorm.py`` re-measures both, with a per-op profile). The CPU engines also turn off the session's
own SkipLayerNormFusion (``UNFUSED_ON_CPU``), which would otherwise fuse it back at load time.

Exports are cached by content: the hash of the model's weights + config and the export
parameters, so every trial that runs the same model reuses one file.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from compress.cache import cached, content_key, hash_dir
from compress.errors import UserInputError
from compress.models import load_classifier, uses_token_types

log = logging.getLogger(__name__)

OPSET = 17
# onnx can stamp an IR version newer than the installed onnxruntime reads; opset 17 needs only IR 8.
MAX_IR_VERSION = 8
MODEL_FILE = "model.onnx"
META_FILE = "export.json"
UNFUSED_ON_CPU = ("SkipLayerNormFusion",)  # onnxruntime session fusions the CPU engines disable (see above)


@dataclass(frozen=True)
class ExportResult:
    path: Path  # the .onnx file
    fused_ops: dict[str, int]
    inputs: tuple[str, ...]
    key: str

    @property
    def dir(self) -> Path:
        return self.path.parent


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch
    import transformers

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "transformers": transformers.__version__}


def _cap_ir(model) -> None:
    if model.ir_version > MAX_IR_VERSION:
        model.ir_version = MAX_IR_VERSION


def export_onnx(model_dir: str | os.PathLike, cache_dir: str | os.PathLike, optimize: bool = True,
                use_gpu: bool = False, fp16: bool = False, skip_layer_norm: bool | None = None) -> ExportResult:
    """Export ``model_dir`` (an HF sequence classifier) to ONNX, fused unless ``optimize`` is False;
    ``skip_layer_norm`` None fuses SkipLayerNormalization for GPU only (see the module's note)."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise UserInputError(f"model {model_dir}: not a model directory (no config.json in it)")
    sln = use_gpu if skip_layer_norm is None else skip_layer_norm
    params = {"opset": OPSET, "optimize": optimize, "use_gpu": use_gpu, "fp16": fp16, "v": _versions(),
              "skip_layer_norm": sln}
    key = content_key(hash_dir(model_dir), params)
    out = cached(cache_dir, "onnx", key, lambda tmp: _build(model_dir, tmp, optimize, use_gpu, fp16, sln))
    meta = json.loads((out / META_FILE).read_text())
    return ExportResult(out / MODEL_FILE, meta["fused_ops"], tuple(meta["inputs"]), key)


def _build(model_dir: Path, tmp: Path, optimize: bool, use_gpu: bool, fp16: bool, sln: bool) -> None:
    import onnx

    raw = tmp / "raw.onnx"
    inputs = _torch_export(model_dir, raw)
    model = onnx.load(str(raw))
    _cap_ir(model)
    fused: dict[str, int] = {}
    if optimize:
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model

        options = FusionOptions("bert")
        options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = sln
        # num_heads=0 / hidden_size=0: detected per Attention node, so head-pruned layers fuse too.
        opt = optimize_model(model, model_type="bert", num_heads=0, hidden_size=0, opt_level=0, use_gpu=use_gpu,
                             optimization_options=options)
        if fp16:
            opt.convert_float_to_float16(keep_io_types=True)
        fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
        _cap_ir(opt.model)
        opt.save_model_to_file(str(tmp / MODEL_FILE))  # also declares the com.microsoft opset
    else:
        onnx.save(model, str(tmp / MODEL_FILE))
    raw.unlink()
    log.info("exported %s -> %s fused=%s", model_dir, tmp.name, fused)
    (tmp / META_FILE).write_text(json.dumps({"model_dir": str(model_dir), "inputs": inputs, "fused_ops": fused,
                                            "opset": OPSET, "optimize": optimize, "fp16": fp16,
                                            "skip_layer_norm": sln}, indent=2))


def _torch_export(model_dir: Path, path: Path) -> list[str]:
    import torch

    model = load_classifier(model_dir, attn_implementation="eager")
    model.config.return_dict = False
    names = ["input_ids", "attention_mask"]
    if uses_token_types(model.config):
        names.append("token_type_ids")
    dummy = tuple(torch.full((2, 8), int(n != "token_type_ids"), dtype=torch.long) for n in names)  # segment 0
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the classic exporter is chosen on purpose
        torch.onnx.export(model, dummy, str(path), input_names=names, output_names=["logits"],
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False)
    return names


def export_meta(result: ExportResult) -> dict:
    return asdict(result) | {"path": str(result.path)}
