"""Notebook 02's library side: the previewer, the widget driven from Python, POS counts, figures and their export."""

import re
import warnings

import matplotlib
import pandas as pd
import pytest

from obert_lib.masking import (
    STRATEGIES,
    MaskConfig,
    MaskControls,
    MaskPreviewer,
    WidgetState,
    compact_table,
    export_button,
    export_figures,
    mask_widget,
    masked_pos_counts,
    masked_pos_distribution,
    plot_masked_pos,
    plot_span_lengths,
    plot_strategy_statistics,
    render_controls,
    shown_as_shares,
    span_length_table,
    strategy_comparison,
    token_pos,
)

matplotlib.use("Agg")

TEXT = "李白是唐代著名的浪漫主义诗人，他与杜甫并称李杜。"
# 20 tokens: rates 0.15 / 0.2 / 0.4 / 0.5 give budgets of exactly 3 / 4 / 8 / 10.
# words 北京|是|中国|的|首都|，|也|是|政治|和|文化|的|中心|。 entities 北京 [0,2) 中国 [3,5), clauses [0,8) [9,19)
CAPITAL = "北京是中国的首都，也是政治和文化的中心。"
PRETTY = "她很美丽。"  # words 她|很|美丽; 美丽 has synonyms 漂亮 / 秀丽 / 美好 in the sample lexicon

_TOKEN = re.compile(
    r'<span class="obert-tok(?: obert-(\w+))?" data-type="(\w*)"[^>]*>'
    r"(?:<ruby>(.*?)<rt[^>]*>(.*?)</rt></ruby>|(.*?))</span>"
)


def tokens(html):
    """[(token, kind, shown above, colour type)] of the rendered paragraph."""
    return [(m[2] or m[4], m[0], m[3], m[1]) for m in _TOKEN.findall(html)]


def masked(html):
    return [i for i, t in enumerate(tokens(html)) if t[1]]


def kinds(html):
    return [t[1] for t in tokens(html) if t[1]]


@pytest.fixture(scope="module")
def previewer(sample_corpus):
    return MaskPreviewer.from_corpus(sample_corpus.output_dir)


def test_same_seed_same_view_and_strategies_differ(previewer):
    a, b = previewer.mask(TEXT, "word", 0.15, 3), previewer.mask(TEXT, "word", 0.15, 3)
    assert a == b
    assert a.tokens[:2] == ["李", "白"] and len(a.tokens) == len(a.shown) == len(a.masked) == len(a.kinds)
    clause = previewer.mask(TEXT, "clause", 0.4, 0)  # budget 10 of 24 (9.6, rounded up with this seed): the
    # 8-token clause fits, the 14-token one not
    assert ("clause", 15, 23) in clause.units and sum(clause.masked) == 10
    assert clause.units != a.units and {u[0] for u in a.units} <= {"word", "char"}
    assert previewer.knowledge is not None and previewer.knowledge.names["E001"] == "北京"


def test_view_records_span_types_units_and_knowledge(previewer):
    v = previewer.mask(CAPITAL, MaskConfig(strategy="entity", mask_rate=0.2, knowledge={"enabled": True}), seed=0)
    assert [i for i, m in enumerate(v.masked) if m] == [0, 1, 3, 4]
    assert v.units == [("entity", 0, 2), ("entity", 3, 5)] and v.unit_counts() == {"entity": 2}
    assert "entity" in v.span_types[0] and "word" in v.span_types[0] and v.span_types[8] == []  # '，' is in no span
    assert v.clause[:9] == [0] * 8 + [-1] and v.word_start[:4] == [True, False, True, True]
    assert v.knowledge_entries == [("E001", "北京")]
    assert "".join(v.knowledge_tokens).startswith("北京是中华人民共和国的首都")
    html = render_controls(previewer, {"text": CAPITAL, "strategy": "entity", "mask_rate": 0.2, "knowledge": True})
    assert [t[3] for t in tokens(html)][:9] == [
        "entity",
        "entity",
        "phrase",
        "entity",
        "entity",
        "word",
        "keyword",
        "keyword",
        "",
    ]  # colour: entity > keyword > phrase > word; '，' none


def test_widget_each_control_changes_the_output(previewer):
    box = mask_widget(previewer, [TEXT, CAPITAL])
    c = box.controls
    out = lambda: c["output"].value  # noqa: E731
    assert "".join(t[0] for t in tokens(out())) == TEXT and "strategy <b>word</b>" in out()

    c["sample"].value = CAPITAL  # the picker fills the text box
    assert c["text"].value == CAPITAL and "".join(t[0] for t in tokens(out())) == CAPITAL
    assert len(masked(out())) == 3  # 15% of 20
    assert out() == render_controls(previewer, {"text": CAPITAL})  # the widget shows exactly the plain callback

    c["mask_rate"].value = 0.5
    assert len(masked(out())) == 10 and "masked 10/20 tokens (50.0%, target 50%)" in out()

    c["mask_rate"].value = 0.2
    c["strategy"].value = "entity"  # budget 4 = 北京 + 中国
    assert masked(out()) == [0, 1, 3, 4] and "spans masked: entity 2 ·" in out()
    c["mask_rate"].value = 0.4
    c["strategy"].value = "clause"  # budget 8 = the first clause; the second (10 tokens) does not fit
    assert masked(out()) == list(range(8)) and "strategy <b>clause</b>" in out() and "spans masked: clause 1 ·" in out()

    c["strategy"].value = "mixture"
    c["mixture"].value = "entity:1"
    assert "mixture <b>entity:1</b> drew <b>entity</b>" in out() and "spans masked: entity 2, word 3 ·" in out()
    c["mixture"].value = "clause:1"
    assert "drew <b>clause</b>" in out() and masked(out()) == list(range(8))
    good = out()
    c["mixture"].value = "sentence:1"  # an error shows above the last good view, dimmed: the page does not jump
    assert out().startswith('<div class="obert-error"') and "mixture.sentence: unknown strategy" in out()
    assert out().endswith(
        f'<div class="obert-stale" style="opacity:0.55" title="the last setting that worked">{good}</div>'
    )
    assert masked(out()) == list(range(8))
    c["mixture"].value = "clause:1"
    assert out() == good
    c["strategy"].value = "word"

    c["replace_mask"].value = 1.0  # the random share's slider follows (clamped to 0): only [MASK]
    assert c["replace_random"].value == 0.0
    assert set(kinds(out())) == {"mask"} and len(kinds(out())) == 8
    assert all(t[2] == "[M]" for t in tokens(out()) if t[1])
    c["replace_mask"].value = 0.0
    assert set(kinds(out())) == {"keep"} and all(t[2] == "=" for t in tokens(out()) if t[1])
    c["replace_random"].value = 1.0
    assert set(kinds(out())) == {"random"} and "policy 0%/100%/0%" in out()
    c["replace_random"].value, c["replace_mask"].value = 0.1, 0.8

    assert 'class="obert-knowledge"' not in out()
    c["knowledge"].value = True
    assert 'class="obert-knowledge"' in out() and "<b>北京</b> (E001)" in out() and "knowledge on" in out()
    assert len(tokens(out())) == 20  # K_w is shown apart, never among the (maskable) context tokens
    c["knowledge"].value = False
    assert 'class="obert-knowledge"' not in out()

    c["text"].value = PRETTY
    c["seed"].value = 4  # with this seed the word strategy masks 美丽 (budget 2 of 5 tokens)
    assert masked(out()) == [2, 3] and set(kinds(out())) <= {"mask", "random", "keep"}
    c["synonym"].value = True
    c["synonym_rate"].value = 1.0
    assert kinds(out()) == ["synonym", "synonym"]
    assert "".join(t[2] for t in tokens(out()) if t[1]) in {"漂亮", "秀丽", "美好"} and "synonym 2 ·" in out()
    c["synonym_rate"].value = 0.0
    assert "synonym" not in kinds(out())
    c["seed"].value = 1  # another seed masks 她 and 很 instead
    assert masked(out()) == [0, 1]

    c["text"].value = ""
    assert out() == ""


def test_render_controls_plain_function(previewer):
    assert MaskControls(strategy="mixture", mixture="word:1, clause:3").config().mixture == {"word": 1.0, "clause": 3.0}
    assert MaskControls(replace_mask=1.0, replace_random=0.0, synonym=True).config().synonym.enabled
    assert MaskControls.from_values({"text": "x", "seed": 3, "sample": "y", "output": ""}) == MaskControls("x", seed=3)
    with pytest.raises(TypeError):
        MaskControls.from_values({"mask-rate": 0.2})
    html = render_controls(previewer, MaskControls(text=CAPITAL, replace_mask=0.9, replace_random=0.2))
    assert 'class="obert-error"' in html and "replace_mask" in html
    html = render_controls(previewer, {"text": CAPITAL, "strategy": "mixture", "mixture": "word:0.5,"})
    assert "mixture <b>word:0.5</b> drew <b>word</b>" in html
    html = render_controls(previewer, {"text": CAPITAL, "strategy": "mixture", "mixture": "word:x"})
    assert "is not a number" in html


def test_masked_pos_counts_exact(previewer):
    tk = previewer.tokenizer
    ids, tags = token_pos("李白写诗。", tk)
    assert tags == ["nr", "nr", "n", "n", "x"]
    ids2, tags2 = token_pos(CAPITAL, tk)
    assert tags2[:9] == ["ns", "ns", "v", "ns", "ns", "uj", "d", "d", "x"] and len(ids2) == 20
    # spans that add up to the budget (40%) exactly, so every one of them is masked
    rows = [
        {"text": "李白写诗。", "input_ids": ids, "entity_spans": [[0, 2]], "phrase_spans": [[2, 4]]},
        {
            "text": CAPITAL,
            "input_ids": ids2,
            "entity_spans": [[0, 2], [3, 5], [11, 13], [14, 16]],
            "phrase_spans": [[2, 5], [10, 13], [17, 19]],
        },
    ]
    configs = {s: MaskConfig(strategy=s, mask_rate=0.4) for s in ("entity", "phrase")}
    counts = masked_pos_counts(rows, tk, configs=configs)
    got = {(r.strategy, r.pos): r.count for r in counts.itertuples()}
    assert got == {
        ("entity", "nr"): 2,
        ("entity", "ns"): 4,
        ("entity", "n"): 4,
        ("phrase", "n"): 6,
        ("phrase", "v"): 2,
        ("phrase", "ns"): 2,
    }
    share = masked_pos_distribution(counts, top_k=2)  # n (10) and ns (6) overall; nr and v go to 'other'
    assert list(share.columns) == ["n", "ns", "other"] and list(share.index) == ["entity", "phrase"]
    assert share.loc["entity"].round(6).tolist() == [0.4, 0.4, 0.2]
    assert share.loc["phrase"].round(6).tolist() == [0.6, 0.2, 0.2]
    fig = plot_masked_pos(share)
    assert fig.axes[0].get_title().startswith("各策略") and fig.axes[0].get_xticklabels()[0].get_text() == "n\n名词"
    with pytest.raises(ValueError, match="input_ids are not the tokens"):
        masked_pos_counts([{**rows[0], "input_ids": ids2}], tk, configs=configs)


def test_corpus_statistics_figures_and_export(previewer, sample_corpus, tmp_path):
    from obert_lib import corpus

    rows = corpus.load_shards(sample_corpus.output_dir).slice(0, 120).to_pylist()
    table = strategy_comparison(rows, previewer.tokenizer, knowledge=previewer.knowledge)
    assert table["strategy"].tolist() == [*STRATEGIES, "mixture", "word + synonym", "entity + knowledge"]
    stats = table.set_index("strategy")
    assert (stats["mask_rate"].sub(0.15).abs() < 0.01).all() and (stats["special_masked"] == 0).all()
    assert stats.loc["word + synonym", "share_synonym"] > 0
    assert stats.drop("word + synonym")["share_synonym"].eq(0).all()
    assert stats.loc["mixture", "config"] == "word:0.4+entity:0.2+phrase:0.2+clause:0.2"
    lengths = span_length_table(rows, previewer.tokenizer)
    fig = plot_span_lengths(lengths)
    assert sum(ax.get_visible() for ax in fig.axes) == len(STRATEGIES)
    assert [ax.get_title().split(" ")[0] for ax in fig.axes[: len(STRATEGIES)]] == list(STRATEGIES)

    with warnings.catch_warnings(record=True) as caught:  # the figures set up the CJK font themselves: no boxes
        warnings.simplefilter("always")
        written = export_figures({"02_span_lengths": fig}, tmp_path / "a")
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert [p.name for p in written] == ["02_span_lengths.png", "02_span_lengths.svg"]
    assert all(p.stat().st_size > 1000 for p in written)
    box = export_button(
        {
            "02_masked_pos": plot_masked_pos(
                masked_pos_distribution(pd.DataFrame({"strategy": ["word"], "pos": ["n"], "count": [3]}))
            )
        },
        tmp_path / "b",
    )
    assert not (tmp_path / "b").exists()
    box.button.click()
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["02_masked_pos.png", "02_masked_pos.svg"]
    assert box.status.value == f"wrote 2 files into {tmp_path / 'b'}: 02_masked_pos (png, svg)"
    assert repr(written) == f"wrote 2 files into {tmp_path / 'a'}: 02_span_lengths (png, svg)"  # no list of paths


class _RecordingFigure:
    """A figure whose savefig records what the export button shows while it writes (or fails)."""

    def __init__(self, box_ref, fail=False):
        self.box_ref, self.fail, self.seen = box_ref, fail, []

    def savefig(self, path, **_):
        button = self.box_ref[0].button
        self.seen.append((button.description, button.disabled, self.box_ref[0].status.value.split(" into ")[0]))
        if self.fail:
            raise OSError("No space left on device")
        path.write_bytes(b"x")


def test_export_button_shows_it_is_working_and_what_it_wrote(tmp_path):
    ref = []
    fig = _RecordingFigure(ref)
    ref.append(export_button({"f": fig}, tmp_path))
    box = ref[0]
    assert (box.button.description, box.button.icon, box.button.disabled) == ("export figures", "download", False)
    box.button.click()
    assert fig.seen == [("exporting…", True, "writing 1 figures")] * 2  # png, then svg: both while it says so
    assert (box.button.description, box.button.icon, box.button.disabled) == ("export figures", "download", False)
    assert box.status.value == f"wrote 2 files into {tmp_path}: f (png, svg)"
    ref[0] = export_button({"g": _RecordingFigure(ref, fail=True)}, tmp_path)
    ref[0].button.click()
    assert "export failed: No space left on device" in ref[0].status.value and not ref[0].button.disabled


def test_view_html_reads_in_light_and_dark_themes(previewer):
    html = render_controls(previewer, {"text": CAPITAL, "strategy": "entity", "mask_rate": 0.2, "knowledge": True})
    root = re.match(r'<div class="obert-view" style="([^"]*)">', html)[1]
    assert root.startswith("font-family:'Noto Sans CJK SC', 'Source Han Sans SC', 'WenQuanYi Micro Hei'")
    assert "color:var(--jp-ui-font-color1, #212529);background:var(--jp-layout-color1, #ffffff)" in root
    # a token on a span colour: dark text on it (white-on-pastel in the dark theme otherwise); none: theme colour
    styles = re.findall(r'class="obert-tok[^"]*" data-type="(\w*)" title="[^"]*" style="([^"]*)"', html)
    assert styles[0][1].startswith("background:#b2f2bb;color:#212529")
    assert styles[8] == ("", "")  # '，': in no span, so the theme's text colour
    assert styles[7][1].endswith("border-bottom:2px solid var(--jp-ui-font-color2, #495057)")  # clause underline
    assert '<rt style="color:var(--jp-ui-font-color1, #212529)">[M]</rt>' in html
    stats = re.search(r'<div class="obert-stats" style="([^"]*)"', html)[1]
    assert stats == "font-size:90%;color:var(--jp-ui-font-color1, #212529);margin-top:4px"
    knowledge = re.search(r'<div class="obert-knowledge" style="([^"]*)"', html)[1]
    assert "background:var(--jp-layout-color2, #f1f3f5);color:var(--jp-ui-font-color1, #212529)" in knowledge
    error = render_controls(previewer, {"text": CAPITAL, "replace_mask": 0.9, "replace_random": 0.2})
    assert error.startswith('<div class="obert-error" style="color:var(--jp-error-color1, #c92a2a);')


def test_widget_fits_a_laptop_and_applies_text_on_enter_or_blur(previewer):
    import ipywidgets as w

    box = mask_widget(previewer, [TEXT, CAPITAL])
    c = box.controls
    controls = {k: v for k, v in c.items() if k != "output"}
    for name, widget in controls.items():
        assert widget.tooltip and widget.tooltip != "null", name  # hover text on every control
        assert widget.layout.width != "100%", name  # nothing 100% wide beside a label
        if widget.description:
            assert widget.style.description_width == "initial", name  # labels never cut
    assert all(not c[k].continuous_update for k in ("text", "mixture", "mask_rate", "replace_mask", "synonym_rate"))
    rows = [child for child in box.children if isinstance(child, w.HBox)]
    assert len(rows) == 3 and all(r.layout.flex_flow == "row wrap" for r in rows)
    assert c["mixture"].disabled and c["synonym_rate"].disabled  # they apply only with 'mixture' / synonyms on
    c["strategy"].value = "mixture"
    c["synonym"].value = True
    assert not c["mixture"].disabled and not c["synonym_rate"].disabled

    assert c["sample"].value == TEXT
    c["text"].value = TEXT + "他"  # edited: no sample any more, and the view follows the text
    assert c["sample"].value is None and "".join(t[0] for t in tokens(c["output"].value)) == TEXT + "他"
    c["sample"].value = CAPITAL
    assert c["text"].value == CAPITAL and c["sample"].value == CAPITAL


def test_widget_state_keeps_the_last_good_view_under_an_error(previewer):
    state = WidgetState(previewer)
    assert state.render({"text": CAPITAL, "strategy": "mixture", "mixture": "word:x"}).count("obert-error") == 1
    assert "obert-stale" not in state.render({"text": CAPITAL, "strategy": "mixture", "mixture": "word"})
    good = state.render({"text": CAPITAL, "strategy": "mixture", "mixture": "word:1"})
    assert good == render_controls(previewer, {"text": CAPITAL, "strategy": "mixture", "mixture": "word:1"})
    for typing in ("word:1, e", "word:1, entity:"):  # half-typed: the error above, the last good view below
        shown = state.render({"text": CAPITAL, "strategy": "mixture", "mixture": typing})
        assert shown.endswith(f'title="the last setting that worked">{good}</div>') and "obert-error" in shown
    assert state.render({"text": " "}) == "" and state.last_good == ""


def test_comparison_table_and_shown_as_figure():
    df = pd.DataFrame(
        {
            "strategy": ["word", "entity"],
            "tokens": [100, 100],
            "mask_rate": [0.15012, 0.14991],  # 0.150 both at 3 decimals: constant
            "share_mask": [0.8, 0.75],
            "share_random": [0.1, 0.125],
            "share_kept": [0.1, 0.125],
            "share_synonym": [0.0, 0.2],
            "mean_span_length": [1.23456, 2.0],
        }
    )
    table = compact_table(df)
    assert list(table.data.columns) == [
        "strategy",
        "share_mask",
        "share_random",
        "share_kept",
        "share_synonym",
        "mean_span_length",
    ]
    assert table.data["mean_span_length"].tolist() == [1.235, 2.0] and table.caption == (
        "same in every row: tokens 100, mask_rate 0.15"
    )
    shares = shown_as_shares(df)
    assert shares.round(6).to_dict("index") == {
        "word": {"[MASK]": 0.8, "random": 0.1, "kept": 0.1, "synonym": 0.0},
        "entity": {"[MASK]": 0.6, "random": 0.1, "kept": 0.1, "synonym": 0.2},
    }
    fig = plot_strategy_statistics(df)
    left = fig.axes[0]
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["[MASK]", "random", "kept", "synonym"]
    assert [round(p.get_height(), 6) for p in left.patches[:2]] == [0.8, 0.6]  # the [MASK] bars
    assert "mask rate" not in left.get_title()
