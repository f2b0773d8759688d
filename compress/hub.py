"""Loading the standard tasks from the Hugging Face hub when no local directory is given.

Without network the ``datasets`` library can spend minutes retrying; a short probe
first turns that into one line that says how to use a local directory instead.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from compress.errors import UserInputError
from compress.readers import Record
from compress.tasks import Example, TaskData, TaskSpec, rows_from_records

HUB_HOST = "huggingface.co"
_HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def hub_reachable(host: str = HUB_HOST, timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _require_hub(what: str) -> None:
    if not hub_reachable():
        raise UserInputError(
            f"{what}: the Hugging Face hub ({HUB_HOST}) is unreachable; "
            "pass --data-dir DIR with the GLUE/SuperGLUE files (for example ../shared/data)"
        )


def load_from_hub(spec: TaskSpec) -> TaskData:
    if spec.hub is None:
        raise UserInputError(f"task {spec.name} has no hub source; pass --data-dir DIR")
    _require_hub(f"task {spec.name}")
    import datasets  # heavy import, only on this path

    dataset_id, config = spec.hub
    ds = datasets.load_dataset(dataset_id, config)
    splits = {}
    for ours, theirs in _HUB_SPLITS.items():
        if theirs in ds:
            records = (Record(Path(f"{dataset_id}:{config}:{theirs}"), i + 1, _adapt(spec, dict(row)))
                       for i, row in enumerate(ds[theirs]))
            splits[ours] = _hub_rows(spec, records)
    return TaskData(spec, splits, f"hub:{dataset_id}/{config}")


def _adapt(spec: TaskSpec, row: dict[str, Any]) -> dict[str, Any]:
    """Hub rows use the official field names except for label coding (-1 = unlabelled)."""
    if row.get("label", 0) == -1:
        row["label"] = None
    renames = {"mrpc": {"sentence1": "#1 String", "sentence2": "#2 String", "label": "Quality"}}
    for old, new in renames.get(spec.name, {}).items():
        row[new] = row.pop(old)
    return row


def _hub_rows(spec: TaskSpec, records) -> tuple[Example, ...]:
    """MultiRC and ReCoRD are flattened on the hub: one row per answer / per query."""
    if spec.name == "multirc":
        return tuple(
            Example(r.data["paragraph"], f"{r.data['question']} {r.data['answer']}", r.data["label"],
                    f"{r.data['idx']['paragraph']}-{r.data['idx']['question']}")
            for r in records
        )
    if spec.name == "record":
        rows = []
        for r in records:
            golds = tuple(r.data.get("answers") or ())
            group = f"{r.data['idx']['passage']}-{r.data['idx']['query']}"
            for ent in dict.fromkeys(r.data["entities"]):
                rows.append(Example(r.data["passage"], r.data["query"].replace("@placeholder", ent),
                                    int(ent in golds) if golds else None, group, ent, golds))
        return tuple(rows)
    return rows_from_records(spec, records)
