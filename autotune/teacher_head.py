"""Does a given teacher already classify this task? Most users arrive with a fine-tuned
classifier: fine-tuning it again would waste hours, and a head for other labels would be
silently re-initialised. So its head is read from its config before any work."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from compress.errors import UserInputError
from compress.models import PACKAGED
from compress.tasks import TaskSpec

log = logging.getLogger(__name__)

_GENERIC = re.compile(r"^LABEL_\d+$")


def finetuned_for(teacher: str, spec: TaskSpec) -> bool:
    """True when ``teacher`` is a sequence classifier whose labels are the task's; False for a
    backbone (a fresh head is trained); one line when its head classifies something else."""
    if teacher in (PACKAGED, "packaged", "default"):
        return False
    path = Path(teacher).expanduser()
    if not path.is_dir():
        return False  # a hub id: its config is read when it is loaded
    cfg_file = path / "config.json"
    try:
        cfg = json.loads(cfg_file.read_text())
    except FileNotFoundError:
        raise UserInputError(f"--teacher {teacher}: not a model directory (no config.json in it)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{cfg_file}: not a valid model config ({type(exc).__name__})") from None
    if not any(str(a).endswith("ForSequenceClassification") for a in cfg.get("architectures") or ()):
        return False
    id2label = {int(k): str(v) for k, v in (cfg.get("id2label") or {}).items()}
    n = len(id2label) or int(cfg.get("num_labels", 2))
    if n != spec.num_labels:
        raise UserInputError(
            f"--teacher {teacher}: its classifier has {n} labels but task {spec.name} has {spec.num_labels} "
            f"({', '.join(spec.label_names)}); pass a backbone or a classifier fine-tuned on this task")
    names = [id2label[i] for i in sorted(id2label)]
    if names and not all(_GENERIC.match(x) for x in names):
        want = [x.lower() for x in spec.label_names]
        if [x.lower() for x in names] != want:
            raise UserInputError(
                f"--teacher {teacher}: its labels are {names}, task {spec.name} expects {list(spec.label_names)} "
                f"in that order; relabel the model's config (id2label) or pass a backbone")
    else:
        log.warning("teacher %s: generic label names %s; assuming they are task %s's %s in that order",
                    teacher, names, spec.name, list(spec.label_names))
    log.info("teacher %s is a %d-label classifier for this task: used as it is, no fine-tuning", teacher, n)
    return True
