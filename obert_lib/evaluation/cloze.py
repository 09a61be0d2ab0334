"""Cloze inputs of the ZeroCLUE PET protocol: a template with label slots `[M]` and `{field}` holes, filled
from a row, tokenised, truncated without touching the template or a slot, slots found by the [MASK] id.

Templates follow FewCLUE `baselines/models_keras/pet/pet_<task>.py`; maximum lengths too (128 tokens, 256 for
ocnli and csl). The reference scripts hard-code slot positions, which drift when the tokenizer drops spaces;
here the slots are wherever the [MASK] id lands after tokenising.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .fewclue import IDIOM_MARK

SLOT = "[M]"

# task -> published template; `[M]` is one [MASK] token, `{name}` a field of `task_fields`
PUBLISHED = {
    "eprstmt": "[M]满意。{sentence}",
    "tnews": "下面报导一则[M][M]新闻。{sentence}",
    "iflytek": "做为一款[M][M]应用，{sentence}",
    "csldcp": "这篇[M][M]论文阐述了{content}",
    "ocnli": "{sentence1}？[M][M],{sentence2}",
    "bustm": "{sentence1}和{sentence2}意思[M]同",
    "chid": "{left}[M][M][M][M]{right}",
    "csl": "[M][M]用{keywords}概括{abst}",
    "cluewsc": "下面句子的指代关系正确吗？[M][M]。{text}",
}

MAX_LENGTH = {task: 256 if task in ("ocnli", "csl") else 128 for task in PUBLISHED}

# Fields cut from their head when too long (the text right before chid's slots); all others lose their tail.
HEAD_CUT_FIELDS = frozenset({"left"})

WSC_ENTITY, WSC_PRONOUN = "（这是实体）", "（这是代词）"


def task_fields(task: str, row: dict) -> dict[str, str]:
    """The strings a template of `task` can name: the row's text fields plus the protocol's derived ones.

    chid: `left`/`right` of `#idiom#` in the content with spaces removed. csl: `keywords` joined with `，`.
    cluewsc: `text` with `（这是实体）` after span1 and `（这是代词）` after span2, inserted right to left so
    the earlier index stays valid.
    """
    fields = {k: v for k, v in row.items() if isinstance(v, str)}
    if task == "chid":
        left, _, right = row["content"].replace(" ", "").partition(IDIOM_MARK)
        fields.update(left=left, right=right)
    elif task == "csl":
        fields["keywords"] = "，".join(row["keyword"])
    elif task == "cluewsc":
        target, text = row["target"], row["text"]
        inserts = [
            (target["span1_index"] + len(target["span1_text"]), WSC_ENTITY),
            (target["span2_index"] + len(target["span2_text"]), WSC_PRONOUN),
        ]
        for end, marker in sorted(inserts, reverse=True):
            text = text[:end] + marker + text[end:]
        fields["text"] = text
    return fields


@dataclass(frozen=True)
class Piece:
    kind: str  # "text" (template literal, never cut), "slot" (one [MASK]) or "field" (row content, cut)
    value: str


def parse_template(template: str) -> list[Piece]:
    """Split a template into literal text, `[M]` slots and `{field}` holes."""
    pieces = []
    for part in re.split(r"(\[M\]|\{\w+\})", template):
        if not part:
            continue
        if part == SLOT:
            pieces.append(Piece("slot", ""))
        elif part.startswith("{") and part.endswith("}"):
            pieces.append(Piece("field", part[1:-1]))
        else:
            pieces.append(Piece("text", part))
    return pieces


def template_slots(template: str) -> int:
    return sum(p.kind == "slot" for p in parse_template(template))


def template_field_names(template: str) -> list[str]:
    return [p.value for p in parse_template(template) if p.kind == "field"]


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


class ClozeBuilder:
    """Builds (input ids, slot positions) for one template; the template's literal pieces are tokenised once."""

    def __init__(self, tokenizer, template: str, max_length: int):
        self.tokenizer = tokenizer
        self.pieces = parse_template(template)
        self.max_length = max_length
        self.n_slots = sum(p.kind == "slot" for p in self.pieces)
        self.literal = {i: _ids(tokenizer, p.value) for i, p in enumerate(self.pieces) if p.kind == "text"}
        fixed = 2 + self.n_slots + sum(map(len, self.literal.values()))  # [CLS] + [SEP] + slots + literals
        if fixed > max_length:
            raise ValueError(
                f"template {template!r} needs {fixed} tokens without any content, more than max_length "
                f"{max_length}; shorten the template or raise max_length"
            )
        self.budget = max_length - fixed

    def build(self, fields: dict[str, str]) -> tuple[list[int], list[int], bool]:
        """Input ids [T <= max_length] with [CLS]/[SEP], slot positions [n_slots], and whether content was cut.

        Content is cut one token at a time from the longest field (its tail; the head of fields in
        HEAD_CUT_FIELDS), so the template and every slot survive. A [MASK] inside content becomes [UNK], so
        only the template's slots carry the [MASK] id.
        """
        tk = self.tokenizer
        content = {}
        for i, p in enumerate(self.pieces):
            if p.kind == "field":
                ids = _ids(tk, fields[p.value])
                content[i] = [tk.unk_token_id if t == tk.mask_token_id else t for t in ids]
        cut = False
        while sum(map(len, content.values())) > self.budget:
            i = max(content, key=lambda k: len(content[k]))
            if self.pieces[i].value in HEAD_CUT_FIELDS:
                del content[i][0]
            else:
                content[i].pop()
            cut = True
        ids = [tk.cls_token_id]
        for i, p in enumerate(self.pieces):
            if p.kind == "slot":
                ids.append(tk.mask_token_id)
            else:
                ids += self.literal[i] if p.kind == "text" else content[i]
        ids.append(tk.sep_token_id)
        slots = [pos for pos, t in enumerate(ids) if t == tk.mask_token_id]
        if len(slots) != self.n_slots:  # a literal of the template tokenised to [MASK]
            raise ValueError(f"found {len(slots)} [MASK] tokens, expected the template's {self.n_slots} slots")
        return ids, slots, cut
