"""The corpus report: stats from the stages' logs (checked: in = kept + dropped), the dataset card, and the
notebook views of an output folder (shards as a table, counts, removed examples, length plots)."""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ..results import hash_files
from .config import CorpusConfig
from .tokenizer import saved_vocab_size


@dataclass
class CorpusResult:
    output_dir: Path
    shards: list[Path]
    stats: dict[str, Any] | None  # None when the stages were submitted to Slurm and have not run yet
    removed: dict[str, list[dict[str, Any]]]
    kept_lengths: list[dict[str, Any]] = field(default_factory=list, repr=False)  # {id, chars_before, chars_after}

    @functools.cached_property
    def lengths(self):
        """DataFrame: doc_id, chars_before, chars_after per kept document; chars_before (chars_after NaN) of each
        dropped one. Made on first use: importing pandas takes 0.3 s, which a run that never looks would pay."""
        import pandas as pd

        dropped = [i for items in self.removed.values() for i in items]
        return pd.DataFrame(
            {
                "doc_id": [r["id"] for r in self.kept_lengths] + [i["id"] for i in dropped],
                "chars_before": [r.get("chars_before") for r in self.kept_lengths]
                + [i["chars_before"] for i in dropped],
                "chars_after": [r["chars_after"] for r in self.kept_lengths] + [float("nan")] * len(dropped),
            }
        )


def step_counters(logging_dir: Path) -> dict[str, Counter]:
    """Summed counters of each step (by step name) over every task's stats file of one stage."""
    out: dict[str, Counter] = {}
    for f in sorted((logging_dir / "stats").glob("*.json")):
        for step in json.loads(f.read_text()):
            c = out.setdefault(step["name"], Counter())
            for label, value in step["stats"].items():
                c[label] += value["total"] if isinstance(value, dict) else value
    return out


def collect(
    out: Path, files: list[Path], cfg: CorpusConfig, seconds: float, stage_seconds: dict[str, float]
) -> CorpusResult:
    """Gather stats from the stages' logs and the removed/ folder; check in = kept + dropped."""
    logs = out / "_work" / "logs"
    clean = step_counters(logs / "clean")
    annotate = step_counters(logs / "annotate")
    removed: dict[str, list[dict]] = {}
    for f in sorted((out / "removed").glob("*/*.jsonl")):
        with open(f, "rb") as fh:  # orjson: a third of json's time on FewCLUE's 80,000 rows
            removed.setdefault(f.parent.name, []).extend(orjson.loads(line) for line in fh)
    documents_in = sum(c.get("documents", 0) for c in clean.values())  # only readers count "documents"
    kept_docs: list[dict] = []  # {id, chars_before, chars_after} of each kept document (kept_paragraphs.py)
    for f in sorted((out / "_work" / "kept").glob("*.jsonl")):
        with open(f, "rb") as fh:
            kept_docs.extend(orjson.loads(line) for line in fh)
    line_stats = Counter()
    for c in (*clean.values(), *annotate.values()):
        for k, v in c.items():
            if k.startswith("line_removed_"):
                line_stats[k[len("line_removed_") :]] += v
            elif k == "private_spans_removed":
                line_stats[k] += v
    ann = Counter()
    for c in annotate.values():
        ann.update({k: v for k, v in c.items() if k in ("paragraphs_out", "tokens_out")})
    dropped = {reason: len(items) for reason, items in sorted(removed.items())}
    records = Counter()  # WARC records that are not documents, and how pages' charsets were found (html_input.py)
    for c in clean.values():
        records.update({k: v for k, v in c.items() if k.startswith(("records_skipped_", "charset_"))})
    stats_out = {
        "documents_in": documents_in,
        "documents_kept": len(kept_docs),
        "documents_dropped": dropped,
        "input_records": dict(sorted(records.items())),
        "lines_removed": dict(sorted(line_stats.items())),
        "paragraphs_out": ann["paragraphs_out"],
        "tokens_out": ann["tokens_out"],
        "vocab_size": saved_vocab_size(out / "tokenizer"),
        "bytes_in": sum(f.stat().st_size for f in files),
        "bytes_out": sum(p.stat().st_size for p in (out / "shards").glob("*.parquet")),
        "data_hash": hash_files(files),
        "seconds": round(seconds, 3),
        "stage_seconds": stage_seconds,  # wall time of each stage in this call (a resumed stage counts only its rest)
    }
    if cfg.keep_removed and documents_in != len(kept_docs) + sum(dropped.values()):
        raise RuntimeError(
            f"documents in ({documents_in}) != kept ({len(kept_docs)}) + dropped ({sum(dropped.values())}): "
            f"a step lost documents; see {logs}"
        )
    (out / "stats.json").write_text(json.dumps(stats_out, ensure_ascii=False, indent=2), encoding="utf-8")
    (out / "README.md").write_text(dataset_card(stats_out, cfg), encoding="utf-8")
    shards = sorted((out / "shards").glob("*.parquet"))
    return CorpusResult(
        output_dir=out,
        shards=shards,
        stats=stats_out,
        removed=removed,
        kept_lengths=kept_docs,
    )


def dataset_card(stats: dict[str, Any], cfg: CorpusConfig) -> str:
    """A dataset card (markdown) for a corpus output folder: what went in, what came out, how to load it."""
    dropped = "\n".join(f"| {reason} | {n} |" for reason, n in stats["documents_dropped"].items()) or "| (none) | 0 |"
    lines = "\n".join(f"| {reason} | {n} |" for reason, n in stats["lines_removed"].items()) or "| (none) | 0 |"
    rows = (
        f"- paragraphs (rows): {stats['paragraphs_out']}, tokens: {stats['tokens_out']}, "
        f"vocabulary: {stats['vocab_size']} (`tokenizer/`)"
    )
    spans = (
        "`word_spans`, `entity_spans`, `keyword_spans`, `phrase_spans`, `clause_spans`, `sentence_spans`: "
        "token `[start, end)` pairs;"
    )
    return f"""# Corpus shards (obert-lab)

Built by `obert_lib.corpus.run` from {len(cfg.inputs)} input path(s): {", ".join(cfg.inputs)}.
The resolved configuration is `config.json`; counts are `stats.json`.

- documents in: {stats["documents_in"]}, kept: {stats["documents_kept"]}
{rows}
- input data hash: `{stats["data_hash"]}`

| dropped because | documents |
| --- | --- |
{dropped}

| lines removed because | lines |
| --- | --- |
{lines}

## Schema

One row per paragraph: `doc_id`, `source`, `paragraph`, `text`, `input_ids` (no special tokens) and
{spans}
`knowledge_ids`: knowledge-base entries linked in the paragraph, in order of first mention.

## Loading

```python
from datasets import load_dataset
ds = load_dataset("parquet", data_files="shards/*.parquet", split="train")
```

Dropped documents, with the reason and the input file and line, are under `removed/<reason>/`.
"""


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

    rows = [
        {
            "reason": reason,
            "id": item["id"],
            "detail": item["detail"],
            "text": item["text"][:chars].replace("\n", " ⏎ "),
        }
        for reason, items in sorted(result.removed.items())
        for item in items[:per_reason]
    ]
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
