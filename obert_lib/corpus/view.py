"""Look at the corpus stage's output: annotated paragraphs with coloured spans, span statistics."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from .annotate import SPAN_TYPES

if TYPE_CHECKING:
    import pandas as pd

SPAN_COLOURS = {
    "word": "#cfe2f3",
    "entity": "#f4cccc",
    "keyword": "#fff2cc",
    "phrase": "#d9ead3",
    "clause": "#e6d5f0",
    "sentence": "#fce5cd",
}


def _tokens(tokenizer, ids: list[int]) -> list[str]:
    return [t.removeprefix("##") for t in tokenizer.convert_ids_to_tokens(ids)]


def render_spans_html(tokens: list[str], spans: dict[str, list[list[int]]]) -> str:
    """One line per span type: the paragraph's tokens with that type's spans highlighted (alternating shade)."""
    rows = []
    for t in SPAN_TYPES:
        marks = [None] * len(tokens)
        for k, (s, e) in enumerate(spans.get(t, [])):
            for i in range(s, min(e, len(tokens))):
                marks[i] = k % 2
        parts, i = [], 0
        while i < len(tokens):
            j = i
            while j < len(tokens) and marks[j] == marks[i]:
                j += 1
            text = html.escape("".join(tokens[i:j]))
            if marks[i] is None:
                parts.append(text)
            else:
                border = "1px solid #888" if marks[i] else "1px dashed #888"
                parts.append(
                    f'<span style="background:{SPAN_COLOURS[t]};border:{border};border-radius:3px">{text}</span>'
                )
            i = j
        rows.append(
            f'<tr><td style="text-align:right;padding-right:8px"><b>{t}</b></td>'
            f'<td style="text-align:left">{"".join(parts)}</td></tr>'
        )
    return f'<table style="font-size:105%;line-height:1.9">{"".join(rows)}</table>'


def annotated_paragraphs_html(corpus_dir: str | Path, n: int = 3, min_tokens: int = 30) -> str:
    """The first n paragraphs of at least min_tokens tokens, each shown with every span type coloured."""
    from .report import load_shards
    from .tokenizer import load_saved_tokenizer

    tokenizer = load_saved_tokenizer(Path(corpus_dir) / "tokenizer")
    rows = [r for r in load_shards(corpus_dir).slice(0, 500).to_pylist() if len(r["input_ids"]) >= min_tokens][:n]
    blocks = []
    for r in rows:
        spans = {t: r[f"{t}_spans"] for t in SPAN_TYPES}
        blocks.append(
            f'<p style="color:#555">{html.escape(r["doc_id"])} · paragraph {r["paragraph"]}</p>'
            + render_spans_html(_tokens(tokenizer, r["input_ids"]), spans)
        )
    return "<hr/>".join(blocks)


def span_statistics(corpus_dir: str | Path, max_rows: int = 5000) -> pd.DataFrame:
    """Per span type: spans per paragraph, mean length in tokens and share of tokens covered."""
    import pandas as pd

    from .report import load_shards

    rows = load_shards(corpus_dir).slice(0, max_rows).to_pylist()
    n_tokens = sum(len(r["input_ids"]) for r in rows)
    out = []
    for t in SPAN_TYPES:
        lengths = [e - s for r in rows for s, e in r[f"{t}_spans"]]
        out.append(
            {
                "span_type": t,
                "spans_per_paragraph": len(lengths) / max(1, len(rows)),
                "mean_tokens": sum(lengths) / max(1, len(lengths)),
                "token_coverage": sum(lengths) / max(1, n_tokens),
            }
        )
    return pd.DataFrame(out)


def plot_span_statistics(stats: pd.DataFrame):
    """Bar charts of spans per paragraph and mean span length per type."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    colours = [SPAN_COLOURS[t] for t in stats["span_type"]]
    axes[0].bar(stats["span_type"], stats["spans_per_paragraph"], color=colours, edgecolor="#555")
    axes[0].set_title("每段片段数 spans per paragraph")
    axes[1].bar(stats["span_type"], stats["mean_tokens"], color=colours, edgecolor="#555")
    axes[1].set_title("平均片段长度 mean span length (tokens)")
    fig.tight_layout()
    return fig
