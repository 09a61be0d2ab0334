"""Pack consecutive corpus rows into longer rows (for 512-token sequences from short paragraphs)."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..corpus.annotate import SPAN_TYPES


def pack_rows(rows: Iterable[dict[str, Any]], max_tokens: int) -> Iterator[dict[str, Any]]:
    """Concatenate consecutive rows while they fit in `max_tokens` context tokens; spans shift with them.

    A row longer than `max_tokens` is passed on alone (the collator truncates it). Spans never cross
    the boundary between two packed paragraphs, since each paragraph's spans stay inside it.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens {max_tokens} must be >= 1")
    current: dict[str, Any] | None = None
    for row in rows:
        n = len(row["input_ids"])
        if current is not None and len(current["input_ids"]) + n <= max_tokens:
            off = len(current["input_ids"])
            current["input_ids"].extend(row["input_ids"])
            for t in SPAN_TYPES:
                current[f"{t}_spans"].extend([s + off, e + off] for s, e in row.get(f"{t}_spans") or [])
            current["knowledge_ids"].extend(k for k in row.get("knowledge_ids") or [] if k not in current["knowledge_ids"])
            current["text"] += "\n" + row.get("text", "")
            continue
        if current is not None:
            yield current
        current = {"text": row.get("text", ""), "input_ids": list(row["input_ids"]),
                   "knowledge_ids": list(row.get("knowledge_ids") or []),
                   **{f"{t}_spans": [list(s) for s in row.get(f"{t}_spans") or []] for t in SPAN_TYPES}}
    if current is not None:
        yield current
