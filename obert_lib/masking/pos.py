"""Which parts of speech each strategy masks: rjieba POS tags of the masked tokens, per strategy, over corpus rows."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..corpus.annotate import tag_words
from .collator import MaskingCollator
from .strategies import STRATEGIES, MaskConfig

# jieba's tag set (ICTCLAS-style), for figure labels.
POS_NAMES = {
    "n": "名词 noun",
    "nr": "人名 person",
    "ns": "地名 place",
    "nt": "机构 organisation",
    "nz": "专名 proper noun",
    "nrt": "音译人名 person (translit.)",
    "nrfg": "人名 person",
    "ng": "名语素 noun morpheme",
    "vn": "名动词 verbal noun",
    "v": "动词 verb",
    "vd": "副动词 adverbial verb",
    "vg": "动语素 verb morpheme",
    "a": "形容词 adjective",
    "ad": "副形词 adverbial adj.",
    "an": "名形词 nominal adj.",
    "ag": "形语素 adj. morpheme",
    "d": "副词 adverb",
    "m": "数词 numeral",
    "mq": "数量词 numeral-classifier",
    "q": "量词 classifier",
    "r": "代词 pronoun",
    "p": "介词 preposition",
    "c": "连词 conjunction",
    "u": "助词 particle",
    "uj": "的 particle",
    "ul": "了 particle",
    "uz": "着 particle",
    "uv": "地 particle",
    "ud": "得 particle",
    "ug": "过 particle",
    "f": "方位词 locality",
    "t": "时间词 time",
    "s": "处所词 place word",
    "b": "区别词 distinguishing",
    "l": "习用语 idiom phrase",
    "i": "成语 idiom",
    "j": "简称 abbreviation",
    "y": "语气词 modal",
    "e": "叹词 interjection",
    "o": "拟声词 onomatopoeia",
    "h": "前缀 prefix",
    "k": "后缀 suffix",
    "g": "语素 morpheme",
    "z": "状态词 status",
    "zg": "状态语素 status morpheme",
    "x": "标点/符号 punctuation",
    "eng": "英文 English",
    "other": "其他 other",
}


def token_pos(text: str, tokenizer) -> tuple[list[int], list[str]]:
    """(token ids, POS tag per token) of `text` without special tokens; a token takes the rjieba tag of the
    word holding its first character."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    words = tag_words(text)
    starts = [s for s, _, _ in words]
    tags = [words[max(0, bisect_right(starts, s) - 1)][2] if words else "x" for s, _ in enc["offset_mapping"]]
    return list(enc["input_ids"]), tags


def masked_pos_counts(
    rows: Sequence[dict[str, Any]],
    tokenizer,
    configs: Mapping[str, MaskConfig] | None = None,
    mask_rate: float = 0.15,
    max_length: int = 128,
    seed: int = 0,
    batch_size: int = 64,
    **collator_kwargs,
) -> pd.DataFrame:
    """Long table (strategy, pos, count): POS tags of the masked context tokens of `rows` under each config.

    rows need `text` (re-tagged with rjieba) and their `input_ids` (tokens of that text, as the corpus
    stage writes them). `configs` defaults to one MaskConfig per strategy at `mask_rate`.
    """
    configs = dict(configs or {s: MaskConfig(strategy=s, mask_rate=mask_rate) for s in STRATEGIES})
    tags: list[np.ndarray] = []
    for k, row in enumerate(rows):
        ids, pos = token_pos(row["text"], tokenizer)
        if ids != list(row["input_ids"]):
            raise ValueError(
                f"row {k}: input_ids are not the tokens of its text under this tokenizer; "
                "pass the tokenizer the corpus was built with (corpus_dir/tokenizer)"
            )
        tags.append(np.asarray(pos, dtype=object))
    records = []
    for name, cfg in configs.items():
        collator = MaskingCollator(tokenizer, cfg, max_length, seed, **collator_kwargs)
        counts: Counter = Counter()
        for lo in range(0, len(rows), batch_size):
            b = collator.mask_batch(rows[lo : lo + batch_size])
            target = b.labels != -100  # [B, T]; targets lie in the context, positions 1..n
            for i, n in enumerate(b.context_length):
                counts.update(tags[lo + i][: int(n)][target[i, 1 : int(n) + 1]].tolist())
        records += [{"strategy": name, "pos": p, "count": c} for p, c in sorted(counts.items())]
    return pd.DataFrame(records, columns=["strategy", "pos", "count"])


def masked_pos_distribution(counts: pd.DataFrame, top_k: int = 10) -> pd.DataFrame:
    """Share of masked tokens per POS (columns, the `top_k` most masked overall then 'other') per strategy (rows)."""
    wide = counts.pivot_table(index="strategy", columns="pos", values="count", aggfunc="sum", fill_value=0)
    wide = wide.reindex(list(dict.fromkeys(counts["strategy"])))
    order = wide.sum().sort_values(ascending=False, kind="stable").index.tolist()
    top, rest = order[:top_k], order[top_k:]
    out = wide[top].copy()
    if rest:
        out["other"] = wide[rest].sum(axis=1)
    out = out.div(out.sum(axis=1).replace(0, 1), axis=0)
    out.columns.name = "pos"
    return out


def plot_masked_pos(distribution: pd.DataFrame):
    """Heatmap of masked_pos_distribution: strategies down, POS across (with their Chinese names), shares in %."""
    import matplotlib.pyplot as plt

    from ..reports import setup_cjk_font

    setup_cjk_font()  # POS names and title are Chinese
    data = distribution.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.95 * data.shape[1], 0.9 + 0.5 * data.shape[0]))
    im = ax.imshow(data, cmap="YlOrRd", vmin=0, vmax=max(0.01, float(data.max())), aspect="auto")
    ax.set_xticks(range(data.shape[1]), [f"{p}\n{POS_NAMES.get(p, p).split(' ')[0]}" for p in distribution.columns])
    ax.set_yticks(range(data.shape[0]), distribution.index)
    for (r, c), v in np.ndenumerate(data):
        ax.text(
            c, r, f"{v:.0%}", ha="center", va="center", fontsize=8, color="white" if v > 0.6 * data.max() else "black"
        )
    ax.set_title("各策略被掩码词的词性分布 POS of masked tokens per strategy")
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="占比 share")
    fig.tight_layout()
    return fig
