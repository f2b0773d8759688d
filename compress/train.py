"""The one training loop: fine-tuning and distillation differ only in their loss.

Seeded, length-bucketed dynamic-length batches, AdamW with linear warmup/decay, evaluation
on dev with the task's own scorer, early stopping on its primary metric, best weights kept.
A caller may watch each evaluation (``on_eval``) and end training by raising from it; with a
``checkpoint`` path the state at that evaluation is saved first, and a later call with the same
path and schedule resumes there: the same batches, RNG and optimizer, so the same weights.
"""
from __future__ import annotations

import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from compress.batching import Batch, Encoded, make_batches, restore_order
from compress.heap import kept_heap
from compress.provenance import cpu_info
from compress.tasks import Example, TaskSpec, score

log = logging.getLogger(__name__)

STEPS_RUN = 0  # optimizer steps taken in this process (tests count training with it)

# loss(model, inputs, rows): ``rows`` are the batch's positions in the training set, so a loss
# can look up labels or precomputed teacher logits.
LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor], np.ndarray], torch.Tensor]
# on_eval(step, total, history): after each evaluation; ``history`` holds every evaluation so far
# ({"step", metrics...}, the start first). What it raises ends training (a checkpoint saved first).
EvalHook = Callable[[int, int, Sequence[dict]], None]


@dataclass(frozen=True)
class TrainConfig:
    epochs: float
    lr: float
    batch_size: int = 32
    seed: int = 0
    warmup: float = 0.1  # fraction of steps
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    evals_per_epoch: int = 2
    eval_every: int | None = None  # steps between evaluations; None = from evals_per_epoch
    patience: int = 3  # evaluations without improvement before stopping
    # patience counts only once the best score is above this (the trivial baseline's on the evaluation
    # rows): a model still answering the majority class has not converged, it has not started (BoolQ on
    # MPNet sat at 'True' for steps 7-49 and was stopped at 49 of 150). None: always counts.
    patience_above: float | None = None
    # patience does not stop training before this optimizer step: a schedule stretched to a minimum
    # number of steps on a small set (CB: 400 steps, 57 epochs of 200 rows) is not ended at step 12
    min_steps: int = 0
    max_steps: int | None = None
    eval_batch_size: int = 128
    progress: bool = True
    # False: keep the last weights (when dev cannot judge, e.g. imitation only); the whole schedule then
    # runs, as no early stop can pick what is kept
    keep_best: bool = True
    # False: the untrained start is never the kept checkpoint. After a light pruning cut the start can
    # score as well as the trained weights on a few hundred dev rows by chance, and then no training is kept.
    keep_start: bool = True
    bf16: bool | None = None  # autocast matmuls to bfloat16; None = where the CPU has native bf16
    eval_name: str = "dev"  # what the evaluation rows are, for the log
    # with a ``checkpoint`` path, also save the state at an evaluation this many seconds after the last
    # save, so that a kill -9 loses at most this much training (long fits); None: only when stopped
    checkpoint_every_s: float | None = None


def cpu_has_bf16() -> bool:
    """AMX / AVX512-BF16 make bf16 matmuls several times faster than fp32 on CPU."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_info()[1])


@dataclass(frozen=True)
class TrainResult:
    metrics: dict[str, float]  # dev metrics of the kept weights
    steps: int
    best_step: int
    seconds: float
    history: tuple[dict, ...] = field(default=())
    total: int = 0  # the planned steps (early stopping may end sooner)


def set_threads() -> int:
    """Use every core this process may run on."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_tensors(batch: Batch) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in batch.features.items()}


def subset(enc: Encoded, idx: Sequence[int]) -> Encoded:
    return Encoded({k: [v[i] for i in idx] for k, v in enc.features.items()}, enc.pad_id, enc.max_length)


def shuffled_batches(enc: Encoded, batch_size: int, rng: np.random.Generator, bucket: int = 50) -> list[Batch]:
    """Shuffle, sort within buckets of ``bucket`` batches by length, shuffle batch order:
    random batches with little padding."""
    order = rng.permutation(len(enc))
    out: list[Batch] = []
    chunk = batch_size * bucket
    for start in range(0, len(order), chunk):
        idx = order[start : start + chunk]
        for b in make_batches(subset(enc, idx), batch_size, "dynamic"):
            out.append(Batch(idx[b.indices], b.features))
    return [out[i] for i in rng.permutation(len(out))]


@torch.no_grad()
def predict(model: torch.nn.Module, enc: Encoded, batch_size: int = 128, bf16: bool = False,
            desc: str | None = None) -> np.ndarray:
    """Row-ordered logits. ``bf16``: matmuls autocast to bfloat16, for soft targets only (scores
    are judged in fp32); ``desc``: a progress bar, for passes long enough to want one."""
    was_training = model.training
    model.eval()
    batches = make_batches(enc, batch_size, "dynamic")
    outs = []
    for b in tqdm(batches, desc=desc, disable=desc is None, leave=False,
                  mininterval=0.1 if sys.stderr.isatty() else 30.0):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            outs.append(model(**to_tensors(b)).logits.float().numpy())
    model.train(was_training)
    return restore_order(batches, outs)


def evaluate(model: torch.nn.Module, spec: TaskSpec, examples: Sequence[Example], enc: Encoded,
             batch_size: int = 128) -> dict[str, float]:
    return score(spec, examples, predict(model, enc, batch_size))


def ce_loss(labels: np.ndarray) -> LossFn:
    """Plain fine-tuning: cross-entropy against the gold labels."""
    gold = torch.as_tensor(np.asarray(labels), dtype=torch.long)

    def loss(model: torch.nn.Module, inputs: dict[str, torch.Tensor], rows: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(model(**inputs).logits, gold[rows])

    return loss


def train(model: torch.nn.Module, spec: TaskSpec, train_enc: Encoded, loss_fn: LossFn,
          dev_examples: Sequence[Example], dev_enc: Encoded, cfg: TrainConfig, desc: str = "train",
          on_eval: EvalHook | None = None, checkpoint: Path | None = None) -> TrainResult:
    """Train ``model`` in place; on return it holds the best dev weights seen. ``on_eval`` and
    ``checkpoint``: see the module docstring. Freed memory stays in the heap meanwhile (compress/heap.py)."""
    with kept_heap():
        return _train(model, spec, train_enc, loss_fn, dev_examples, dev_enc, cfg, desc, on_eval, checkpoint)


def _train(model, spec, train_enc, loss_fn, dev_examples, dev_enc, cfg, desc, on_eval, checkpoint) -> TrainResult:
    global STEPS_RUN
    set_threads()
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    per_epoch = -(-len(train_enc) // cfg.batch_size)
    total = max(1, int(round(cfg.epochs * per_epoch)))
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    eval_every = cfg.eval_every or max(1, per_epoch // max(1, cfg.evals_per_epoch))

    freeze_word_embeddings(model)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not _no_decay(n)]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and _no_decay(n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, foreach=True)
    warm = int(cfg.warmup * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))

    metric = spec.primary_metric
    bf16 = cpu_has_bf16() if cfg.bf16 is None else cfg.bf16
    start = time.perf_counter()
    fingerprint = {"total": total, "per_epoch": per_epoch, "config": {
        k: v for k, v in vars(cfg).items() if k not in ("progress", "checkpoint_every_s")}}  # neither moves a weight
    resumed = load_checkpoint(checkpoint, fingerprint, desc)
    if resumed is None:
        best = evaluate(model, spec, dev_examples, dev_enc, cfg.eval_batch_size)
        best_state, best_step, stale = _snapshot(model), 0, 0
        history = [{"step": 0, **best}]
        log.info("%s: %d steps (%d per epoch, bf16 %s), start %s %s=%.4f", desc, total, per_epoch, bf16,
                 cfg.eval_name, metric, best[metric])
        if not cfg.keep_start:
            best = {k: -math.inf for k in best}  # the first evaluation after training replaces it
        step, stop, skip = 0, False, 0
    else:
        model.load_state_dict(resumed["model"])
        opt.load_state_dict(resumed["optimizer"])
        sched.load_state_dict(resumed["scheduler"])
        best, best_state, best_step, stale = resumed["best"], resumed["best_state"], resumed["best_step"], resumed["stale"]
        history, step, stop, skip = resumed["history"], resumed["step"], resumed["stop"], resumed["position"]
        rng.bit_generator.state = resumed["epoch_rng"]
        torch.set_rng_state(resumed["torch_rng"])
        log.info("%s: resumed at step %d/%d from %s", desc, step, total, checkpoint)

    def state() -> dict:  # what a resumption needs, read at the evaluation it is saved at
        return {"fingerprint": fingerprint, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "best": best, "best_state": best_state, "best_step": best_step,
                "stale": stale, "history": history, "step": step, "stop": stop, "position": position + 1,
                "epoch_rng": epoch_rng, "torch_rng": torch.get_rng_state()}

    saved = time.perf_counter()
    bar = tqdm(total=total, initial=step, desc=desc, disable=not cfg.progress, leave=False,
               mininterval=0.1 if sys.stderr.isatty() else 30.0)
    model.train()
    while step < total and not stop:
        epoch_rng = rng.bit_generator.state  # this epoch's batches are drawn from here (a resume redraws them)
        batches = shuffled_batches(train_enc, cfg.batch_size, rng)
        for position in range(skip, len(batches)):
            batch = batches[position]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = loss_fn(model, to_tensors(batch), batch.indices).float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            sched.step()
            step += 1
            STEPS_RUN += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            if step % eval_every == 0 or step == total:
                metrics = evaluate(model, spec, dev_examples, dev_enc, cfg.eval_batch_size)
                history.append({"step": step, "loss": float(loss.item()), **metrics})
                log.info("%s: step %d/%d loss %.4f %s %s=%.4f", desc, step, total, loss.item(), cfg.eval_name, metric,
                         metrics[metric])
                if metrics[metric] > best[metric]:
                    best, best_state, best_step, stale = metrics, _snapshot(model), step, 0
                else:
                    stale += 1
                    if cfg.keep_best and stale >= cfg.patience and cfg.min_steps <= step < total:
                        if cfg.patience_above is None or best[metric] > cfg.patience_above:
                            log.info("%s: early stop at step %d (best step %d)", desc, step, best_step)
                            stop = True
                        elif stale == cfg.patience:
                            log.info("%s: no early stop at step %d: best %s %.4f is not above the trivial %.4f",
                                     desc, step, metric, best[metric], cfg.patience_above)
                if (checkpoint is not None and cfg.checkpoint_every_s is not None and not stop and step < total
                        and time.perf_counter() - saved >= cfg.checkpoint_every_s):
                    save_checkpoint(checkpoint, state())
                    saved = time.perf_counter()
                if on_eval is not None:
                    try:
                        on_eval(step, total, tuple(history))
                    except BaseException:
                        if checkpoint is not None:
                            save_checkpoint(checkpoint, state())
                            log.info("%s: stopped at step %d/%d; its state is kept in %s", desc, step, total,
                                     checkpoint)
                        bar.close()
                        raise
                if stop:
                    break
            if step >= total:
                break
        skip = 0
    bar.close()
    if cfg.keep_best:
        model.load_state_dict(best_state)
    else:
        best, best_step = evaluate(model, spec, dev_examples, dev_enc, cfg.eval_batch_size), step
    model.eval()
    seconds = time.perf_counter() - start
    log.info("%s: kept step %d, %s %s=%.4f (%.0f s)", desc, best_step, cfg.eval_name, metric, best[metric], seconds)
    return TrainResult(best, step, best_step, seconds, tuple(history), total)


def freeze_word_embeddings(model: torch.nn.Module) -> None:
    """Policy: the vocabulary matrix (half of a MiniLM's weights) stays fixed. Task fine-tuning
    barely moves it, and on CPU its gradient and AdamW update cost as much as the encoder's."""
    emb = model.get_input_embeddings()
    if emb is not None:
        emb.weight.requires_grad_(False)


def _no_decay(name: str) -> bool:
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def save_checkpoint(path: Path, state: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a kill while saving leaves the previous checkpoint, never half of one


def load_checkpoint(path: Path | None, fingerprint: dict, desc: str) -> dict | None:
    """The saved state if it was saved by this same schedule; another schedule starts afresh."""
    if path is None or not Path(path).is_file():
        return None
    state = torch.load(path, weights_only=False)
    if state.get("fingerprint") != fingerprint:
        log.warning("%s: the checkpoint %s is from another schedule; training from the start", desc, path)
        return None
    return state


__all__ = ["TrainConfig", "TrainResult", "EvalHook", "train", "evaluate", "predict", "ce_loss", "shuffled_batches",
           "set_threads", "seed_everything", "to_tensors", "subset", "save_checkpoint", "load_checkpoint"]
