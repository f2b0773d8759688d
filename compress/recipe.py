"""Recipe: what model to build, as one frozen, JSON round-tripping value.

A recipe names every choice that changes the weights (teacher fine-tune, student depth and
route, knowledge distillation, structured pruning, activation). Its content hash is stable
across processes, so caches and studies can key on it instead of on trial numbers.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from compress.errors import UserInputError
from compress.models import PACKAGED

Route = Literal["subset", "greedy"]
Activation = Literal["gelu", "relu"]
Approx = Literal["none", "significance", "significance-drop"]
APPROX = ("none", "significance", "significance-drop")
SelectOn = Literal["dev", "train"]
SELECT_ON = ("dev", "train")
RedistillKeep = Literal["best", "last", "auto"]
REDISTILL_KEEP = ("best", "last", "auto")
_APPROX_FIELDS = ("approx", "approx_layers", "approx_heads", "approx_epochs")
# left out of the JSON at these values, so recipes written before the field keep their keys
_NEW_FIELDS = {"redistill_hidden_weight": None, "prune_rounds": 1, "select_on": "dev", "teacher_min_steps": 0,
               "teacher_restarts": 1, "kd_min_steps": 0, "kd_transfer_examples": None, "kd_augment": 0,
               "kd_logits_bf16": False, "redistill_keep": "best"}


_TYPE_WORDS = {"float": "a number", "int": "a whole number", "bool": "true or false", "str": "a string",
               "int | None": "a whole number or null", "float | None": "a number or null",
               "str | None": "a string or null"}


def _of_type(value: Any, kind: str) -> bool:
    """A JSON value against a field's annotation (a string here): a recipe from a file must fail in
    one line, not with a TypeError from the first comparison that meets a string."""
    if value is None:
        return "None" in kind
    if isinstance(value, bool):
        return "bool" in kind
    if "float" in kind:
        return isinstance(value, (int, float))
    if "int" in kind:
        return isinstance(value, int)
    if "bool" in kind:
        return False
    return isinstance(value, str)  # str and the Literal choices, which check() names


@dataclass(frozen=True)
class Recipe:
    task: str
    # teacher: a model source fine-tuned on the task (epochs 0 = use it as it is)
    teacher: str = PACKAGED
    teacher_epochs: float = 3.0
    teacher_lr: float = 5e-5
    teacher_batch_size: int = 32
    # a schedule sized by the data (compress/teacher_fit.py): at least this many optimizer steps (epochs
    # grow for small sets), and up to this many seeds on small sets, the best kept on rows held aside
    # from train (never dev); 0 and 1 = the plain fine-tune of teacher_epochs, selected on dev
    teacher_min_steps: int = 0
    teacher_restarts: int = 1
    max_train_examples: int | None = None  # fine-tune/distil on a seeded subset (quick sweeps)
    seed: int = 0
    max_length: int | None = None  # None = the task's own
    # which rows pick every training step's kept checkpoint (early stopping): "dev", or "train" = a
    # seeded slice of the training rows held aside from training, so that dev (a sweep's search half)
    # judges the model without also having chosen its weights
    select_on: SelectOn = "dev"
    # student: None = the teacher itself
    student_layers: int | None = None
    route: Route = "subset"  # subset of teacher layers | greedy layer pruning
    student_init: str | None = None  # a model of the teacher's family to start the student from
    layerdrop_steps: int = 100  # greedy route: short fine-tune per candidate (Peer et al. 2021)
    # knowledge distillation (TinyBERT-style, task specific)
    kd_temperature: float = 1.0
    kd_alpha: float = 1.0  # weight of the soft loss; 1 - alpha goes to hard-label CE
    kd_hidden_weight: float = 0.0
    kd_attention_weight: float = 0.0
    kd_epochs: float = 3.0
    kd_lr: float = 1e-4
    kd_batch_size: int = 32
    # distillation steps at least (epochs grow on small sets; compress/pipeline.py _Context.epochs)
    kd_min_steps: int = 0
    # a transfer set: distil on this many rows of the whole train split (the teacher's own rows first,
    # the rest labelled by the teacher), more than max_train_examples fine-tuned the teacher on;
    # None = the teacher's rows
    kd_transfer_examples: int | None = None
    # where the train split has fewer rows than kd_transfer_examples: fill the gap with up to this many
    # word-replaced copies of each teacher row (compress/augment.py, TinyBERT-style; TinyBERT used 20);
    # nothing to fill without a transfer set
    kd_augment: int = 0
    # the teacher's soft targets computed with bf16 autocast (~1.8x faster on a CPU with AMX: MPNet on
    # RTE, benchmarks/teacher_logits_precision.py); a different student, as a different seed would be
    kd_logits_bf16: bool = False
    # structured pruning (FastFormers section 3): kept per layer, equal in every layer
    heads_kept: int | None = None
    ffn_kept: int | None = None
    redistill: bool = True
    redistill_epochs: float = 3.0
    # re-distillation also matches each layer's hidden states to the unpruned parent's (same depth,
    # same width: CoFi-style layer-wise distillation); None = kd_hidden_weight
    redistill_hidden_weight: float | None = None
    # which weights a re-distillation keeps: "best" on the selection rows (early stopping), or "last",
    # the end of its decayed schedule, all of it run. A cut imitates its unpruned parent; on SST-2 the
    # 4-layer cuts kept their first evaluation (peak learning rate) on the strength of 436 search rows
    # and lost 2-3 points on the held-out ones (benchmarks/results/sst2-runs-log.md, v6). "auto": "last"
    # unless kd_min_steps stretched the schedule (a small set: its end overfits, CB lost 4 of 28 rows)
    redistill_keep: RedistillKeep = "best"
    # gradual pruning: reach heads_kept / ffn_kept in this many geometric cuts, each re-distilled
    prune_rounds: int = 1
    activation: Activation = "gelu"
    # AxFormer-style approximation, after everything above: "significance" scores layers/heads/FFN
    # groups (significance.json beside the model, for ort-int8-selective); "significance-drop" also
    # drops the least significant ones in one shot, keeping approx_layers layers / approx_heads heads per layer,
    # then (approx_epochs > 0) re-distils the dropped model from the undropped one
    approx: Approx = "none"
    approx_layers: int | None = None
    approx_heads: int | None = None
    approx_epochs: float = 0.0

    def __post_init__(self) -> None:
        # 1 and 1.0 epochs are one schedule, but json.dumps writes "1" and "1.0": as given, the two would
        # hash to different cache keys and rebuild the same model (the README example's teacher did)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", "float | None") and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))

    # ------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.approx == "none" and self.approx_layers is None and self.approx_heads is None and not self.approx_epochs:
            for name in _APPROX_FIELDS:  # recipes without approximation keep their pre-approx keys
                del d[name]
        for name, default in _NEW_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Recipe":
        if not isinstance(data, dict):
            raise UserInputError(f"recipe: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserInputError(f"recipe: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "task" not in data:
            raise UserInputError("recipe: field 'task' is required")
        for f in fields(cls):
            if f.name in data and not _of_type(data[f.name], str(f.type)):
                raise UserInputError(f"recipe: {f.name} {json.dumps(data[f.name])}: expected {_TYPE_WORDS.get(str(f.type), f.type)}")
        recipe = cls(**data)
        recipe.check()
        return recipe

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserInputError(f"recipe: not valid JSON ({exc})") from None
        return cls.from_dict(data)

    def key(self) -> str:
        """Content hash: equal recipes give equal keys in any process."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    # ------------------------------------------------------------ validation

    @property
    def fits_teacher(self) -> bool:
        """The data-sized teacher schedule (compress/teacher_fit.py) rather than the plain fine-tune."""
        return self.teacher_epochs > 0 and (self.teacher_min_steps > 0 or self.teacher_restarts > 1)

    @property
    def has_student(self) -> bool:
        return self.student_layers is not None or self.student_init is not None or self.activation != "gelu"

    @property
    def prunes(self) -> bool:
        return self.heads_kept is not None or self.ffn_kept is not None

    def prune_schedule(self, heads: int, ffn: int) -> list[tuple[int | None, int | None]]:
        """(heads kept, FFN neurons kept) after each pruning round, from a model with ``heads`` and
        ``ffn``: geometric steps, so each round removes the same fraction, the last one exact."""
        def steps(start: int, target: int | None) -> list[int | None]:
            if target is None:
                return [None] * self.prune_rounds
            return [max(target, round(start * (target / start) ** (i / self.prune_rounds)))
                    for i in range(1, self.prune_rounds)] + [target]

        return list(zip(steps(heads, self.heads_kept), steps(ffn, self.ffn_kept)))

    def check(self) -> None:
        """Checks that need no model: value ranges and choices."""
        if self.route not in ("subset", "greedy"):
            raise UserInputError(f"recipe: route must be 'subset' or 'greedy', not {self.route!r}")
        if self.activation not in ("gelu", "relu"):
            raise UserInputError(f"recipe: activation must be 'gelu' or 'relu', not {self.activation!r}")
        for name in ("teacher_epochs", "kd_epochs", "redistill_epochs", "kd_alpha", "kd_hidden_weight",
                     "kd_attention_weight", "layerdrop_steps", "approx_epochs"):
            if getattr(self, name) < 0:
                raise UserInputError(f"recipe: {name} must not be negative")
        if self.redistill_hidden_weight is not None and self.redistill_hidden_weight < 0:
            raise UserInputError("recipe: redistill_hidden_weight must not be negative")
        for name in ("teacher_lr", "kd_lr", "kd_temperature", "teacher_batch_size", "kd_batch_size"):
            if not getattr(self, name) > 0:
                raise UserInputError(f"recipe: {name} must be positive")
        if self.kd_alpha > 1:
            raise UserInputError("recipe: kd_alpha must be within [0, 1]")
        if not isinstance(self.prune_rounds, int) or self.prune_rounds < 1:
            raise UserInputError(f"recipe: prune_rounds must be a positive integer, not {self.prune_rounds!r}")
        if not isinstance(self.teacher_min_steps, int) or self.teacher_min_steps < 0:
            raise UserInputError(f"recipe: teacher_min_steps must be a non-negative integer, not {self.teacher_min_steps!r}")
        if not isinstance(self.kd_min_steps, int) or self.kd_min_steps < 0:
            raise UserInputError(f"recipe: kd_min_steps must be a non-negative integer, not {self.kd_min_steps!r}")
        if not isinstance(self.kd_augment, int) or self.kd_augment < 0:
            raise UserInputError(f"recipe: kd_augment must be a non-negative integer, not {self.kd_augment!r}")
        if not isinstance(self.teacher_restarts, int) or self.teacher_restarts < 1:
            raise UserInputError(f"recipe: teacher_restarts must be a positive integer, not {self.teacher_restarts!r}")
        for name in ("student_layers", "heads_kept", "ffn_kept", "max_train_examples", "max_length",
                     "kd_transfer_examples"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UserInputError(f"recipe: {name} must be a positive integer or null, not {value!r}")
        if self.select_on not in SELECT_ON:
            raise UserInputError(f"recipe: select_on must be one of {', '.join(SELECT_ON)}, not {self.select_on!r}")
        if self.redistill_keep not in REDISTILL_KEEP:
            raise UserInputError(f"recipe: redistill_keep must be one of {', '.join(REDISTILL_KEEP)}, "
                                 f"not {self.redistill_keep!r}")
        if self.approx not in APPROX:
            raise UserInputError(f"recipe: approx must be one of {', '.join(APPROX)}, not {self.approx!r}")
        for name in ("approx_layers", "approx_heads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UserInputError(f"recipe: {name} must be a positive integer or null, not {value!r}")
            if value is not None and self.approx != "significance-drop":
                raise UserInputError(f"recipe: {name} needs approx 'significance-drop', not {self.approx!r}")
        if self.approx_epochs and self.approx != "significance-drop":
            raise UserInputError("recipe: approx_epochs re-distils a dropped model; it needs approx 'significance-drop'")
        if self.approx == "significance-drop" and self.approx_layers is None and self.approx_heads is None:
            raise UserInputError("recipe: approx 'significance-drop' needs approx_layers and/or approx_heads")
        if self.approx_heads is not None and self.heads_kept is not None:
            raise UserInputError("recipe: approx_heads drops heads from a head-pruned model; use heads_kept or approx_heads")
        if self.route == "greedy" and self.student_init is not None:
            raise UserInputError("recipe: route 'greedy' prunes the teacher's layers; it takes no student_init")

    def validate(self, teacher_config, student_config=None) -> None:
        """Refuse a recipe that cannot be built on this teacher, before any training."""
        self.check()
        c = teacher_config
        if student_config is not None and student_config.model_type != c.model_type:
            raise UserInputError(
                f"recipe: student_init is a {student_config.model_type} model but the teacher is {c.model_type}")
        base = student_config or c
        if self.student_layers is not None and self.student_layers > c.num_hidden_layers:
            raise UserInputError(
                f"recipe: student_layers={self.student_layers} is deeper than the teacher ({c.num_hidden_layers} layers)")
        if student_config is not None and self.student_layers is not None and self.student_layers > base.num_hidden_layers:
            raise UserInputError(
                f"recipe: student_layers={self.student_layers} but student_init has {base.num_hidden_layers} layers")
        if self.heads_kept is not None and self.heads_kept > base.num_attention_heads:
            raise UserInputError(
                f"recipe: heads_kept={self.heads_kept} but the model has {base.num_attention_heads} heads per layer")
        if self.ffn_kept is not None and self.ffn_kept > base.intermediate_size:
            raise UserInputError(
                f"recipe: ffn_kept={self.ffn_kept} exceeds the FFN intermediate size {base.intermediate_size}")
        depth = self.student_layers or base.num_hidden_layers
        if self.approx_layers is not None and self.approx_layers > depth:
            raise UserInputError(f"recipe: approx_layers={self.approx_layers} but the model has {depth} layers")
        if self.approx_heads is not None and self.approx_heads > base.num_attention_heads:
            raise UserInputError(
                f"recipe: approx_heads={self.approx_heads} but the model has {base.num_attention_heads} heads per layer")
        if (self.prunes or self.approx_heads) and any(getattr(base, "pruned_heads", {}) or {}):
            raise UserInputError("recipe: the model is already head-pruned; prune an unpruned model")
        if (self.kd_hidden_weight or self.kd_attention_weight) and student_config is not None:
            if student_config.hidden_size != c.hidden_size:
                raise UserInputError(
                    f"recipe: hidden/attention KD needs equal hidden sizes (student {student_config.hidden_size}, "
                    f"teacher {c.hidden_size})")
