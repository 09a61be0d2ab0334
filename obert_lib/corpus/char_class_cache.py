"""Character tables computed once per installation instead of once per process.

filters.py and normalize.py mark, at import, the character classes their C scans read (_textscan.mark): every
code point that a regex class matches (`\\s`, `\\d`, punctuation, separators), every Cc/Cf control, every
character NFKC may change. Finding them tests up to 1.1 million code points: 0.15 to 0.3 s per module, paid by
every process that cleans text, before its first document. What they find depends only on the module's source
and on the Python that runs it (its `re` and `unicodedata`), so it is kept in one file per module under
$OBERT_CACHE_DIR, else $XDG_CACHE_HOME/obert-lab, else ~/.cache/obert-lab, named by a hash of both: editing the
module or changing Python computes them again. cached_table keeps other such tables by a key that says what
they depend on (wordpiece.save_char_tables: the tokenizers version and the normalizer and pre-tokenizer). Nothing
is kept where that folder cannot be written.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import unicodedata
from pathlib import Path
from typing import Callable


def cache_dir() -> Path:
    """Where the classes are kept: $OBERT_CACHE_DIR, else $XDG_CACHE_HOME/obert-lab, else ~/.cache/obert-lab."""
    if os.environ.get("OBERT_CACHE_DIR"):
        return Path(os.environ["OBERT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "obert-lab"


def cached_classes(module_file: str, compute: Callable[[], dict[str, str]]) -> dict[str, str]:
    """`compute()` (class name -> its characters, as one str), kept by cached_table under a key of the module's
    source and of the Python whose tables it reads."""
    try:
        source = hashlib.sha256(Path(module_file).read_bytes()).hexdigest()
    except OSError:  # the module's source cannot be read (a zip import): nothing to key the cache on
        return compute()
    key = f"{source}|{sys.version}|{unicodedata.unidata_version}"
    # ASCII escapes: lone surrogates survive the round trip
    table = cached_table(f"char-classes-{Path(module_file).stem}", key, lambda: json.dumps(compute()).encode("ascii"))
    try:
        return json.loads(table)
    except ValueError:  # a damaged file whose first line survived
        return compute()


def cached_table(name: str, key: str, compute: Callable[[], bytes]) -> bytes:
    """`compute()`, a table that depends on nothing but the text `key`, kept as <name>-<hash of key>.bin: the
    file starts with `key` and a newline, so that a hash collision or a damaged file is computed again."""
    head = key.encode("utf-8") + b"\n"
    path = cache_dir() / f"{name}-{hashlib.sha256(head).hexdigest()[:16]}.bin"
    try:
        blob = path.read_bytes()
        if blob.startswith(head):
            return blob[len(head) :]
    except OSError:
        pass
    table = compute()
    _write_atomic(path, head + table)
    return table


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file (a reader sees the old file or the whole new one); nothing
    where the folder cannot be written (the next process computes it again)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass
