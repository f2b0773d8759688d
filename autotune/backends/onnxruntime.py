"""The onnxruntime engines: ort-fp32 (fused ONNX), ort-int8 (fused + dynamic int8), ort-int8-selective
(int8 but the most significant third of the layers kept fp32, AxFormer-style; needs the model's
significance.json) and ort-cuda-fp16 (fused fp16 on CUDAExecutionProvider). Preparing exports
and quantises through the content cache (ort_export, ort_quantize), once in the parent."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from autotune.backends.ort_export import UNFUSED_ON_CPU, export_onnx
from autotune.backends.ort_quantize import quantize_int8
from autotune.backends.registry import Backend, EngineSpec
from compress.errors import UserInputError

CPU = ("CPUExecutionProvider",)
CUDA = ("CUDAExecutionProvider", "CPUExecutionProvider")
SELECTIVE_FP32_FRACTION = 1 / 3  # ort-int8-selective: this share of layers (the most significant) stays fp32


def _prepare(model_dir: str, cache_dir, reduce_range: bool = False, *, name: str, int8: bool = False,
             selective: bool = False, gpu: bool = False) -> EngineSpec:
    if gpu:
        _require_cuda()
    exported = export_onnx(model_dir, cache_dir, optimize=True, use_gpu=gpu, fp16=gpu)
    meta = {"fused_ops": exported.fused_ops, "export_key": exported.key}
    if not int8:
        return EngineSpec(name, str(exported.path), meta)
    exclude = _selective_fp32(model_dir, exported.path) if selective else ()
    q = quantize_int8(exported, cache_dir, per_channel=True, reduce_range=reduce_range, exclude_nodes=exclude)
    return EngineSpec(name, str(q.path), meta | {"quantize": q.params, "quantize_key": q.key})


def _selective_fp32(model_dir: str, onnx_path: Path) -> tuple[str, ...]:
    """Nodes of the most significant layers, from the model dir's significance.json (the pipeline
    writes it for recipes with approx != 'none'; computing it here would need training data)."""
    # torch at import: spawned pool workers import this module, and pin their cores before any tensor library
    from compress.approx import fp32_nodes
    from compress.significance import Significance

    sig = Significance.load(model_dir)
    keep = max(1, round(len(sig.layers) * SELECTIVE_FP32_FRACTION))
    return fp32_nodes(onnx_path, sig, keep)


def _require_cuda() -> None:
    import onnxruntime as ort

    have = ort.get_available_providers()
    if "CUDAExecutionProvider" not in have:
        raise UserInputError(
            f"engine ort-cuda-fp16 needs onnxruntime's CUDAExecutionProvider (onnxruntime-gpu and a CUDA GPU); "
            f"this onnxruntime {ort.__version__} has only {', '.join(have)}")


def ort_session(path: str, threads: int | None, providers: tuple[str, ...] = CPU, profile_prefix: str | None = None):
    """An onnxruntime session as every engine and benchmark here builds it: ``threads`` intra-op
    threads, sequential, and on CPU without the fusions that ort_export leaves out on purpose.
    ``profile_prefix``: write onnxruntime's per-node profile there (``end_profiling`` names the file)."""
    import onnxruntime as ort

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
    cpu_only = tuple(providers) == CPU
    return ort.InferenceSession(path, opts, providers=list(providers),
                                disabled_optimizers=list(UNFUSED_ON_CPU) if cpu_only else None)


class OrtEngine:
    def __init__(self, path: str, threads: int | None, providers: tuple[str, ...] = CPU):
        self.session = ort_session(path, threads, providers)
        self.inputs = tuple(i.name for i in self.session.get_inputs())

    def predict(self, batch_features: dict[str, np.ndarray]) -> np.ndarray:
        ids = batch_features["input_ids"]
        feed = {n: batch_features[n] if n in batch_features else np.zeros_like(ids) for n in self.inputs}
        return self.session.run(None, feed)[0]


def _load(spec: EngineSpec, threads: int | None, gpu: bool = False) -> OrtEngine:
    if gpu:
        _require_cuda()
    return OrtEngine(spec.path, threads, providers=CUDA if gpu else CPU)


def _backend(name: str, load=_load, devices=("cpu",), needs=(), **how) -> Backend:
    return Backend(name, family="onnxruntime", load=load, prepare=partial(_prepare, name=name, **how),
                   devices=devices, needs=needs)


BACKENDS = (
    _backend("ort-fp32"),
    _backend("ort-int8", int8=True),
    _backend("ort-int8-selective", int8=True, selective=True, needs=("significance",)),
    _backend("ort-cuda-fp16", load=partial(_load, gpu=True), devices=("cuda",), gpu=True),
)
