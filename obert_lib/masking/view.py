"""Look at masks: mask one paragraph for display, an ipywidgets view, and per-strategy statistics."""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..corpus.annotate import SPAN_TYPES, EntityMatcher, annotate
from ..corpus.tokenizer import char_spans_to_token_spans
from .collator import MaskingCollator
from .strategies import STRATEGIES, MaskConfig


@dataclass
class MaskedView:
    """One paragraph after masking: original tokens, what the model sees, and which positions are targets."""

    tokens: list[str]
    shown: list[str]
    masked: list[bool]
    strategy: str

    @property
    def realised_rate(self) -> float:
        return sum(self.masked) / max(1, len(self.masked))


class MaskPreviewer:
    """Annotates and masks free text exactly as the corpus stage and the collator do."""

    def __init__(self, tokenizer, matcher: EntityMatcher | None = None, keywords_top_k: int = 3):
        self.tokenizer, self.matcher, self.keywords_top_k = tokenizer, matcher, keywords_top_k

    @classmethod
    def from_corpus(cls, corpus_dir: str | Path) -> "MaskPreviewer":
        """The tokenizer, knowledge base and keyword settings a corpus output directory was built with."""
        from transformers import AutoTokenizer

        from ..corpus.annotate import load_knowledge_base
        from ..paths import resolve_data_path

        corpus_dir = Path(corpus_dir)
        cfg = json.loads((corpus_dir / "config.json").read_text(encoding="utf-8"))
        tokenizer = AutoTokenizer.from_pretrained(corpus_dir / "tokenizer")
        kb = cfg.get("knowledge_base")
        matcher = EntityMatcher(load_knowledge_base(resolve_data_path(kb))) if kb else None
        return cls(tokenizer, matcher, cfg.get("keywords_top_k", 3))

    def row(self, text: str) -> dict[str, Any]:
        """A corpus-shard row (input_ids + token spans) for `text`."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        spans = annotate(text, self.matcher, self.keywords_top_k)
        row = {"input_ids": enc["input_ids"]}
        for t in SPAN_TYPES:
            row[f"{t}_spans"] = [list(s) for s in char_spans_to_token_spans(enc["offset_mapping"], spans[t])]
        return row

    def mask(self, text: str, strategy: str = "word", mask_rate: float = 0.15, seed: int = 0) -> MaskedView:
        """Mask `text` with one strategy; the same seed gives the same view."""
        cfg = MaskConfig(strategy=strategy, mask_rate=mask_rate)
        row = self.row(text)
        collator = MaskingCollator(self.tokenizer, cfg, max_length=len(row["input_ids"]) + 2, seed=seed)
        ids, labels = collator.mask_row(row)
        ids, labels = ids[1:-1], labels[1:-1]  # drop [CLS]/[SEP]
        tokens = self.tokenizer.convert_ids_to_tokens(row["input_ids"])
        return MaskedView(tokens=tokens, shown=self.tokenizer.convert_ids_to_tokens(ids.tolist()),
                          masked=(labels != -100).tolist(), strategy=strategy)

    def render(self, text: str, strategy: str = "word", mask_rate: float = 0.15, seed: int = 0) -> str:
        """HTML of the masked paragraph (the widget's callback)."""
        return render_html(self.mask(text, strategy, mask_rate, seed))


def render_html(view: MaskedView) -> str:
    """Tokens as inline boxes: masked targets highlighted, with what the model sees above the original."""
    parts = []
    for tok, shown, m in zip(view.tokens, view.shown, view.masked):
        tok_h = html.escape(tok.removeprefix("##"))
        if m:
            kind = "mask" if shown == "[MASK]" else ("keep" if shown == tok else "random")
            colour = {"mask": "#f4a6a6", "random": "#f9d77e", "keep": "#a6d8f4"}[kind]
            parts.append(f'<span class="obert-tok obert-{kind}" title="{kind}: {html.escape(shown)}" '
                         f'style="background:{colour};border-radius:3px;padding:0 2px;margin:0 1px">'
                         f'<sup>{html.escape(shown) if kind != "keep" else "="}</sup>{tok_h}</span>')
        else:
            parts.append(f'<span class="obert-tok">{tok_h}</span>')
    legend = ('<div style="font-size:90%;color:#555">strategy <b>{}</b> · masked {}/{} tokens ({:.1%}) · '
              '<span style="background:#f4a6a6">[MASK]</span> <span style="background:#f9d77e">random</span> '
              '<span style="background:#a6d8f4">kept</span></div>').format(
        html.escape(view.strategy), sum(view.masked), len(view.masked), view.realised_rate)
    return f'<div style="line-height:2.2;font-size:110%">{"".join(parts)}</div>{legend}'


def mask_widget(previewer: MaskPreviewer, paragraphs: Sequence[str]):
    """ipywidgets controls (paragraph, free text, strategy, mask rate, seed) over a live HTML view."""
    import ipywidgets as w

    picker = w.Dropdown(options=[(p[:30] + "…", p) for p in paragraphs], description="sample")
    text = w.Textarea(value=paragraphs[0] if paragraphs else "", layout=w.Layout(width="100%", height="70px"), description="text")
    strategy = w.Dropdown(options=list(STRATEGIES), value="word", description="strategy")
    rate = w.FloatSlider(value=0.15, min=0.05, max=0.5, step=0.01, description="mask rate")
    seed = w.IntText(value=0, description="seed")
    out = w.HTML()

    def update(*_):
        out.value = previewer.render(text.value, strategy.value, rate.value, seed.value) if text.value.strip() else ""

    picker.observe(lambda ch: setattr(text, "value", ch["new"]), names="value")
    for control in (text, strategy, rate, seed):
        control.observe(update, names="value")
    update()
    box = w.VBox([picker, text, w.HBox([strategy, rate, seed]), out])
    box.controls = {"sample": picker, "text": text, "strategy": strategy, "mask_rate": rate, "seed": seed, "output": out}
    return box


def strategy_statistics(rows: Sequence[dict[str, Any]], tokenizer, mask_rate: float = 0.15, max_length: int = 128, seed: int = 0) -> pd.DataFrame:
    """Per strategy over corpus rows: realised mask rate, mean masked-run length, replacement shares."""
    records = []
    for strategy in STRATEGIES:
        collator = MaskingCollator(tokenizer, MaskConfig(strategy=strategy, mask_rate=mask_rate), max_length, seed)
        n_tok = n_masked = n_mask_tok = n_same = 0
        runs: list[int] = []
        for row in rows:
            ids, labels = collator.mask_row(row)
            target = labels != -100
            n_tok += len(ids) - 2
            n_masked += int(target.sum())
            n_mask_tok += int((ids[target] == tokenizer.mask_token_id).sum())
            n_same += int((ids[target] == labels[target]).sum())
            # lengths of runs of consecutive masked positions (adjacent spans merge into one run)
            edges = np.diff(np.concatenate([[0], target.astype(np.int8), [0]]))
            runs.extend((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist())
        records.append({
            "strategy": strategy, "sequences": len(rows), "tokens": n_tok,
            "mask_rate": n_masked / max(1, n_tok),
            "mean_run_length": float(np.mean(runs)) if runs else 0.0,
            "share_mask": n_mask_tok / max(1, n_masked),
            "share_kept": n_same / max(1, n_masked),
        })
    return pd.DataFrame(records)


def plot_strategy_statistics(df: pd.DataFrame):
    """Bar charts of realised mask rate and mean masked-run length per strategy."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    axes[0].bar(df["strategy"], df["mask_rate"], color="#d9534f")
    axes[0].axhline(0.15, ls="--", c="k", lw=1)
    axes[0].set_title("实际掩码率 realised mask rate")
    axes[1].bar(df["strategy"], df["mean_run_length"], color="#5bc0de")
    axes[1].set_title("平均掩码片段长度 mean masked-run length (tokens)")
    fig.tight_layout()
    return fig


def render_strategies(previewer: MaskPreviewer, text: str, mask_rate: float = 0.15, seed: int = 0) -> str:
    """HTML of `text` masked by every strategy in turn, one titled block each."""
    return "".join(f"<h4>{s}</h4>" + previewer.render(text, s, mask_rate, seed) for s in STRATEGIES)
