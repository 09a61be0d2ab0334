"""JSON-lines files as users bring them: one JSON object per line, split on `\n` only (rows may hold U+2028),
a leading UTF-8 BOM accepted, blank lines skipped, every mistake a DataError naming file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from .config import DataError


def json_objects(path: str | Path, fields: str = "named fields") -> Iterator[tuple[int, dict]]:
    """(line number, object) per non-blank line; `fields` says in the error what an object should hold."""
    with open(path, encoding="utf-8-sig", newline="\n") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno}: not a JSON line ({exc.msg} at column {exc.colno}); "
                    "each line must be one JSON object"
                ) from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: a JSON {type(row).__name__}, not an object with {fields}")
            yield lineno, row
