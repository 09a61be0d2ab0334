"""The ipywidgets view of notebook 02: controls over the mask view, laid out for a laptop screen.

The controls' logic is plain Python (`WidgetState`): what the output shows for a sequence of control values,
so tests drive exactly what the widget shows. Layout: rows that wrap (flex-wrap) instead of overflowing,
labels at their natural width (never cut), fixed control widths (never 100% beside a label), and text fields
that apply on Enter or when they lose focus (continuous_update=False), so typing a mixture or composing
pinyin with an IME does not re-render the view on every keystroke.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..config import ConfigError
from .strategies import STRATEGIES
from .view import MIXTURE, MaskControls, MaskPreviewer, render_controls, render_error

# the control names whose values make up MaskControls (the picker 'sample' only fills 'text')
VALUE_CONTROLS = (
    "text",
    "strategy",
    "mixture",
    "mask_rate",
    "replace_mask",
    "replace_random",
    "synonym",
    "synonym_rate",
    "knowledge",
    "seed",
)
STALE_OPACITY = 0.55  # the last good view under an error: dimmed, so it reads as "not this setting"


class WidgetState:
    """What the widget's output shows: the view of the current values or, when they are impossible (a mixture
    being typed, shares over 100%), the error above the last good view, dimmed, so the page does not jump."""

    def __init__(self, previewer: MaskPreviewer):
        self.previewer = previewer
        self.last_good = ""

    def render(self, values: MaskControls | Mapping[str, Any]) -> str:
        controls = values if isinstance(values, MaskControls) else MaskControls.from_values(values)
        if not controls.text.strip():
            self.last_good = ""
            return ""
        try:
            controls.config()
        except ConfigError as e:
            return self._error(str(e))
        out = render_controls(self.previewer, controls)
        if out.startswith('<div class="obert-error"'):  # the previewer refused the setting (e.g. knowledge)
            return out + self._stale()
        self.last_good = out
        return out

    def _error(self, message: str) -> str:
        return render_error(message) + self._stale()

    def _stale(self) -> str:
        if not self.last_good:
            return ""
        return (
            f'<div class="obert-stale" style="opacity:{STALE_OPACITY}" '
            f'title="the last setting that worked">{self.last_good}</div>'
        )


def _sample_label(p: str, n: int = 40) -> str:
    return p[:n] + ("…" if len(p) > n else "")


def mask_widget(previewer: MaskPreviewer, paragraphs: Sequence[str], **initial: Any):
    """ipywidgets controls over a live HTML view; `box.controls` maps control names to widgets (and 'output').

    Controls: sample (paragraph picker, fills text), text, strategy (or 'mixture'), mixture, mask_rate,
    replace_mask, replace_random, synonym, synonym_rate, knowledge, seed. `initial` overrides MaskControls defaults.
    """
    import ipywidgets as w

    start = MaskControls(**{"text": paragraphs[0] if paragraphs else "", **initial})
    label = {"description_width": "initial"}  # labels at their natural width: never cut to "[MASK] sh…"

    def slider(value: float, lo: float, hi: float, step: float, name: str, tip: str):
        return w.FloatSlider(
            value=value,
            min=lo,
            max=hi,
            step=step,
            description=name,
            tooltip=tip,
            continuous_update=False,
            style=label,
            layout=w.Layout(width="310px"),  # 310 px: label + a usable track + readout, two per row at 700 px
        )

    mixture = (
        start.mixture if isinstance(start.mixture, str) else ", ".join(f"{k}:{v:g}" for k, v in start.mixture.items())
    )
    c = {
        "sample": w.Dropdown(
            options=[(_sample_label(p), p) for p in paragraphs],
            value=start.text if start.text in paragraphs else None,
            description="sample",
            tooltip="a paragraph of the corpus; fills the text box (editing the text clears this)",
            style=label,
            layout=w.Layout(width="auto", max_width="560px"),
        ),
        "text": w.Textarea(
            value=start.text,
            placeholder="type or paste Chinese text; applied when the box loses focus",
            tooltip="the text to mask; applied when the box loses focus (so IME composition is not re-rendered)",
            continuous_update=False,
            layout=w.Layout(width="auto", height="70px"),
        ),
        "strategy": w.Dropdown(
            options=[*STRATEGIES, MIXTURE],
            value=start.strategy,
            description="strategy",
            tooltip="the span granularity to mask; 'mixture' draws one per sequence from the mixture weights",
            style=label,
            layout=w.Layout(width="200px"),
        ),
        "mixture": w.Text(
            value=mixture,
            description="mixture",
            placeholder="word:0.5, phrase:0.5",
            tooltip="strategy:weight, ... ; applied on Enter or when the field loses focus",
            continuous_update=False,
            disabled=start.strategy != MIXTURE,
            style=label,
            layout=w.Layout(width="280px"),
        ),
        "mask_rate": slider(start.mask_rate, 0.01, 0.9, 0.01, "mask rate", "share of the tokens to mask"),
        "replace_mask": slider(start.replace_mask, 0.0, 1.0, 0.05, "[MASK] share", "share of targets shown as [MASK]"),
        "replace_random": slider(
            start.replace_random, 0.0, 1.0, 0.05, "random share", "share of targets shown as a random token"
        ),
        "synonym": w.Checkbox(
            value=start.synonym,
            description="synonym replacement",
            tooltip="show a masked word as a near-synonym (Motian) at the synonym rate",
            indent=False,
            style=label,
            layout=w.Layout(width="auto"),
        ),
        "synonym_rate": slider(
            start.synonym_rate, 0.0, 1.0, 0.05, "synonym rate", "share of masked words with a synonym shown as it"
        ),
        "knowledge": w.Checkbox(
            value=start.knowledge,
            description="knowledge segment",
            tooltip="append the linked entities' summaries as a second segment K_w (never masked)"
            if previewer.knowledge is not None
            else "this corpus was built without a knowledge base",
            disabled=previewer.knowledge is None,
            indent=False,
            style=label,
            layout=w.Layout(width="auto"),
        ),
        "seed": w.IntText(
            value=start.seed, description="seed", tooltip="the random seed", style=label, layout=w.Layout(width="130px")
        ),
    }
    out = w.HTML(tooltip="", layout=w.Layout(width="auto", max_width="100%"))  # "": no "null" hover text
    c["output"] = out
    for name, widget in c.items():  # a stable handle for browser tests and user CSS: .obert-control-<name>
        widget.add_class(f"obert-control-{name}")
    state = WidgetState(previewer)

    def values() -> dict[str, Any]:
        return {name: c[name].value for name in VALUE_CONTROLS}

    def update(*_):
        out.value = state.render(values())

    def text_edited(change):
        if change["new"] != c["sample"].value:  # typed text is no sample any more: the picker says so
            c["sample"].value = None

    c["sample"].observe(lambda ch: ch["new"] is not None and setattr(c["text"], "value", ch["new"]), names="value")
    c["text"].observe(text_edited, names="value")
    c["strategy"].observe(lambda ch: setattr(c["mixture"], "disabled", ch["new"] != MIXTURE), names="value")
    c["synonym"].observe(lambda ch: setattr(c["synonym_rate"], "disabled", not ch["new"]), names="value")
    c["synonym_rate"].disabled = not start.synonym
    # [MASK] + random shares stay <= 1: the random slider's maximum follows the [MASK] share (and clamps its value)
    c["replace_random"].max = round(1.0 - start.replace_mask, 6)
    c["replace_mask"].observe(lambda ch: setattr(c["replace_random"], "max", round(1.0 - ch["new"], 6)), names="value")
    for name in VALUE_CONTROLS:
        c[name].observe(update, names="value")
    update()

    def row(*children):
        for child in children:
            child.layout.margin = "2px 14px 2px 0"  # a gap, so one control's label does not run into the next
        return w.HBox(list(children), layout=w.Layout(flex_flow="row wrap", align_items="center", width="auto"))

    box = w.VBox(
        [
            c["sample"],
            c["text"],
            row(c["strategy"], c["mixture"], c["seed"]),
            row(c["mask_rate"], c["replace_mask"], c["replace_random"]),
            row(c["synonym"], c["synonym_rate"], c["knowledge"]),
            out,
        ],
        layout=w.Layout(width="auto", max_width="100%", overflow="hidden"),
    )
    box.add_class("obert-mask-widget")
    box.controls = c
    box.state = state
    return box
