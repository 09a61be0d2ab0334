"""Which files a corpus run reads, in which format, and the datatrove reader for them."""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError
from ..paths import resolve_data_path
from .config import CorpusConfig

_EXT_FORMAT = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".txt": "text",
    ".warc": "warc",
    ".wet": "warc",  # Common Crawl's WET files: name.warc.wet.gz
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".shtml": "html",
}
MARKUP_FORMATS = ("warc", "html")  # formats whose documents are HTML pages (html_extract.ExtractMainText)


def input_files(cfg: CorpusConfig) -> list[Path]:
    """Every input file (folders expanded recursively), checked to exist before any work."""
    files: list[Path] = []
    for item in cfg.inputs:
        path = resolve_data_path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"inputs: {item} ({path}) does not exist; pass existing files or folders")
    if not files:
        raise FileNotFoundError(f"inputs: {cfg.inputs} hold no files")
    return [f.resolve() for f in files]


def input_format(files: list[Path], declared: str) -> str:
    """The declared input format, or the one the file suffixes name (all inputs must share it)."""
    if declared != "auto":
        return declared
    formats = set()
    for f in files:
        suffixes = [s for s in f.suffixes if s not in (".gz", ".zst", ".zstd")]
        formats.add(_EXT_FORMAT.get(suffixes[-1] if suffixes else "", "jsonl"))
    if len(formats) > 1:
        raise ConfigError(
            f"input_format: inputs mix formats {sorted(formats)}; run them separately or set input_format"
        )
    return formats.pop()


def input_reader(fmt: str, paths_file: Path, cfg: CorpusConfig):
    """The datatrove reader of format `fmt` over the files listed in `paths_file` (relative to /)."""
    from .readers import ObertJsonlReader, ObertParquetReader, ObertTextReader

    common = {"paths_file": str(paths_file), "limit": cfg.max_documents if cfg.max_documents is not None else -1}
    if fmt == "jsonl":
        return ObertJsonlReader("/", text_key=cfg.text_key, id_key=cfg.id_key, **common)
    if fmt == "parquet":
        return ObertParquetReader("/", text_key=cfg.text_key, id_key=cfg.id_key, **common)
    if fmt in MARKUP_FORMATS:
        from .html_input import ObertHtmlReader, ObertWarcReader

        reader = ObertWarcReader if fmt == "warc" else ObertHtmlReader
        return reader("/", max_page_bytes=cfg.html.max_page_bytes, **common)
    return ObertTextReader("/", blocks=fmt == "text_blocks", **common)
