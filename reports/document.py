"""What a report says, independent of how it is written (Markdown or HTML render the same)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import pandas as pd


@dataclass(frozen=True)
class Table:
    caption: str
    frame: pd.DataFrame  # strings only (reports.tables.render), so every output shows the same text
    collapsed: bool = False  # long listings fold away in HTML


@dataclass(frozen=True)
class Image:
    path: Path
    alt: str


Block = Union[str, Table, Image]  # a str is a paragraph of plain text


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Document:
    title: str
    intro: tuple[str, ...]
    sections: tuple[Section, ...]
