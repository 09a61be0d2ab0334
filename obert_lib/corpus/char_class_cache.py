"""Character classes derived from the Unicode tables, computed once per installation instead of once per process.

filters.py and normalize.py mark, at import, the character classes their C scans read (_textscan.mark): every
code point that a regex class matches (`\\s`, `\\d`, punctuation, separators), every Cc/Cf control, every
character NFKC may change. Finding them tests up to 1.1 million code points: 0.15 to 0.3 s per module, paid by
every process that cleans text, before its first document. What they find depends only on the module's source
and on the Python that runs it (its `re` and `unicodedata`), so it is kept in one JSON file per module under
$OBERT_CACHE_DIR, else $XDG_CACHE_HOME/obert-lab, else ~/.cache/obert-lab, named by a hash of both: editing the
module or changing Python computes them again. Nothing is kept where that folder cannot be written.
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


def _key(module_file: str) -> str:
    """Hash of the module's source and of the Python whose tables it reads."""
    digest = hashlib.sha256(Path(module_file).read_bytes())
    digest.update(f"{sys.version}|{unicodedata.unidata_version}".encode())
    return digest.hexdigest()[:16]


def cached_classes(module_file: str, compute: Callable[[], dict[str, str]]) -> dict[str, str]:
    """`compute()` (class name -> its characters, as one str), read from the cache when the module's source and the
    Python are those it was computed with; otherwise computed and saved (atomically: a reader never sees a part)."""
    try:
        path = cache_dir() / f"char-classes-{Path(module_file).stem}-{_key(module_file)}.json"
    except OSError:  # the module's source cannot be read (a zip import): nothing to key the cache on
        return compute()
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    classes = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(classes, fh, ensure_ascii=True)  # ASCII escapes: lone surrogates survive the round trip
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass  # a read-only home: computed again by the next process
    return classes
