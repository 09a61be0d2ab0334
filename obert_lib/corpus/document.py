"""The one document type every preprocessing step reads and returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Document:
    """A raw or cleaned document; `text` holds paragraphs separated by newlines."""

    id: str
    text: str
    source: str = ""
    title: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Drop:
    """A step's verdict that a document leaves the corpus, with a named reason."""

    reason: str
    detail: str = ""
