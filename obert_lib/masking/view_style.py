"""Colours, fonts and inline CSS of the mask view, readable in JupyterLab's light and dark themes.

Text that sits on a pastel span colour is drawn in a fixed dark colour; everything else takes the theme's
colours through JupyterLab's CSS variables (`var(--jp-..., fallback)`), whose fallbacks are the light
theme's colours, so the same HTML also reads well outside JupyterLab (exported notebooks, reports).
"""

from __future__ import annotations

# Token colours by span type: a token takes the colour of the first type in this order that contains it
# (an entity word is green even though it is also a word); clauses are underlined, words separated by a gap.
TYPE_COLOURS = {"entity": "#b2f2bb", "keyword": "#ffd8a8", "phrase": "#a5d8ff", "word": "#e9ecef"}
ON_PASTEL = "#212529"  # text on a span colour: near-black, readable on all four pastels in either theme
CLAUSE_UNDERLINE = "var(--jp-ui-font-color2, #495057)"
# How a masked token is shown to the model, and the outline that marks it (mid-tone colours: visible on
# white and on JupyterLab's dark background alike).
KIND_STYLES = {
    "mask": ("[MASK]", "2px solid #e03131"),
    "random": ("random token", "2px dashed #f08c00"),
    "keep": ("kept unchanged", "2px dotted #1c7ed6"),
    "synonym": ("synonym", "2px double #9c36b5"),
}

# Chinese text needs a CJK font: the common ones of Linux (Noto / Source Han / WenQuanYi), macOS and Windows.
FONT_STACK = (
    "'Noto Sans CJK SC', 'Source Han Sans SC', 'WenQuanYi Micro Hei', 'PingFang SC', 'Hiragino Sans GB', "
    "'Microsoft YaHei', var(--jp-ui-font-family, sans-serif), sans-serif"
)
TEXT = "var(--jp-ui-font-color1, #212529)"  # the theme's main text colour
MUTED = "var(--jp-ui-font-color2, #495057)"  # secondary text (legend, notes)
BACKGROUND = "var(--jp-layout-color1, #ffffff)"
PANEL = "var(--jp-layout-color2, #f1f3f5)"  # a block set apart (the knowledge segment)
ERROR = "var(--jp-error-color1, #c92a2a)"
KNOWLEDGE_ACCENT = "#7950f2"  # violet: readable on white and on dark grey

VIEW = f"font-family:{FONT_STACK};color:{TEXT};background:{BACKGROUND};max-width:100%;overflow-wrap:anywhere"
STATS = f"font-size:90%;color:{TEXT};margin-top:4px"
LEGEND = f"font-size:85%;color:{MUTED};margin-top:4px"
RUBY_TEXT = f"color:{TEXT}"  # what the model sees, above a masked token (outside its span colour)
KNOWLEDGE = f"margin-top:6px;padding:4px 6px;border-left:4px solid {KNOWLEDGE_ACCENT};background:{PANEL};color:{TEXT}"
ERROR_BOX = f"color:{ERROR};border:1px solid {ERROR};border-radius:3px;padding:2px 6px;margin-bottom:4px"


def token_style(colour: str | None) -> list[str]:
    """Background and text colour of a token: dark text on its span colour, the theme's text without one."""
    return [f"background:{colour}", f"color:{ON_PASTEL}"] if colour else []
