"""How a model is run: engine, padding, batch size, instances × threads.

Half of a trial's configuration (the other half, the Recipe, says which model); frozen and
JSON round-tripping so that a stored result says exactly how it was produced.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from autotune.backends import registry
from compress.errors import UserInputError

PADDINGS = ("dynamic", "fixed")


@dataclass(frozen=True)
class Runtime:
    engine: str = "ort-int8"
    padding: str = "dynamic"  # dynamic: length-sorted batches padded to their longest row; fixed: to max_length
    batch_size: int = 1
    instances: int = 1
    threads: int | None = 1  # intra-op threads per instance; None = no thread control (library defaults, no pinning)
    max_length: int | None = None  # None = the task's default
    allow_oversubscribe: bool = False

    def __post_init__(self) -> None:
        if not registry.is_known(self.engine):  # by name only: stored results stay readable without the plug-in
            raise UserInputError(f"unknown engine {self.engine!r}; known engines: {', '.join(registry.names())}")
        if self.padding not in PADDINGS:
            raise UserInputError(f"padding must be one of {PADDINGS}, got {self.padding!r}")
        for name in ("batch_size", "instances"):
            if int(getattr(self, name)) < 1:
                raise UserInputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise UserInputError(f"threads must be at least 1 (or None for no thread control), got {self.threads}")
        if self.max_length is not None and self.max_length < 2:
            raise UserInputError(f"max_length must be at least 2, got {self.max_length}")

    @property
    def thread_control(self) -> bool:
        return self.threads is not None

    @property
    def label(self) -> str:
        t = "default" if self.threads is None else self.threads
        return f"{self.engine} {self.padding} b{self.batch_size} {self.instances}x{t}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Runtime":
        known = {f.name for f in fields(cls)}
        extra = set(data) - known
        if extra:
            raise UserInputError(f"runtime: unknown field(s) {', '.join(sorted(extra))}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "Runtime":
        return cls.from_dict(json.loads(text))
