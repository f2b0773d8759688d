"""FastFormers' published numbers, shown beside a suite's measurements as cited facts.

They are the paper's, on its teacher (BERT-base) and its hardware: context for reading a suite's
table, never a measurement of this run. Only numbers known for certain are listed; the rest are
None and render as "—" rather than being guessed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

TABLE1 = "FastFormers (Kim & Hassan 2020), Table 1, BERT-base teacher, SuperGLUE dev"
TABLE4 = "FastFormers (Kim & Hassan 2020), Table 4, SustaiNLP 2020 BERT-base reference"


@dataclass(frozen=True)
class Published:
    task: str
    teacher_dev: float | None = None  # Table 1, points (0-100), the metric as the paper reports it
    teacher_source: str = TABLE1
    reference: float | None = None  # Table 4, points
    reference_source: str = TABLE4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Published":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


# Table 1 values as cited in the project's issue; MultiRC and every Table 4 value are not known here
KNOWN = {p.task: p for p in (
    Published("boolq", teacher_dev=75.99),
    Published("cb", teacher_dev=87.96),
    Published("copa", teacher_dev=64.0),
    Published("superglue-rte", teacher_dev=69.68),
    Published("wic", teacher_dev=72.41),
    Published("multirc"),
)}


def published(task: str) -> Published | None:
    return KNOWN.get(task)
