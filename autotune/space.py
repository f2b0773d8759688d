"""The search space: what a trial may choose, and how a choice becomes (Recipe, Runtime).

Compression choices and runtime choices are kept apart so that trials that differ only
in runtime settings map to the same recipe key and never rebuild a model.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from autotune.backends import registry
from compress.errors import UserInputError

# how a shallower student is made: evenly spaced teacher layers + KD (FastFormers), greedy layer
# pruning (Peer et al.), or a one-shot drop of the least significant layers and heads + KD (AxFormer)
ROUTES = ("subset", "greedy", "significance")


@dataclass(frozen=True)
class SearchSpace:
    student_layers: tuple[int, ...]  # the teacher's depth means "no distillation"
    heads_kept: tuple[int, ...]  # the full head count means "no head pruning"
    ffn_kept: tuple[int, ...]  # the full FFN size means "no FFN pruning"
    routes: tuple[str, ...] = ("subset",)
    engines: tuple[str, ...] = ("ort-int8",)
    batch_sizes: tuple[int, ...] = (1,)
    layouts: tuple[tuple[int, int], ...] = ()  # (instances, threads); empty = every factorisation
    padding: str = "dynamic"
    # the teacher's heads / FFN neurons that heads_kept / ffn_kept were written for, None = absolute counts.
    # A preset's pruning choices are shares of the MiniLM it was sized on (12 heads, FFN 1536): on an
    # MPNet-base teacher (FFN 3072) its "1536" would cut half the FFN, and no trial could keep it whole
    sized_for_heads: int | None = None
    sized_for_ffn: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SearchSpace":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserInputError(f"search space: unknown field {unknown[0]!r}; fields: {', '.join(sorted(known))}")
        tup = {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) for k, v in d.items() if isinstance(v, list)}
        return cls(**{**d, **tup})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def for_teacher(self, heads: int, ffn: int) -> "SearchSpace":
        """The pruning choices as counts for this teacher (the same shares of it); absolute ones unchanged."""
        return replace(self, heads_kept=_scaled(self.heads_kept, self.sized_for_heads, heads),
                       ffn_kept=_scaled(self.ffn_kept, self.sized_for_ffn, ffn), sized_for_heads=None,
                       sized_for_ffn=None)

    def scale_point(self, point: dict[str, Any], heads: int, ffn: int) -> dict[str, Any]:
        """A point written in this space's terms (a preset's anchor) in the terms of ``for_teacher``."""
        out = dict(point)
        for name, sized_for, actual in (("heads_kept", self.sized_for_heads, heads),
                                        ("ffn_kept", self.sized_for_ffn, ffn)):
            if name in out:
                out[name] = _scaled((out[name],), sized_for, actual)[0]
        return out

    def with_layouts(self, physical_cores: int) -> "SearchSpace":
        """Fill in every instances × threads factorisation the physical cores allow."""
        if self.layouts:
            return self
        return replace(self, layouts=factorisations(physical_cores))

    def validate(self, teacher_layers: int, teacher_heads: int, teacher_ffn: int, physical_cores: int,
                 oversubscribe: bool = False) -> None:
        """Refuse an empty or impossible space with one line, before any work starts."""
        for name in ("student_layers", "heads_kept", "ffn_kept", "routes", "engines", "batch_sizes", "layouts"):
            if not getattr(self, name):
                raise UserInputError(f"search space: {name} is empty; nothing to search")
        checks = [
            ("student_layers", self.student_layers, 1, teacher_layers),
            ("heads_kept", self.heads_kept, 1, teacher_heads),
            ("ffn_kept", self.ffn_kept, 1, teacher_ffn),
            ("batch_sizes", self.batch_sizes, 1, 1 << 16),
        ]
        for name, values, lo, hi in checks:
            bad = [v for v in values if not lo <= v <= hi]
            if bad:
                raise UserInputError(f"search space: {name} value {bad[0]} is outside {lo}..{hi} for this teacher")
        bad_routes = [r for r in self.routes if r not in ROUTES]
        if bad_routes:
            raise UserInputError(f"search space: unknown route {bad_routes[0]!r}; use {', '.join(ROUTES)}")
        for e in self.engines:  # a plug-in is imported here, so a typo fails before any model is built
            try:
                registry.get(e)
            except UserInputError as exc:
                raise UserInputError(f"search space: {exc}") from None
        for n, t in self.layouts:
            if n < 1 or t < 1:
                raise UserInputError(f"search space: layout {n}x{t} needs at least one instance and one thread")
            if n * t > physical_cores and not oversubscribe:
                raise UserInputError(
                    f"search space: {n} instances x {t} threads needs {n * t} physical cores; this machine has "
                    f"{physical_cores} (pass --oversubscribe to allow it)"
                )

    def size(self) -> tuple[int, int]:
        """(distinct models, distinct trials) the space holds; a guide for the budget."""
        models = len(self.student_layers) * len(self.routes) * len(self.heads_kept) * len(self.ffn_kept)
        return models, models * len(self.engines) * len(self.batch_sizes) * len(self.layouts)


def _scaled(values: tuple[int, ...], sized_for: int | None, actual: int) -> tuple[int, ...]:
    if sized_for is None or sized_for == actual:
        return values
    return tuple(dict.fromkeys(max(1, round(v * actual / sized_for)) for v in values))


def factorisations(cores: int) -> tuple[tuple[int, int], ...]:
    """Every (instances, threads) with instances × threads ≤ cores and a power-of-two or exact fit."""
    out = []
    for n in range(1, cores + 1):
        for t in range(1, cores // n + 1):
            if n * t == cores or (n * t) & (n * t - 1) == 0:
                out.append((n, t))
    return tuple(out)


def layout_names(layouts: tuple[tuple[int, int], ...]) -> tuple[str, ...]:
    """The layout parameter's values, "NxT" (instances x threads), as trials store them."""
    return tuple(f"{n}x{t}" for n, t in layouts)


def most_cores(layouts: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """The layouts that use the most cores (of ``factorisations(cores)``: every instances × threads = cores)."""
    most = max((n * t for n, t in layouts), default=0)
    return tuple((n, t) for n, t in layouts if n * t == most)


def whole_machine(layouts: tuple[tuple[int, int], ...]) -> tuple[str, ...]:
    """The layouts that use the most cores: the only ones a throughput search needs to try twice."""
    return layout_names(most_cores(layouts))


def anchor_params(anchor: dict[str, Any], space: "SearchSpace", teacher_layers: int,
                  physical_cores: int) -> dict[str, Any] | None:
    """An anchor as Optuna trial params, or None when the space cannot hold it."""
    params = dict(anchor)
    if "layout" not in params:
        params["layout"] = f"{physical_cores}x1"
    if params.get("student_layers", teacher_layers) >= teacher_layers:
        params.pop("route", None)  # suggest() asks for a route only for shallower students
    allowed = {"student_layers": space.student_layers, "route": space.routes, "heads_kept": space.heads_kept,
               "ffn_kept": space.ffn_kept, "engine": space.engines, "batch_size": space.batch_sizes,
               "layout": layout_names(space.layouts)}
    if any(k not in allowed or v not in allowed[k] for k, v in params.items()):
        return None
    return params


@dataclass(frozen=True)
class Choice:
    """One trial's choices, before they are turned into a Recipe and a Runtime."""

    student_layers: int
    route: str
    heads_kept: int
    ffn_kept: int
    engine: str
    batch_size: int
    instances: int
    threads: int
    extra: dict[str, Any] = field(default_factory=dict)


def suggest(trial, space: SearchSpace, teacher_layers: int, teacher_heads: int, teacher_ffn: int) -> Choice:
    """Ask an Optuna trial (anything with ``suggest_categorical``) for one point of the space."""
    layers = trial.suggest_categorical("student_layers", list(space.student_layers))
    route = trial.suggest_categorical("route", list(space.routes)) if layers < teacher_layers else "none"
    heads = trial.suggest_categorical("heads_kept", list(space.heads_kept))
    ffn = trial.suggest_categorical("ffn_kept", list(space.ffn_kept))
    engine = trial.suggest_categorical("engine", list(space.engines))
    batch = trial.suggest_categorical("batch_size", list(space.batch_sizes))
    layout = trial.suggest_categorical("layout", list(layout_names(space.layouts)))
    n, t = (int(x) for x in layout.split("x"))
    return Choice(layers, route, heads, ffn, engine, batch, n, t)
