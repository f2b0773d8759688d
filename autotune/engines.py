"""One interface, several inference engines (FastFormers section 5: the engine matters as
much as the model).

Two halves so that the pool's workers stay cheap: ``prepare`` runs once in the parent
(export / quantise through the content cache) and returns a picklable ``EngineSpec``;
``load`` runs in each worker and builds the engine with its thread count.

Engines: torch-fp32, torch-int8 (dynamic int8 Linear), ort-fp32 (fused ONNX), ort-int8
(fused + dynamic int8 ONNX), ort-int8-selective (int8 but the most significant third of the
layers kept fp32, AxFormer-style; needs the model's significance.json), ort-cuda-fp16 (fused fp16 ONNX on CUDAExecutionProvider).
A name ``package.module:factory`` plugs in an outside engine: ``factory(spec, threads)``.
"""
from __future__ import annotations

import importlib
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from compress.errors import UserInputError

log = logging.getLogger(__name__)


class Engine(Protocol):
    def predict(self, batch_features: dict[str, np.ndarray]) -> np.ndarray:
        """Logits [batch, num_labels] (float32) for one padded batch."""


@dataclass(frozen=True)
class EngineSpec:
    """What a worker needs to load an engine: picklable, no live objects."""

    name: str
    path: str  # model dir (torch) or .onnx file (ort)
    meta: dict = field(default_factory=dict)  # fused ops, quantisation params... (for reports)


def prepare(name: str, model_dir: str | os.PathLike, cache_dir: str | os.PathLike, reduce_range: bool = False) -> EngineSpec:
    """Build (or find in the cache) the artifact the engine runs."""
    model_dir = str(model_dir)
    if name in ("torch-fp32", "torch-int8") or ":" in name:
        return EngineSpec(name, model_dir)
    if name == "ort-cuda-fp16":
        _require_cuda()
    from compress.export import export_onnx

    gpu = name == "ort-cuda-fp16"
    exported = export_onnx(model_dir, cache_dir, optimize=True, use_gpu=gpu, fp16=gpu)
    meta = {"fused_ops": exported.fused_ops, "export_key": exported.key}
    if name == "ort-fp32" or gpu:
        return EngineSpec(name, str(exported.path), meta)
    if name in ("ort-int8", "ort-int8-selective"):
        from compress.quantize import quantize_int8

        exclude = _selective_fp32(model_dir, exported.path) if name == "ort-int8-selective" else ()
        q = quantize_int8(exported, cache_dir, per_channel=True, reduce_range=reduce_range, exclude_nodes=exclude)
        return EngineSpec(name, str(q.path), meta | {"quantize": q.params, "quantize_key": q.key})
    raise UserInputError(f"unknown engine {name!r}")


SELECTIVE_FP32_FRACTION = 1 / 3  # ort-int8-selective: this share of layers (the most significant) stays fp32


def _selective_fp32(model_dir: str, onnx_path: Path) -> tuple[str, ...]:
    """Nodes of the most significant layers, from the model dir's significance.json (the pipeline
    writes it for recipes with approx != 'none'; computing it here would need training data)."""
    from compress.approx import fp32_nodes
    from compress.significance import Significance

    sig = Significance.load(model_dir)
    keep = max(1, round(len(sig.layers) * SELECTIVE_FP32_FRACTION))
    return fp32_nodes(onnx_path, sig, keep)


def load(spec: EngineSpec, threads: int | None) -> Engine:
    """The engine, ready to predict; ``threads=None`` leaves the library's default thread pool."""
    if ":" in spec.name:
        mod, _, attr = spec.name.partition(":")
        return getattr(importlib.import_module(mod), attr)(spec, threads)
    if spec.name.startswith("torch-"):
        return TorchEngine(spec.path, threads, int8=spec.name == "torch-int8")
    if spec.name == "ort-cuda-fp16":
        _require_cuda()
        return OrtEngine(spec.path, threads, providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    return OrtEngine(spec.path, threads)


def _require_cuda() -> None:
    import onnxruntime as ort

    have = ort.get_available_providers()
    if "CUDAExecutionProvider" not in have:
        raise UserInputError(
            f"engine ort-cuda-fp16 needs onnxruntime's CUDAExecutionProvider (onnxruntime-gpu and a CUDA GPU); "
            f"this onnxruntime {ort.__version__} has only {', '.join(have)}")


class TorchEngine:
    def __init__(self, model_dir: str, threads: int | None, int8: bool = False):
        import torch

        from compress.models import load_classifier

        if threads is not None:
            torch.set_num_threads(threads)
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:  # already set in this process
                pass
        self._torch = torch
        model = load_classifier(model_dir, attn_implementation="eager")
        if int8:
            with warnings.catch_warnings():  # torch.ao's deprecation notes, not actionable here
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = model.eval()
        self.accepts_types = bool(getattr(model.config, "type_vocab_size", 0))

    def predict(self, batch_features: dict[str, np.ndarray]) -> np.ndarray:
        torch = self._torch
        feats = {k: torch.from_numpy(v) for k, v in batch_features.items()
                 if k != "token_type_ids" or self.accepts_types}
        with torch.inference_mode():
            return self.model(**feats).logits.float().numpy()


def ort_session(path: str, threads: int | None, providers: tuple[str, ...] = ("CPUExecutionProvider",),
                profile_prefix: str | None = None):
    """An onnxruntime session as every engine and benchmark here builds it: ``threads`` intra-op
    threads, sequential, and on CPU without the fusions that compress.export leaves out on purpose.
    ``profile_prefix``: write onnxruntime's per-node profile there (``end_profiling`` names the file)."""
    import onnxruntime as ort

    from compress.export import UNFUSED_ON_CPU

    if not Path(path).is_file():
        raise UserInputError(f"ONNX model {path}: no such file")
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    if profile_prefix is not None:
        opts.enable_profiling, opts.profile_file_prefix = True, profile_prefix
    cpu_only = tuple(providers) == ("CPUExecutionProvider",)
    return ort.InferenceSession(path, opts, providers=list(providers),
                                disabled_optimizers=list(UNFUSED_ON_CPU) if cpu_only else None)


class OrtEngine:
    def __init__(self, path: str, threads: int | None, providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        self.session = ort_session(path, threads, providers)
        self.inputs = tuple(i.name for i in self.session.get_inputs())

    def predict(self, batch_features: dict[str, np.ndarray]) -> np.ndarray:
        ids = batch_features["input_ids"]
        feed = {n: batch_features[n] if n in batch_features else np.zeros_like(ids) for n in self.inputs}
        return self.session.run(None, feed)[0]
