"""Pack corpus rows into longer rows (for 512-token sequences from short paragraphs) with little padding."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Literal

from ..corpus.annotate import SPAN_TYPES

# Rows first-fit packing sorts and places at a time: bounded memory on a stream, and at ~4k rows of
# FewCLUE-length paragraphs a window packs as tightly as the whole corpus (the tail bins are few).
FIRST_FIT_WINDOW = 4096


def _empty() -> dict[str, Any]:
    return {"text": "", "texts": [], "input_ids": [], "knowledge_ids": [], **{f"{t}_spans": [] for t in SPAN_TYPES}}


def _append(packed: dict[str, Any], row: dict[str, Any]) -> None:
    """Add `row` at the end of `packed`, shifting its spans by the tokens already there."""
    off = len(packed["input_ids"])
    packed["input_ids"].extend(row["input_ids"])
    for t in SPAN_TYPES:
        packed[f"{t}_spans"].extend([s + off, e + off] for s, e in row.get(f"{t}_spans") or [])
    packed["knowledge_ids"].extend(k for k in row.get("knowledge_ids") or [] if k not in packed["knowledge_ids"])
    packed["texts"].append(row.get("text", ""))
    packed["text"] = "\n".join(packed["texts"])


def pack_rows(
    rows: Iterable[dict[str, Any]], max_tokens: int, method: Literal["consecutive", "first_fit"] = "consecutive"
) -> Iterator[dict[str, Any]]:
    """Join whole rows into rows of at most `max_tokens` tokens; spans shift with them and never cross rows.

    consecutive: neighbours in input order (a document's paragraphs stay together).
    first_fit: first-fit decreasing (Johnson 1973) over windows of FIRST_FIT_WINDOW rows: longest rows
    first, each into the first packed row with room; less padding, paragraphs of different documents mix
    (as in RoBERTa's FULL-SENTENCES input). A row longer than `max_tokens` stays alone (the collator truncates it).
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens {max_tokens} must be >= 1")
    if method == "consecutive":
        current: dict[str, Any] | None = None
        for row in rows:
            if current is not None and len(current["input_ids"]) + len(row["input_ids"]) > max_tokens:
                yield current
                current = None
            if current is None:
                current = _empty()
            _append(current, row)
        if current is not None:
            yield current
        return
    if method != "first_fit":
        raise ValueError(f"method {method!r} is unknown; use 'consecutive' or 'first_fit'")
    window: list[dict[str, Any]] = []
    for row in rows:
        window.append(row)
        if len(window) == FIRST_FIT_WINDOW:
            yield from _first_fit(window, max_tokens)
            window = []
    yield from _first_fit(window, max_tokens)


def _first_fit(rows: list[dict[str, Any]], max_tokens: int) -> list[dict[str, Any]]:
    bins: list[dict[str, Any]] = []
    room: list[int] = []
    for row in sorted(rows, key=lambda r: -len(r["input_ids"])):  # stable: equal lengths keep input order
        n = len(row["input_ids"])
        slot = next((i for i, free in enumerate(room) if free >= n), None)
        if slot is None:
            bins.append(_empty())
            room.append(max_tokens)
            slot = len(bins) - 1
        _append(bins[slot], row)
        room[slot] -= n
    return bins
