"""One interface, several inference engines (FastFormers section 5: the engine matters as
much as the model); a façade over ``autotune.backends`` so callers need not know the registry.

Two halves so that the pool's workers stay cheap: ``prepare`` runs once in the parent
(export / quantise through the content cache) and returns a picklable ``EngineSpec``;
``load`` runs in each worker and builds the engine with its thread count.

Engines: torch-fp32, torch-int8, ort-fp32, ort-int8, ort-int8-selective, ort-cuda-fp16
(autotune/backends/torch.py, onnxruntime.py), any engine an installed package registers under
the entry-point group ``autotune.engines``, and ``package.module:factory``, which plugs in an
outside engine without installing it: ``factory(spec, threads)`` (autotune/backends/registry.py).
"""
from __future__ import annotations

from autotune.backends.onnxruntime import SELECTIVE_FP32_FRACTION, OrtEngine, ort_session
from autotune.backends.registry import Backend, Engine, EngineSpec, load, names, prepare
from autotune.backends.torch import TorchEngine

__all__ = ["Backend", "Engine", "EngineSpec", "OrtEngine", "SELECTIVE_FP32_FRACTION", "TorchEngine", "load",
           "names", "ort_session", "prepare"]
