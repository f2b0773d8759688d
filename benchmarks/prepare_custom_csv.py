"""Write a real, non-GLUE sentiment task as plain CSV plus a custom-task spec.json.

Data: the human-rated sentence sets of the VADER paper, shipped inside the source
distribution of the PyPI package ``vaderSentiment`` 3.3.2 (sdist only, not the wheel) as
``additional_resources/hutto_ICWSM_2014.tar.gz``. Licence: MIT (the package's LICENSE.txt,
Copyright (c) 2016 C.J. Hutto). Cite: Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious
Rule-based Model for Sentiment Analysis of Social Media Text. ICWSM-14.

Each text was rated on a -4..+4 scale by at least 20 screened raters; the file gives the mean.
Used here (short, one sentence or tweet each):
  tweets_GroundTruth.txt                4,200 tweets
  amazonReviewSnippets_GroundTruth.txt  3,708 sentences of product reviews
  nytEditorialSnippets_GroundTruth.txt  5,190 sentences of NYT opinion pieces
Left out: movieReviewSnippets (Pang & Lee's Rotten Tomatoes sentences, the same source as SST-2).

Labels: mean > +margin -> "positive", mean < -margin -> "negative", the rest (weak or neutral,
default margin 0.5) is dropped; exact duplicate texts are kept once (dropped altogether when
their labels disagree); HTML entities (&amp;) are unescaped. The source has no split: dev is a
seeded split stratified by (source file, label), --dev-size rows (default 1,000), train is the
rest (about 8,100 rows with the defaults; --max-train caps it by seeded sampling, default off).

    python3 benchmarks/prepare_custom_csv.py --out /work/custom-data/vader-sentiment

The sdist is fetched with ``python3 -m pip download --no-deps --no-binary :all:`` into a
temporary folder (nothing is installed); --sdist takes an already downloaded tarball instead.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import html
import io
import json
import logging
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

log = logging.getLogger("prepare_custom_csv")

PACKAGE, VERSION = "vaderSentiment", "3.3.2"
INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
INNER_SHA256 = "d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa"
SOURCES = ("tweets", "amazonReviewSnippets", "nytEditorialSnippets")
LABELS = ("negative", "positive")


def fetch_sdist(dest: Path) -> Path:
    """Download the package's sdist (not the wheel, which lacks the data) into dest."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), f"{PACKAGE}=={VERSION}"]
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pip = shutil.which("pip3") or shutil.which("pip")
        if not pip:
            raise SystemExit("no pip found: run with a python that has pip, or pass --sdist")
        cmd[:3] = [pip]
    log.info("fetching %s==%s sdist: %s", PACKAGE, VERSION, " ".join(cmd))
    subprocess.run(cmd, check=True)
    found = sorted(dest.glob("*.tar.gz"))
    if not found:
        raise SystemExit(f"pip download left no sdist in {dest}")
    return found[0]


def read_sources(sdist: Path) -> dict[str, list[tuple[str, float]]]:
    """(text, mean rating) per source file, read straight from the nested tarballs."""
    with tarfile.open(sdist) as outer:
        inner_bytes = outer.extractfile(INNER).read()
    digest = hashlib.sha256(inner_bytes).hexdigest()
    if digest != INNER_SHA256:
        log.warning("%s has sha256 %s, expected %s: counts may differ", INNER, digest, INNER_SHA256)
    out: dict[str, list[tuple[str, float]]] = {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for src in SOURCES:
            raw = inner.extractfile(f"hutto_ICWSM_2014/{src}_GroundTruth.txt").read().decode("utf-8")
            rows = []
            for line in raw.splitlines():
                if not line.strip():
                    continue
                _id, score, text = line.split("\t", 2)
                rows.append((" ".join(html.unescape(text).split()), float(score)))
            out[src] = rows
            log.info("%s: %d rated texts", src, len(rows))
    return out


def label_rows(sources: dict[str, list[tuple[str, float]]], margin: float) -> list[tuple[str, str, str]]:
    """(source, text, label) with weak ratings dropped and duplicate texts resolved."""
    by_text: dict[str, list[tuple[str, str]]] = defaultdict(list)
    order: list[str] = []
    dropped = 0
    for src, rows in sources.items():
        for text, score in rows:
            if not text or -margin <= score <= margin:
                dropped += 1
                continue
            if text not in by_text:
                order.append(text)
            by_text[text].append((src, LABELS[score > 0]))
    out, dup, conflict = [], 0, 0
    for text in order:
        hits = by_text[text]
        if len({lab for _, lab in hits}) > 1:
            conflict += 1
            continue
        dup += len(hits) - 1
        out.append((hits[0][0], text, hits[0][1]))
    log.info("dropped %d within +-%.2f, %d duplicate rows, %d texts with conflicting labels; %d left",
             dropped, margin, dup, conflict, len(out))
    return out


def split(rows: list[tuple[str, str, str]], dev_size: int, max_train: int, seed: int):
    """Seeded dev split stratified by (source, label); the rest is train (optionally capped)."""
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for r in rows:
        groups[(r[0], r[2])].append(r)
    keys = sorted(groups)
    for k in keys:
        rng.shuffle(groups[k])
    dev_size = min(dev_size, len(rows) // 2)
    # largest-remainder allocation of dev_size over the strata
    quota = {k: dev_size * len(groups[k]) / len(rows) for k in keys}
    take = {k: int(q) for k, q in quota.items()}
    for k in sorted(keys, key=lambda k: quota[k] - take[k], reverse=True)[: dev_size - sum(take.values())]:
        take[k] += 1
    dev = [r for k in keys for r in groups[k][: take[k]]]
    train = [r for k in keys for r in groups[k][take[k]:]]
    rng.shuffle(dev)
    rng.shuffle(train)
    if max_train and len(train) > max_train:
        log.info("capping train at %d of %d rows (seeded sample)", max_train, len(train))
        train = train[:max_train]
    return train, dev


def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
        w.writerow(["text", "label"])
        w.writerows((text, label) for _, text, label in rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for train.csv, dev.csv and spec.json")
    p.add_argument("--sdist", help=f"an already downloaded {PACKAGE}-{VERSION}.tar.gz (skips pip)")
    p.add_argument("--margin", type=float, default=0.5, help="drop texts whose mean rating is within +-margin")
    p.add_argument("--dev-size", type=int, default=1000)
    p.add_argument("--max-train", type=int, default=0, help="cap train rows by seeded sampling (0: no cap)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="vader-sentiment")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        sdist = Path(args.sdist) if args.sdist else fetch_sdist(Path(tmp))
        rows = label_rows(read_sources(sdist), args.margin)
    train, dev = split(rows, args.dev_size, args.max_train, args.seed)
    write_csv(out / "train.csv", train)
    write_csv(out / "dev.csv", dev)
    spec = {"name": args.name, "text_columns": ["text"], "label_column": "label",
            "files": {"train": "train.csv", "dev": "dev.csv"}, "label_names": list(LABELS)}
    (out / "spec.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    for name, part in (("train", train), ("dev", dev)):
        by_label = Counter(r[2] for r in part)
        by_source = Counter(r[0] for r in part)
        log.info("%s: %d rows, %s, majority share %.3f, by source %s", name, len(part), dict(sorted(by_label.items())),
                 max(by_label.values()) / len(part), dict(sorted(by_source.items())))
    log.info("wrote %s", out / "spec.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
