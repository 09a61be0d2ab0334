"""Corpus stage: read -> normalise -> line rules -> quality rules -> dedup -> split -> annotate -> tokenise -> Parquet."""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from .. import config as cfgmod
from ..config import require
from ..paths import resolve_data_path
from ..results import hash_files
from . import filters, normalize
from .annotate import SPAN_TYPES, EntityMatcher, annotate, load_knowledge_base
from .dedup import NearDuplicateIndex, normalised_hash
from .document import Document, Drop
from .tokenizer import char_spans_to_token_spans, load_vocab_tokenizer, train_tokenizer


@dataclass
class NormalizeConfig:
    strip_html: bool = True
    nfkc: bool = True  # full-width ASCII -> half-width; Chinese punctuation is kept full-width
    traditional_to_simplified: bool = True  # OpenCC t2s


@dataclass
class LineRulesConfig:
    remove_navigation: bool = True
    remove_boilerplate: bool = True
    remove_seo_spam: bool = True
    remove_spam: bool = True  # lines with spam keywords (filters.SPAM_KEYWORDS)
    scrub_private: bool = True  # URLs, e-mail addresses, phone numbers


@dataclass
class QualityConfig:
    # 20 CJK chars: below that a "document" is a reply like 顶/同问 or a bare title (sample corpus).
    min_cjk_chars: int = 20
    # Real Chinese prose is >70% ideographs; mojibake and symbol noise are <10%. 0.4 sits between.
    min_cjk_ratio: float = 0.4
    # The commonest character in normal Chinese (的) is ~4% of text; '哈哈哈…' is ~100%.
    max_top_char_fraction: float = 0.25
    # Gopher (Rae et al. 2021) drops documents with >30% duplicated lines.
    max_duplicate_line_fraction: float = 0.3
    # A document where half the lines advertise is an ad; fewer spam lines (a spam reply under a real
    # answer) are removed one by one.
    max_spam_line_fraction: float = 0.5

    def __post_init__(self):
        require(self.min_cjk_chars >= 0, "min_cjk_chars", "must be >= 0")
        require(0.0 <= self.min_cjk_ratio <= 1.0, "min_cjk_ratio", "must be within [0, 1]")
        require(0.0 < self.max_top_char_fraction <= 1.0, "max_top_char_fraction", "must be within (0, 1]")


@dataclass
class DedupConfig:
    exact: bool = True
    near: bool = True
    # 128 permutations in 16 bands of 8 rows: P(candidate) = 1-(1-J^8)^16 is 0.5 at J~0.69, 0.98 at J=0.8.
    num_perm: int = 128
    bands: int = 16
    threshold: float = 0.7
    shingle_size: int = 5  # character 5-grams: ~2-3 Chinese words
    paragraphs: bool = True  # drop a paragraph already seen in an earlier kept document
    min_paragraph_chars: int = 20  # shorter paragraphs ("谢谢！") may repeat legitimately

    def __post_init__(self):
        require(self.num_perm > 0 and self.num_perm % self.bands == 0, "bands", f"num_perm ({self.num_perm}) must be a positive multiple of bands ({self.bands})")
        require(0.0 < self.threshold <= 1.0, "threshold", "must be within (0, 1]")


@dataclass
class TokenizerConfig:
    vocab_file: str | None = None  # a BERT vocab.txt ('shared:vocab/bert-base-chinese-vocab.txt'); null trains one
    vocab_size: int = 8000  # when training: enough for every character of a small corpus plus common pieces
    min_frequency: int = 1

    def __post_init__(self):
        require(self.vocab_size >= 100, "vocab_size", "must be >= 100")


@dataclass
class CorpusConfig:
    """What changes the corpus (results); see CorpusRuntime for what changes only speed."""

    inputs: list[str] = field(default_factory=lambda: ["sample:corpus.jsonl"])
    output_dir: str = "runs/corpus"
    text_key: str = "text"
    id_key: str = "id"
    knowledge_base: str | None = "sample:kb.jsonl"
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    lines: LineRulesConfig = field(default_factory=LineRulesConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    min_paragraph_chars: int = 8  # paragraphs shorter than this are headings/fragments: not training text
    keywords_top_k: int = 3
    max_documents: int | None = None  # read at most this many documents (quick looks at big inputs)
    keep_removed: bool = True  # write dropped documents to removed/<reason>.jsonl for inspection
    shard_rows: int = 5000

    def __post_init__(self):
        require(len(self.inputs) > 0, "inputs", "give at least one input file")
        require(self.shard_rows > 0, "shard_rows", "must be > 0")


@dataclass
class CorpusRuntime:
    """Speed-only settings."""

    progress: bool = True


@dataclass
class CorpusResult:
    output_dir: Path
    shards: list[Path]
    stats: dict[str, Any]
    removed: dict[str, list[dict[str, Any]]]
    lengths: Any = None  # DataFrame: doc_id, chars_before, chars_after (NaN when dropped)


def read_jsonl(paths: list[Path], text_key: str, id_key: str, stats: Counter, drops: dict) -> Iterator[Document]:
    """Documents from JSONL files; unreadable lines become counted drops, never crashes."""
    for path in paths:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                stats["documents_in"] += 1
                where = f"{path.name}:{lineno}"
                try:
                    row = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    _record_drop(drops, Document(id=where, text=raw[:200].decode("utf-8", "replace")), Drop("unreadable_line", str(exc)))
                    continue
                text = row.get(text_key) if isinstance(row, dict) else None
                if not isinstance(text, str):
                    _record_drop(drops, Document(id=where, text=str(row)[:200]), Drop("missing_text", f"no string field '{text_key}'"))
                    continue
                yield Document(id=str(row.get(id_key, where)), text=text, source=str(row.get("source", "")),
                               title=str(row.get("title", "")), meta={"file": path.name, "line": lineno})


def _record_drop(drops: dict, doc: Document, drop: Drop) -> None:
    drops.setdefault(drop.reason, []).append({"id": doc.id, "detail": drop.detail, "text": doc.text})


def clean_document(doc: Document, cfg: CorpusConfig, line_stats: Counter) -> Document | Drop:
    """Normalise and apply line and quality rules to one document."""
    text = doc.text
    n = cfg.normalize
    if n.strip_html:
        text = normalize.strip_html(text)
    if n.nfkc:
        text = normalize.nfkc_keep_cjk_punct(text)
    text = normalize.remove_control_chars(text)
    if n.traditional_to_simplified:
        text = normalize.traditional_to_simplified(text)
    if cfg.lines.scrub_private:
        text, removed = filters.scrub_private(text)
        line_stats["private_spans_removed"] += removed
    text = normalize.normalize_whitespace(text)
    lines = text.split("\n")
    spam_lines = sum(filters.spam_keyword_hits(line) > 0 for line in lines)
    if spam_lines and spam_lines / len(lines) >= cfg.quality.max_spam_line_fraction:
        return Drop("spam_keywords", f"{spam_lines}/{len(lines)} lines carry spam keywords")
    kept_lines = []
    for line in lines:
        if cfg.lines.remove_spam and filters.spam_keyword_hits(line):
            line_stats["spam_line"] += 1
        elif cfg.lines.remove_boilerplate and filters.is_boilerplate_line(line):
            line_stats["boilerplate"] += 1
        elif cfg.lines.remove_navigation and filters.is_navigation_line(line):
            line_stats["navigation"] += 1
        elif cfg.lines.remove_seo_spam and filters.is_seo_spam_line(line):
            line_stats["seo_spam"] += 1
        else:
            kept_lines.append(line)
    text = normalize.remove_spaces_between_cjk("\n".join(kept_lines))
    if cfg.lines.remove_seo_spam and doc.title and filters.is_seo_spam_line(doc.title):
        line_stats["seo_spam_title"] += 1  # titles are not training text; counted so the dirt is visible
    q = cfg.quality
    if not text.strip():
        return Drop("empty_after_cleaning")
    ratio = filters.cjk_ratio(text)  # before length, so mojibake is named as garbled, not short
    if ratio < q.min_cjk_ratio:
        return Drop("low_cjk_ratio", f"{ratio:.2f} < {q.min_cjk_ratio}")
    if filters.cjk_count(text) < q.min_cjk_chars:
        return Drop("too_short", f"{filters.cjk_count(text)} CJK chars < {q.min_cjk_chars}")
    top = filters.top_char_fraction(text)
    if top > q.max_top_char_fraction:
        return Drop("repetitive_characters", f"{top:.2f} > {q.max_top_char_fraction}")
    dup = filters.duplicate_line_fraction(text)
    if dup > q.max_duplicate_line_fraction:
        return Drop("repeated_lines", f"{dup:.2f} > {q.max_duplicate_line_fraction}")
    return Document(id=doc.id, text=text, source=doc.source, title=doc.title, meta=doc.meta)


def run(cfg: CorpusConfig | dict | str | None = None, runtime: CorpusRuntime | None = None) -> CorpusResult:
    """Run the corpus stage; writes shards, tokenizer, config, stats and removed documents to cfg.output_dir."""
    cfg = cfgmod.load(CorpusConfig, cfg)
    runtime = runtime or CorpusRuntime()
    paths = [resolve_data_path(p) for p in cfg.inputs]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"inputs: {missing} do not exist; pass existing JSONL files")
    kb_path = resolve_data_path(cfg.knowledge_base) if cfg.knowledge_base else None
    if kb_path and not kb_path.is_file():
        raise FileNotFoundError(f"knowledge_base: {kb_path} does not exist; give a KB JSONL or null")
    t0 = time.perf_counter()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    stats: Counter = Counter()
    line_stats: Counter = Counter()
    drops: dict[str, list[dict]] = {}
    exact_seen: dict[str, str] = {}
    near = NearDuplicateIndex(cfg.dedup.num_perm, cfg.dedup.bands, cfg.dedup.threshold, cfg.dedup.shingle_size)
    near_ids: list[str] = []
    seen_paragraphs: set[str] = set()
    kept: list[Document] = []
    before: dict[str, int] = {}
    docs = read_jsonl(paths, cfg.text_key, cfg.id_key, stats, drops)
    for doc in tqdm(docs, desc="clean", unit="doc", disable=not runtime.progress):
        if cfg.max_documents is not None and stats["documents_in"] > cfg.max_documents:
            stats["documents_in"] -= 1
            break
        before[doc.id] = len(doc.text)
        verdict = clean_document(doc, cfg, line_stats)
        if isinstance(verdict, Drop):
            _record_drop(drops, doc, verdict)
            continue
        if cfg.dedup.exact:
            key = normalised_hash(verdict.text)
            if key in exact_seen:
                _record_drop(drops, doc, Drop("exact_duplicate", f"same as {exact_seen[key]}"))
                continue
            exact_seen[key] = doc.id
        if cfg.dedup.near:
            other, jaccard = near.find_or_add(verdict.text)
            if other is not None:
                _record_drop(drops, doc, Drop("near_duplicate", f"~{jaccard:.2f} Jaccard with {near_ids[other]}"))
                continue
            near_ids.append(doc.id)
        if cfg.dedup.paragraphs:
            paras = []
            for p in verdict.text.split("\n"):
                if len(p) >= cfg.dedup.min_paragraph_chars and p in seen_paragraphs:
                    line_stats["duplicate_paragraph"] += 1
                    continue
                seen_paragraphs.add(p)
                paras.append(p)
            verdict.text = "\n".join(paras)
        kept.append(verdict)

    # Paragraphs: the unit of training text; each becomes one row.
    rows_text = [(d, i, p) for d in kept for i, p in enumerate(d.text.split("\n")) if len(p) >= cfg.min_paragraph_chars]
    tok_cfg = cfg.tokenizer
    if tok_cfg.vocab_file:
        tokenizer = load_vocab_tokenizer(resolve_data_path(tok_cfg.vocab_file))
    else:
        tokenizer = train_tokenizer((p for _, _, p in rows_text), tok_cfg.vocab_size, tok_cfg.min_frequency)
    tokenizer.save_pretrained(out / "tokenizer")

    matcher = EntityMatcher(load_knowledge_base(kb_path)) if kb_path else None
    records: dict[str, list] = {k: [] for k in ["doc_id", "source", "paragraph", "text", "input_ids", *[f"{t}_spans" for t in SPAN_TYPES]]}
    for doc, idx, para in tqdm(rows_text, desc="annotate+tokenise", unit="para", disable=not runtime.progress):
        enc = tokenizer(para, add_special_tokens=False, return_offsets_mapping=True)
        spans = annotate(para, matcher, cfg.keywords_top_k)
        records["doc_id"].append(doc.id)
        records["source"].append(doc.source)
        records["paragraph"].append(idx)
        records["text"].append(para)
        records["input_ids"].append(enc["input_ids"])
        for t in SPAN_TYPES:
            records[f"{t}_spans"].append([list(s) for s in char_spans_to_token_spans(enc["offset_mapping"], spans[t])])
        stats["tokens_out"] += len(enc["input_ids"])

    shard_dir = out / "shards"
    shard_dir.mkdir(exist_ok=True)
    for old in shard_dir.glob("*.parquet"):
        old.unlink()
    shards = []
    table = pa.table(records, schema=shard_schema())
    for i, start in enumerate(range(0, max(table.num_rows, 1), cfg.shard_rows)):
        path = shard_dir / f"part-{i:05d}.parquet"
        tmp = path.with_suffix(".tmp")
        pq.write_table(table.slice(start, cfg.shard_rows), tmp)
        tmp.replace(path)
        shards.append(path)

    dropped = {reason: len(items) for reason, items in sorted(drops.items())}
    stats_out = {
        "documents_in": stats["documents_in"],
        "documents_kept": len(kept),
        "documents_dropped": dropped,
        "lines_removed": dict(sorted(line_stats.items())),
        "paragraphs_out": len(rows_text),
        "tokens_out": stats["tokens_out"],
        "vocab_size": len(tokenizer),
        "data_hash": hash_files(paths),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    assert stats_out["documents_in"] == len(kept) + sum(dropped.values()), "every document is kept or dropped"
    cfgmod.save(cfg, out / "config.json")
    (out / "stats.json").write_text(json.dumps(stats_out, ensure_ascii=False, indent=2), encoding="utf-8")
    if cfg.keep_removed:
        removed_dir = out / "removed"
        removed_dir.mkdir(exist_ok=True)
        for reason, items in drops.items():
            with open(removed_dir / f"{reason}.jsonl", "w", encoding="utf-8") as fh:
                for item in items:
                    fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    import pandas as pd

    after = {d.id: len(d.text) for d in kept}
    lengths = pd.DataFrame({"doc_id": list(before), "chars_before": list(before.values()),
                            "chars_after": [after.get(k, float("nan")) for k in before]})
    return CorpusResult(output_dir=out, shards=shards, stats=stats_out, removed=drops, lengths=lengths)


def shard_schema() -> pa.Schema:
    """Parquet schema of a corpus shard: one paragraph per row, spans as token [start, end) pairs."""
    span = pa.list_(pa.list_(pa.int32()))
    return pa.schema([
        ("doc_id", pa.string()), ("source", pa.string()), ("paragraph", pa.int32()), ("text", pa.string()),
        ("input_ids", pa.list_(pa.int32())), *[(f"{t}_spans", span) for t in SPAN_TYPES],
    ])


def load_shards(corpus_dir: str | Path) -> "pa.Table":
    """All shards of a corpus output directory as one Arrow table."""
    paths = sorted((Path(corpus_dir) / "shards").glob("*.parquet"))
    if not paths:
        raise FileNotFoundError(f"no shards under {corpus_dir}/shards: run the corpus stage first")
    return pa.concat_tables([pq.read_table(p) for p in paths])


def stats_table(stats: dict[str, Any]) -> "Any":
    """The kept/dropped counts as a DataFrame (one row per outcome, reasons named)."""
    import pandas as pd

    rows = [("kept", "", stats["documents_kept"])]
    rows += [("dropped", reason, n) for reason, n in stats["documents_dropped"].items()]
    rows += [("line removed", reason, n) for reason, n in stats["lines_removed"].items()]
    return pd.DataFrame(rows, columns=["outcome", "reason", "count"])


def removed_examples(result: CorpusResult, per_reason: int = 2, chars: int = 80) -> "Any":
    """A few dropped documents per reason (id, detail, start of text) for inspection."""
    import pandas as pd

    rows = [{"reason": reason, "id": item["id"], "detail": item["detail"], "text": item["text"][:chars].replace("\n", " ⏎ ")}
            for reason, items in sorted(result.removed.items()) for item in items[:per_reason]]
    return pd.DataFrame(rows, columns=["reason", "id", "detail", "text"])


def plot_lengths(result: CorpusResult):
    """Histograms of document length (characters) before and after cleaning."""
    import matplotlib.pyplot as plt

    df = result.lengths
    fig, ax = plt.subplots(figsize=(6, 3.5))
    top = max(1, int(df["chars_before"].quantile(0.99)))
    bins = list(range(0, top + 50, 50))
    ax.hist(df["chars_before"].clip(upper=top), bins=bins, alpha=0.6, label=f"清洗前 before ({len(df)})")
    kept = df["chars_after"].dropna()
    ax.hist(kept.clip(upper=top), bins=bins, alpha=0.6, label=f"清洗后 after ({len(kept)})")
    ax.set(xlabel="字符数 characters per document", ylabel="文档数 documents", title="文档长度分布 document lengths")
    ax.legend()
    fig.tight_layout()
    return fig


def sample_paragraphs(corpus_dir: str | Path, n: int = 10, min_chars: int = 30) -> list[str]:
    """The first n paragraphs of at least min_chars characters from a corpus output directory."""
    texts = load_shards(corpus_dir).column("text").to_pylist()
    return [t for t in texts if len(t) >= min_chars][:n]
