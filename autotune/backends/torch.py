"""The PyTorch engines: torch-fp32 (the out-of-the-box baseline) and torch-int8 (dynamic int8
Linear). Nothing to prepare: each worker loads the model dir itself."""
from __future__ import annotations

import warnings
from functools import partial

import numpy as np

from autotune.backends.registry import Backend, EngineSpec
from compress.models import load_classifier, uses_token_types


class TorchEngine:
    def __init__(self, model_dir: str, threads: int | None, int8: bool = False):
        import torch

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
        self.accepts_types = uses_token_types(model.config)  # RoBERTa's one-row table, MPNet's none

    def predict(self, batch_features: dict[str, np.ndarray]) -> np.ndarray:
        torch = self._torch
        feats = {k: torch.from_numpy(v) for k, v in batch_features.items()
                 if k != "token_type_ids" or self.accepts_types}
        with torch.inference_mode():
            return self.model(**feats).logits.float().numpy()


def _load(spec: EngineSpec, threads: int | None, int8: bool) -> TorchEngine:
    return TorchEngine(spec.path, threads, int8=int8)


BACKENDS = (
    Backend("torch-fp32", family="torch", load=partial(_load, int8=False)),
    Backend("torch-int8", family="torch", load=partial(_load, int8=True)),
)
