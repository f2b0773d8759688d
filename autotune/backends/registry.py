"""Engines by name: the built-in families, engines other packages register, and ``module:factory``.

A new engine is one ``Backend`` declared in a family module here, or in any installed package
under the entry-point group ``autotune.engines`` (entry-point name = engine name), so nothing
else (Runtime, SearchSpace, the sweep, the pool) changes. An entry point, or the attribute that
``package.module:attr`` names, is either a ``Backend`` or a factory ``factory(spec, threads) ->
Engine`` (the model dir is passed through untouched). Stdlib only: Runtime checks names here.
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Protocol

from compress.errors import UserInputError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

GROUP = "autotune.engines"
FAMILIES = ("autotune.backends.torch", "autotune.backends.onnxruntime")  # each holds BACKENDS


class Engine(Protocol):
    def predict(self, batch_features: dict[str, np.ndarray]) -> np.ndarray:
        """Logits [batch, num_labels] (float32) for one padded batch."""


@dataclass(frozen=True)
class EngineSpec:
    """What a worker needs to load an engine: picklable, no live objects."""

    name: str
    path: str  # model dir (torch) or .onnx file (ort)
    meta: dict = field(default_factory=dict)  # fused ops, quantisation params... (for reports)


def model_dir_only(model_dir: str, cache_dir: str, reduce_range: bool = False) -> EngineSpec:
    """The default prepare: nothing to build, each worker loads the model dir itself."""
    return EngineSpec("", str(model_dir))


@dataclass(frozen=True)
class Backend:
    """One engine. ``prepare(model_dir, cache_dir, reduce_range=...)`` runs once in the parent and
    builds what the engine runs (through the content cache, so trials share it); the registry
    stamps the engine's name on the spec. ``load(spec, threads)`` runs in every pool worker,
    ``threads=None`` meaning the library's own thread pool."""

    name: str
    load: Callable[[EngineSpec, int | None], Engine]
    prepare: Callable[..., EngineSpec] = model_dir_only
    family: str = "plugin"
    devices: tuple[str, ...] = ("cpu",)  # a "cuda" backend's prepare and load refuse a machine without it
    needs: tuple[str, ...] = ()  # what the model dir must hold, e.g. "significance" (significance.json)


@functools.cache
def _builtins() -> dict[str, Backend]:
    return {b.name: b for fam in FAMILIES for b in importlib.import_module(fam).BACKENDS}


@functools.cache
def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    found = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        if ep.name in _builtins():
            log.warning("entry point %s = %s ignored: %s is a built-in engine", ep.name, ep.value, ep.name)
        else:
            found.setdefault(ep.name, ep)
    return found


def names() -> tuple[str, ...]:
    """Every engine known by name (built-ins first); plug-ins are listed without importing them."""
    return tuple(_builtins()) + tuple(sorted(_entry_points()))


def is_known(name: str) -> bool:
    """Cheap (imports no plug-in): stored results naming an engine this machine lacks stay readable."""
    return ":" in name or name in _builtins() or name in _entry_points()


def refresh() -> None:
    """Forget what was discovered (after sys.path changes, e.g. in tests)."""
    for f in (_builtins, _entry_points, get):
        f.cache_clear()


@functools.cache
def get(name: str) -> Backend:
    """The backend for ``name``; an unknown or unimportable one is refused in one line."""
    if name in _builtins():
        return _builtins()[name]
    if name in _entry_points():
        ep = _entry_points()[name]
        return _as_backend(name, _import(name, ep.value, ep.load))
    if ":" in name:
        mod, _, attr = name.partition(":")
        return _as_backend(name, _import(name, mod, lambda: getattr(importlib.import_module(mod), attr)))
    raise UserInputError(f"unknown engine {name!r}; known: {', '.join(names())}")


def _import(name: str, what: str, load: Callable[[], object]) -> object:
    try:
        return load()
    except (ImportError, AttributeError) as exc:
        raise UserInputError(f"engine {name!r}: cannot load {what} ({type(exc).__name__}: {exc})") from None


def _as_backend(name: str, obj: object) -> Backend:
    if isinstance(obj, Backend):
        return obj if obj.name == name else replace(obj, name=name)
    if callable(obj):
        return Backend(name, load=obj)
    raise UserInputError(f"engine {name!r}: {obj!r} is neither a Backend nor a factory(spec, threads)")


def prepare(name: str, model_dir, cache_dir, reduce_range: bool = False) -> EngineSpec:
    """Build (or find in the cache) the artifact the engine runs; in the parent, once per trial."""
    spec = get(name).prepare(str(model_dir), cache_dir, reduce_range=reduce_range)
    return spec if spec.name == name else replace(spec, name=name)


def load(spec: EngineSpec, threads: int | None) -> Engine:
    """The engine, ready to predict (in a pool worker); ``threads=None`` leaves the library's default."""
    return get(spec.name).load(spec, threads)
