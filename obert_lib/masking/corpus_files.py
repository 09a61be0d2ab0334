"""What masking reads from a corpus output folder (config.json, tokenizer/), checked before anything loads.

A missing or wrong folder is a user's mistake: a UserError that names the path and the fix. The tokenizer
loads with `local_files_only=True`, so a path that is not there never becomes a Hugging Face Hub request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import UserError

FIX = "give the output folder of `obert preprocess` (it holds config.json, tokenizer/ and the shards)"


def _corpus_folder(corpus_dir: str | Path) -> Path:
    """`corpus_dir` as a Path, refused when it is missing or a file."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        what = "is a file, not a folder" if corpus_dir.exists() else "does not exist"
        raise UserError(f"corpus {corpus_dir} {what}; {FIX}")
    return corpus_dir


def corpus_config(corpus_dir: str | Path) -> dict[str, Any]:
    """The corpus stage's config.json of `corpus_dir`, as a dict."""
    corpus_dir = _corpus_folder(corpus_dir)
    path = corpus_dir / "config.json"
    if not path.is_file():
        raise UserError(f"corpus {corpus_dir} has no config.json, so it is not a corpus output; {FIX}")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); rerun `obert preprocess` into a new folder") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{path} holds no JSON object; rerun `obert preprocess` into a new folder")
    return cfg


def corpus_tokenizer(corpus_dir: str | Path):
    """The tokenizer the corpus stage saved in `corpus_dir`/tokenizer, loaded from disk only."""
    from ..corpus.tokenizer import holds_tokenizer, load_saved_tokenizer

    path = _corpus_folder(corpus_dir) / "tokenizer"
    if not holds_tokenizer(path):
        raise UserError(f"corpus {corpus_dir} has no tokenizer in {path} (tokenizer.json or vocab.txt); {FIX}")
    return load_saved_tokenizer(path)
