"""Look at masks: one paragraph masked for display, the ipywidgets view over it, and per-strategy figures.

The widget (widget.py) is thin: every control change calls `render_controls(previewer, values)`, a plain function
of the control values that returns the HTML, so tests (and scripts) drive exactly what the widget shows.
"""

from __future__ import annotations

import html
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..config import ConfigError
from ..corpus.annotate import SPAN_TYPES, EntityMatcher, annotate_linked
from ..corpus.tokenizer import char_spans_to_token_spans
from . import view_style as css
from .collator import MaskingCollator
from .knowledge import KnowledgeSegments
from .strategies import MaskConfig
from .view_style import CLAUSE_UNDERLINE, KIND_STYLES, TYPE_COLOURS

MIXTURE = "mixture"  # the strategy control's value that selects the mixture field


@dataclass
class MaskedView:
    """One paragraph after masking: original tokens, what the model sees, targets and why they were chosen.

    Per-token lists are over the context tokens (no [CLS]/[SEP]); `units` are the masked units as
    (type, start, end) in context positions: whole spans of a strategy or fallback, or 'char' singles.
    """

    tokens: list[str]
    shown: list[str]
    masked: list[bool]
    strategy: str  # the strategy this paragraph drew (a mixture draws one per sequence)
    kinds: list[str] = field(default_factory=list)  # per token: '' or mask / random / keep / synonym
    span_types: list[list[str]] = field(default_factory=list)  # per token: the span types containing it
    word_start: list[bool] = field(default_factory=list)  # per token: begins a word span
    clause: list[int] = field(default_factory=list)  # per token: index of its clause span, -1 outside clauses
    units: list[tuple[str, int, int]] = field(default_factory=list)
    config: MaskConfig | None = None
    knowledge_tokens: list[str] = field(default_factory=list)  # the K_w segment (token type 1, never masked)
    knowledge_entries: list[tuple[str, str]] = field(default_factory=list)  # (entry id, name) in K_w
    knowledge_parts: list[list[str]] = field(default_factory=list)  # per entry: its summary's tokens in K_w
    knowledge_cut: list[bool] = field(default_factory=list)  # per entry: summary cut to fit the budget

    @property
    def realised_rate(self) -> float:
        return sum(self.masked) / max(1, len(self.masked))

    def counts(self) -> dict[str, int]:
        """Targets per replacement kind (mask / random / keep / synonym)."""
        return {k: self.kinds.count(k) for k in KIND_STYLES}

    def knowledge_text(self, sep: str = " [SEP] ", cut: str = "…") -> str:
        """K_w as text: the entries' summaries joined by `sep`, each one cut to fit the budget ending in `cut`."""
        return sep.join(
            "".join(t.removeprefix("##") for t in part) + (cut if c else "")
            for part, c in zip(self.knowledge_parts, self.knowledge_cut)
        )

    def unit_counts(self) -> dict[str, int]:
        """Masked units per span type: the strategies' own types, then the fallbacks word and 'char' (single tokens)."""
        order = ("entity", "keyword", "phrase", "clause", "word", "char")
        found = [u[0] for u in self.units]
        return {t: found.count(t) for t in order if t in found}


class MaskPreviewer:
    """Annotates and masks free text exactly as the corpus stage and the collator do."""

    def __init__(
        self,
        tokenizer,
        matcher: EntityMatcher | None = None,
        keywords_top_k: int = 3,
        knowledge: KnowledgeSegments | None = None,
    ):
        self.tokenizer, self.matcher, self.keywords_top_k = tokenizer, matcher, keywords_top_k
        self.knowledge = knowledge

    @classmethod
    def from_corpus(cls, corpus_dir: str | Path) -> "MaskPreviewer":
        """The tokenizer, knowledge base (matcher, K_w segments), user dictionary and keyword settings of a corpus."""
        from ..corpus.annotate import load_knowledge_base, load_user_dict
        from ..paths import resolve_data_path
        from .corpus_files import corpus_config, corpus_tokenizer

        cfg, tokenizer = corpus_config(corpus_dir), corpus_tokenizer(corpus_dir)
        if cfg.get("user_dict"):
            load_user_dict(resolve_data_path(cfg["user_dict"]))
        matcher = knowledge = None
        if cfg.get("knowledge_base"):
            entries = load_knowledge_base(resolve_data_path(cfg["knowledge_base"]))
            matcher, knowledge = EntityMatcher(entries), KnowledgeSegments(entries, tokenizer)
        return cls(tokenizer, matcher, cfg.get("keywords_top_k", 3), knowledge)

    def row(self, text: str) -> dict[str, Any]:
        """A corpus-shard row (input_ids, token spans, linked knowledge ids) for `text`."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        spans, linked = annotate_linked(text, self.matcher, self.keywords_top_k)
        row = {"text": text, "input_ids": enc["input_ids"], "knowledge_ids": linked}
        for t in SPAN_TYPES:
            row[f"{t}_spans"] = [list(s) for s in char_spans_to_token_spans(enc["offset_mapping"], spans[t])]
        return row

    def mask(
        self, text: str, strategy: str | MaskConfig = "word", mask_rate: float = 0.15, seed: int = 0
    ) -> MaskedView:
        """Mask `text` with a strategy name (at `mask_rate`) or a full MaskConfig; the same seed gives the same view."""
        cfg = strategy if isinstance(strategy, MaskConfig) else MaskConfig(strategy=strategy, mask_rate=mask_rate)
        if cfg.knowledge.enabled and self.knowledge is None:
            raise ConfigError(
                "knowledge: this corpus was built without a knowledge_base, so there are no K_w "
                "segments; leave knowledge off or rebuild the corpus with one"
            )
        row = self.row(text)
        n_ctx = len(row["input_ids"])
        # room for the whole context, and for K_w (+ its [SEP]) when knowledge is on: nothing is truncated
        max_length = n_ctx + 2 + (cfg.knowledge.summary_budget + 3 if cfg.knowledge.enabled else 0)
        collator = MaskingCollator(
            self.tokenizer, cfg, max_length=max(max_length, 5), seed=seed, knowledge=self.knowledge
        )
        b = collator.mask_batch([row])
        n = int(b.context_length[0])
        ctx = slice(1, n + 1)  # drop [CLS]/[SEP]
        ids, labels, original = b.input_ids[0, ctx], b.labels[0, ctx], b.original_ids[0, ctx]
        masked = labels != -100
        synonym = b.synonym[0, ctx]
        kinds = np.where(
            ~masked,
            "",
            np.where(
                synonym,
                "synonym",
                np.where(ids == self.tokenizer.mask_token_id, "mask", np.where(ids == original, "keep", "random")),
            ),
        )
        units = [(t, s - 1, e - 1) for _, t, s, e in b.spans]
        covered = np.zeros(n, dtype=bool)
        for _, s, e in units:
            covered[s:e] = True
        units += [("char", int(i), int(i) + 1) for i in np.flatnonzero(masked & ~covered)]
        span_types: list[list[str]] = [[] for _ in range(n)]
        for t in ("entity", "keyword", "phrase", "word", "clause"):
            for s, e in row[f"{t}_spans"]:
                for i in range(s, min(e, n)):
                    span_types[i].append(t)
        word_start = [False] * n
        for s, _ in row["word_spans"]:
            if s < n:
                word_start[s] = True
        clause = [-1] * n
        for k, (s, e) in enumerate(row["clause_spans"]):
            clause[s:e] = [k] * len(clause[s:e])
        segment = b.input_ids[0, np.flatnonzero(b.token_type_ids[0] == 1)[:-1]].tolist()  # K_w, no closing [SEP]
        parts = [
            self.tokenizer.convert_ids_to_tokens(list(g))
            for is_sep, g in itertools.groupby(  # entries apart, without their [SEP]s
                segment, lambda t: t == self.tokenizer.sep_token_id
            )
            if not is_sep
        ]
        names = self.knowledge.names if self.knowledge is not None else {}
        return MaskedView(
            tokens=self.tokenizer.convert_ids_to_tokens(row["input_ids"]),
            shown=self.tokenizer.convert_ids_to_tokens(ids.tolist()),
            masked=masked.tolist(),
            strategy=b.strategy[0],
            kinds=kinds.tolist(),
            span_types=span_types,
            word_start=word_start,
            clause=clause,
            units=sorted(units, key=lambda u: u[1]),
            config=cfg,
            knowledge_tokens=self.tokenizer.convert_ids_to_tokens(segment),
            knowledge_entries=[(i, names.get(i, i)) for i in b.knowledge_entries[0]],
            knowledge_parts=parts,
            knowledge_cut=b.knowledge_cut[0],
        )


def _piece(token: str) -> str:
    return html.escape(token.removeprefix("##"))


def _legend() -> str:
    swatch = "display:inline-block;padding:0 4px;margin-right:4px;border-radius:3px"
    types = "".join(
        f'<span style="{swatch};{";".join(css.token_style(c))}">{t}</span>' for t, c in TYPE_COLOURS.items()
    )
    types += f'<span style="{swatch};border-bottom:2px solid {CLAUSE_UNDERLINE}">clause</span>'
    marks = "".join(f'<span style="{swatch};outline:{style}">{label}</span>' for label, style in KIND_STYLES.values())
    return (
        f'<div class="obert-legend" style="{css.LEGEND}">span type: {types} · '
        f"masked, shown to the model as: {marks} (small text above = what the model sees)</div>"
    )


def _stats_line(view: MaskedView) -> str:
    cfg = view.config or MaskConfig(strategy=view.strategy)
    counts = view.counts()
    drawn = (
        f"mixture <b>{html.escape(cfg.label)}</b> drew <b>{html.escape(view.strategy)}</b>"
        if cfg.mixture
        else f"strategy <b>{html.escape(view.strategy)}</b>"
    )
    kept = 1.0 - cfg.replace_mask - cfg.replace_random
    units = ", ".join(f"{t} {k}" for t, k in view.unit_counts().items()) or "none"
    syn = f"on (rate {cfg.synonym.rate:g})" if cfg.synonym.enabled else "off"
    return (
        f'<div class="obert-stats" style="{css.STATS}">{drawn} · '
        f"masked {sum(view.masked)}/{len(view.masked)} tokens ({view.realised_rate:.1%}, "
        f"target {cfg.mask_rate:.0%}) · [MASK] {counts['mask']} · random {counts['random']} · "
        f"kept {counts['keep']} · synonym {counts['synonym']} · "
        f"spans masked: {units} · policy {cfg.replace_mask:.0%}/{cfg.replace_random:.0%}/{kept:.0%} "
        f"[MASK]/random/kept · synonyms {syn} · knowledge {'on' if cfg.knowledge.enabled else 'off'}</div>"
    )


def _knowledge_block(view: MaskedView) -> str:
    if view.config is None or not view.config.knowledge.enabled:
        return ""
    if not view.knowledge_entries:
        body = "no knowledge-base entity linked in this text: no K<sub>w</sub> segment"
    else:
        entries = ", ".join(f"<b>{html.escape(name)}</b> ({html.escape(i)})" for i, name in view.knowledge_entries)
        sep = (
            f'<span class="obert-knowledge-sep" style="color:{css.KNOWLEDGE_ACCENT};font-size:80%;margin:0 3px">'
            "[SEP]</span>"
        )
        cut = (
            '<span class="obert-cut" title="summary cut here, at a sentence or word boundary, to fit '
            'knowledge.summary_budget" style="color:#e03131;font-weight:bold">…</span>'
        )
        text = sep.join(
            "".join(_piece(t) for t in part) + (cut if c else "")
            for part, c in zip(view.knowledge_parts, view.knowledge_cut)
        )
        body = (
            f"entries: {entries} · {len(view.knowledge_tokens)} tokens, {sum(view.knowledge_cut)} summaries cut "
            f'(…) to fit the budget<br><span class="obert-knowledge-text">{text}</span>'
        )
    return (
        f'<div class="obert-knowledge" style="{css.KNOWLEDGE}">'
        f'<span style="color:{css.KNOWLEDGE_ACCENT}">knowledge segment K<sub>w</sub> '
        f"([CLS] context [SEP] K<sub>w</sub> [SEP], token type 1, never masked)</span><br>{body}</div>"
    )


def render_html(view: MaskedView) -> str:
    """The paragraph as tokens coloured by span type, masked targets outlined with what the model sees above
    them, the knowledge segment (when knowledge masking is on), a statistics line and a legend."""
    unit_of = {}
    for t, s, e in view.units:
        for i in range(s, e):
            unit_of[i] = t
    parts = []
    n = len(view.tokens)
    for i, (tok, shown, m) in enumerate(zip(view.tokens, view.shown, view.masked)):
        types = view.span_types[i] if i < len(view.span_types) else []
        colour = next((TYPE_COLOURS[t] for t in TYPE_COLOURS if t in types), None)
        style = css.token_style(colour)
        if i < len(view.word_start) and view.word_start[i] and i:
            style.append("margin-left:3px")
        if i < len(view.clause) and view.clause[i] >= 0:
            style.append(f"border-bottom:2px solid {CLAUSE_UNDERLINE}")
        kind = view.kinds[i] if i < len(view.kinds) else ("mask" if m else "")
        title = ", ".join(types) or "no span"
        if m:
            style.append(f"outline:{KIND_STYLES[kind][1]};outline-offset:-1px")
            above = {"mask": "[M]", "keep": "="}.get(kind, _piece(shown))
            title += f" · masked as part of a {unit_of.get(i, 'char')} unit · model sees {html.escape(shown)} ({kind})"
            body = f'<ruby>{_piece(tok)}<rt style="{css.RUBY_TEXT}">{above}</rt></ruby>'
        else:
            body = _piece(tok)
        cls = f"obert-tok obert-{kind}" if m else "obert-tok"
        data_type = next((t for t in TYPE_COLOURS if t in types), "")
        parts.append(
            f'<span class="{cls}" data-type="{data_type}" title="{title}" style="{";".join(style)}">{body}</span>'
        )
    text = f'<div class="obert-text" style="line-height:2.6;font-size:115%">{"".join(parts)}</div>' if n else ""
    return (
        f'<div class="obert-view" style="{css.VIEW}">{text}{_knowledge_block(view)}{_stats_line(view)}{_legend()}</div>'
    )


def parse_mixture(spec: str | Mapping[str, float]) -> dict[str, float]:
    """`'word:0.5, phrase:0.5'` (or `word=0.5 …`, or a dict) -> {'word': 0.5, 'phrase': 0.5}."""
    if isinstance(spec, Mapping):
        return {str(k): float(v) for k, v in spec.items()}
    out: dict[str, float] = {}
    for part in spec.replace(";", ",").replace("+", ",").split(","):
        if not part.strip():
            continue
        name, sep, weight = part.replace("=", ":").partition(":")
        try:
            out[name.strip()] = float(weight) if sep else 1.0
        except ValueError:
            raise ConfigError(
                f"mixture: weight {weight.strip()!r} of {name.strip()!r} is not a number; "
                "write e.g. 'word:0.5, phrase:0.5'"
            ) from None
    if not out:
        raise ConfigError("mixture: empty; write e.g. 'word:0.5, phrase:0.5'")
    return out


@dataclass
class MaskControls:
    """The widget's control values; `config()` is the MaskConfig they describe."""

    text: str = ""
    strategy: str = "word"  # one of STRATEGIES, or 'mixture' to use `mixture`
    mixture: str | dict = "word:0.4, entity:0.2, phrase:0.2, clause:0.2"
    mask_rate: float = 0.15
    replace_mask: float = 0.8  # share of targets shown as [MASK]
    replace_random: float = 0.1  # share shown as a random token; the rest stay unchanged
    synonym: bool = False
    synonym_rate: float = 0.5
    knowledge: bool = False
    seed: int = 0

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> "MaskControls":
        """From a dict of control values (the widget's 'sample' and 'output' are ignored; other unknown keys raise)."""
        return cls(**{k: v for k, v in values.items() if k not in ("sample", "output")})

    def config(self) -> MaskConfig:
        mixture = parse_mixture(self.mixture) if self.strategy == MIXTURE else {}
        return MaskConfig(
            strategy="word" if self.strategy == MIXTURE else self.strategy,
            mixture=mixture,
            mask_rate=float(self.mask_rate),
            replace_mask=float(self.replace_mask),
            replace_random=float(self.replace_random),
            synonym={"enabled": bool(self.synonym), "rate": float(self.synonym_rate)},
            knowledge={"enabled": bool(self.knowledge)},
        )


def render_error(message: str) -> str:
    """An impossible setting, said in one line (the theme's error colour)."""
    return f'<div class="obert-error" style="{css.ERROR_BOX}">{html.escape(message)}</div>'


def render_controls(previewer: MaskPreviewer, values: MaskControls | Mapping[str, Any]) -> str:
    """The widget's callback: HTML for the control values ('' for empty text, a message for an impossible setting)."""
    controls = values if isinstance(values, MaskControls) else MaskControls.from_values(values)
    if not controls.text.strip():
        return ""
    try:
        view = previewer.mask(controls.text, controls.config(), seed=int(controls.seed))
    except ConfigError as e:  # an impossible setting: say which and why instead of a traceback in the widget
        return render_error(str(e))
    return render_html(view)
