"""obert_lib.corpus._textscan (native/textscan.c) behind normalize.py and filters.py.

Every public function gives exactly the result of its pure-Python reference (`_reference_*`, the code the
fast paths replaced) on every string of the shared FewCLUE data, on hand-written tricky inputs and on random
strings; and the class tables the scans read hold exactly what the reference patterns, the Unicode tables
and OpenCC's dictionaries say.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import re
import sys
import unicodedata
from pathlib import Path

import pytest
from datatrove.data import Document

from obert_lib.corpus import _textscan, filters, normalize
from obert_lib.corpus.cleaning import LineRules
from tests.conftest import shared_file

EVERYTHING = _textscan.code_points(0, sys.maxunicode + 1)

NORMALIZE = [
    "strip_html",
    "nfkc_keep_cjk_punct",
    "remove_control_chars",
    "normalize_whitespace",
    "remove_spaces_between_cjk",
    "traditional_to_simplified",
]
FILTERS = [
    "cjk_count",
    "is_navigation_line",
    "is_boilerplate_line",
    "is_seo_spam_line",
    "scrub_private",
    "non_space_count",
    "cjk_ratio",
    "top_char_fraction",
    "duplicate_line_fraction",
    "spam_keyword_hits",
    "punctuation_ratio",
    "digit_ratio",
    "duplicate_ngram_char_fraction",
]
FUNCTIONS = [(normalize, name) for name in NORMALIZE] + [(filters, name) for name in FILTERS]

TRICKY = [
    "",
    " ",
    "\n",
    "\n\n",
    " \n ",
    "\t",
    "\u3000",
    "\xa0",
    "a\n",
    "\na",
    "a \nb",
    "a\n b",
    "a  b",
    "a\tb",
    "a\u3000b",
    # HTML
    "<p>北京&nbsp;是&amp;首都</p><br/>长江",
    '<span class="x">故宫</span>&lt;b&gt;',
    "a < b & c",
    "<DIV>1</Div><br>",
    "&#x4e2d;&#25991;&copy",
    "<<>>",
    "&",
    "<",
    "<p",
    "< / p >",
    # full-width ASCII, compatibility forms, combining marks and composition
    "ＧＤＰ在２０１９年，增长！（约）",
    "ｈｔｔｐｓ：／／ｗｗｗ．ｅｘａｍｐｌｅ．ｃｏｍ",
    "１３８００１３８０００",
    "ﬁ Ⅻ ① ㍿ ¼ ² µ Å K",
    "e\u0301",
    "，\u0301",
    "\u0301",
    "A\u030a",
    "\u1100\u1161",
    "가\u11a8",
    "\u1161",
    "\u0bc6\u0bbe",
    "ｅ\u0301",
    "中\u0301",
    "…\u0301",
    "\u0f73",
    "\u0344",
    "\uf900\uf901",
    "\U0002f800",
    "ā á ǎ à",
    "…",
    "～〜",
    # zero-width, control and format characters
    "北\u200b京\x07\n上海\ufeff",
    "\u200d",
    "\U000e0001\U000e0041",
    "\u00ad",
    "a\x00b",
    "\x00",
    "\x7f\x85\x1c",
    "北京\r\n上海\r\n",
    "a\rb",
    "\u2028\u2029",
    "\x0b\x0c",
    # traditional Chinese (characters, phrase-only conversions)
    "臺灣的故宮與長城",
    "答覆",
    "反反覆覆",
    "深沈",
    "乾隆",
    "頭髮",
    "瞭解",
    "碼",
    "坏",
    "捏坏",
    "著名",
    "覆盖",
    "沈阳",
    # URLs, e-mail addresses, phone numbers
    "https://x.example.com/a?b=1",
    "HTTP://X.COM",
    "Www.Example.com",
    "wWw.a",
    "httpſ://x",
    "ww.w",
    "://",
    "a://b",
    "见www.baidu.com。",
    "mailto:a@b.cn",
    "a.b@example.com",
    "@@",
    "x@y",
    "x@y.z",
    "联系138-0013-8000或010-12345678",
    "13800138000",
    "138 0013 8000",
    "٠١٣٨٠٠١٣٨٠٠٠",
    "010-1234567",
    "0101-12345678",
    "1380013800",
    "11380013800",
    "2019年12月31日12时",
    "电话:12345678901",
    "1234567890",
    "0１２3-４５６７８９０",
    "x13800138000y",
    "1" * 30,
    # emoji, wide characters
    "😀北京😀",
    "👨\u200d👩\u200d👧",
    "🇨🇳",
    "𠀀𪚥",
    # spaces between CJK characters
    "北京 是 AI 首都",
    "北京  上海",
    "， 。",
    "中 、",
    "a 中",
    "中 ",
    " 中",
    "中 中 中",
    "中　中",
    # line rules
    "首页 | 百科 | 分类 | 特色 | 帮助 | 登录",
    "网站首页 > 百科 > 地理 > 城市",
    "a||b||c||d",
    "a b c d",
    "abcdefghij k l m",
    "首页 | 百科。| 分类 | 特色",
    "减肥药 减肥药哪个好 减肥药排行榜 最有效的减肥药 减肥药价格",
    "a a a a",
    "ab ab ab ab",
    "成都旅游_成都旅游攻略_成都必去景点大全_成都旅游多少钱-某某旅游网",
    "北京 上海 广州 深圳",
    "ab,ab，ab|ab",
    "ab abc abcd x!",
    "版权所有 © 2008-2023 某某百科 京ICP备12345678号",
    "（责任编辑：王某某）",
    "原标题：北京今日降温",
    "Copyright 2020",
    "COPYRIGHT",
    "收藏 |",
    "点赞 12",
    "点赞12x",
    "(编辑:张三)",
    "本文来自",
    "x本文",
    "上一篇：",
    "声明：本站",
    "加微信免费领取",
    "加微 信",
    "客服QQ",
    "客服qq",
    "领红包领红包领红包",
    "领取红包",
    "恭喜您获得",
    "日赚日赚",
    "包过包",
    # long texts
    "北京是中国的首都。" * 1200,
    "哈" * 10000,
    "长江是中国第一长河啊" * 1000,
    "a b " * 3000,
    "中 " * 5000,
]
# Pieces of the random strings: single characters of every class the scans read, and whole tokens of the patterns.
PIECES = list(
    " \n\t\r\u3000\xa0\x00\u200b中国北京，。！!?、awWſ.:/@13805-_|｜>»·５٣e\u0301\u1100\u1161臺覆答坏<&;pbrＡ…😀xy©"
) + [
    "http://",
    "www.",
    "138",
    "0013",
    "<br>",
    "&amp;",
    "答覆",
    "编辑：",
    "版权所有",
    "加微信",
    "领红包",
    "客服QQ",
    "点赞",
    "收藏",
    "转载",
    "^",
    "ab",
    "abc",
    "010-",
    "1234567",
]


@functools.cache
def random_strings(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(PIECES, k=rng.randrange(0, 40))) for _ in range(count)]


def json_strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in json_strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in json_strings(v)]
    return []


@pytest.fixture(scope="module")
def fewclue() -> list[str]:
    """Every distinct string value of every row of the FewCLUE JSON-lines files (a line that is not JSON: itself)."""
    root = shared_file("fewclue")
    seen: dict[str, None] = {}
    for path in sorted(root.glob("*/*.json")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = line
            seen.update(dict.fromkeys(json_strings(row)))
    assert len(seen) > 50000
    return list(seen)


def outcome(fn, *args):
    """The result of fn(*args), or the type of the exception it raises."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - a raised exception is an outcome to compare too
        return type(e)


def assert_same(module, name: str, inputs) -> None:
    fast, reference = getattr(module, name), getattr(module, f"_reference_{name}")
    bad = []
    for text in inputs:
        got, want = outcome(fast, text), outcome(reference, text)
        if got != want or type(got) is not type(want):
            bad.append((text[:80], got, want))
    assert not bad, f"{name}: {len(bad)} differences, first: {bad[:3]}"


def with_lines(texts: list[str]) -> list[str]:
    return texts + [line for t in texts if "\n" in t for line in t.split("\n")]


@pytest.mark.parametrize(("module", "name"), FUNCTIONS, ids=[name for _, name in FUNCTIONS])
def test_same_as_reference_on_fewclue(fewclue, module, name):
    assert_same(module, name, fewclue)


@pytest.mark.parametrize(("module", "name"), FUNCTIONS, ids=[name for _, name in FUNCTIONS])
def test_same_as_reference_on_tricky_and_random_text(module, name):
    texts = with_lines(TRICKY + random_strings(20000))
    if name != "traditional_to_simplified":  # OpenCC raises on lone surrogates, checked below
        texts += ["\ud800", "a\udfffb 中\udc00文"]
    assert_same(module, name, texts)


def test_normalize_chain_then_line_rules_on_fewclue(fewclue):
    """The rules after Normalize see normalised text: compare them there too, where it differs from the input."""
    chain = ("nfkc_keep_cjk_punct", "remove_control_chars", "traditional_to_simplified", "normalize_whitespace")
    changed = []
    for text in fewclue:
        out = normalize.strip_html(text)
        for name in chain:
            out = getattr(normalize, name)(out)
        if out != text:
            changed.append(out)
    assert changed  # FewCLUE holds full-width forms and traditional characters
    for module, name in FUNCTIONS:
        assert_same(module, name, with_lines(changed))


NORMALIZER_FLAGS = list(itertools.product([True, False], repeat=3))  # html, nfkc, t2s


def assert_normalizer_same(texts: list[str], flags=NORMALIZER_FLAGS) -> None:
    for html, nfkc, t2s in flags:
        normalizer = normalize.DocumentNormalizer(html, nfkc, t2s)
        bad = [
            (t[:80], html, nfkc, t2s)
            for t in texts
            if outcome(normalizer, t) != outcome(normalize._reference_normalize_document, t, html, nfkc, t2s)
        ]
        assert not bad, f"DocumentNormalizer: {len(bad)} differences, first: {bad[:3]}"


def test_document_normalizer_is_the_reference_chain(fewclue):
    """Normalize's one-scan screen (is_clean) only skips texts that every step of the chain leaves unchanged."""
    assert_normalizer_same(fewclue, [(True, True, True), (False, True, True), (True, False, True), (True, True, False)])
    assert_normalizer_same(with_lines(TRICKY + random_strings(20000)))
    assert not _textscan.is_clean("a\u3000b", 0) and _textscan.is_clean("北京", _textscan.NFKC)
    assert marked(_textscan.HTML) == {"<", "&"}


LINE_RULE_FLAGS = list(itertools.product([True, False], repeat=5))  # nav, boilerplate, seo, spam, private


def assert_line_rules_screen_exact(texts: list[str], flags=LINE_RULE_FLAGS) -> None:
    """LineRules.clean (screen first) and apply_rules (every rule on every line) give the same text, metadata, stats."""
    for nav, boiler, seo, spam, private in flags:
        screened, full = LineRules(nav, boiler, seo, spam, private), LineRules(nav, boiler, seo, spam, private)
        for text in texts:
            a, b = Document(text=text, id="a"), Document(text=text, id="a")
            screened.clean(a)
            full.apply_rules(b)
            assert (a.text, a.metadata) == (b.text, b.metadata), (text[:80], nav, boiler, seo, spam, private)
        assert {k: v.total for k, v in screened.stats.stats.items()} == {
            k: v.total for k, v in full.stats.stats.items()
        }


def test_line_rules_screen_never_skips_a_change(fewclue):
    """line_rules_may_apply is a necessary condition of every line rule: a document it passes is left as it is."""
    one_off = [tuple(i != k for i in range(5)) for k in range(5)]
    assert_line_rules_screen_exact(fewclue, [(True,) * 5, *one_off])
    assert_line_rules_screen_exact(with_lines(TRICKY + random_strings(5000)))
    assert (
        sum(filters.line_rules_may_apply(t, filters.line_rule_bits()) for t in fewclue) < len(fewclue) / 5
    )  # it screens


def test_seo_spam_counts_repeats_across_items():
    """The char-count precheck of seo_spam keeps items that repeat only through other items (and drops the rest)."""
    for line in (
        "ab ab ab x",
        "ab xab yab z",
        "ab xab y z",
        "北京 北京旅游 北京攻略 住宿",
        "北京 北京旅游 上海 住宿",
        "aab aab aab c",
    ):
        assert filters.is_seo_spam_line(line) == filters._reference_is_seo_spam_line(line), line


def test_t2s_raises_like_opencc_on_surrogates():
    for text in ("\ud800", "a\udfffb"):
        assert outcome(normalize.traditional_to_simplified, text) is UnicodeEncodeError
        assert outcome(normalize._reference_traditional_to_simplified, text) is UnicodeEncodeError


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 13])
def test_duplicate_ngram_sizes(n):
    for text in TRICKY + random_strings(5000, seed=n):
        got = filters.duplicate_ngram_char_fraction(text, n)
        assert got == filters._reference_duplicate_ngram_char_fraction(text, n), (text[:80], n)


def test_duplicate_ngram_odd_sizes_follow_the_reference():
    for n in (0, -1, True):
        for text in ("", "北京", "哈哈哈哈", "ab ab"):
            assert outcome(filters.duplicate_ngram_char_fraction, text, n) == outcome(
                filters._reference_duplicate_ngram_char_fraction, text, n
            )


def assert_metrics_equal_the_single_measures(texts: list[str]) -> None:
    for text in texts:
        assert filters.quality_metrics(text) == (
            filters.cjk_count(text),
            filters.non_space_count(text),
            filters.cjk_ratio(text),
            filters.top_char_fraction(text),
            filters.duplicate_line_fraction(text),
            filters.punctuation_ratio(text),
            filters.digit_ratio(text),
            filters.duplicate_ngram_char_fraction(text),
        ), text[:80]


def test_quality_metrics_equal_the_single_measures():
    assert_metrics_equal_the_single_measures(TRICKY + random_strings(5000))
    assert filters.quality_metrics("长江是中国第一长河啊" * 3, n=10).duplicate_ngram_char_fraction == 1.0
    with pytest.raises(ValueError):
        filters.quality_metrics("北京", n=0)


def test_quality_metrics_on_fewclue(fewclue):
    assert_metrics_equal_the_single_measures(fewclue)


# ---- the class tables ----


def marked(bit: int) -> set[str]:
    return {c for c in EVERYTHING if _textscan.has(c, bit)}


@pytest.mark.parametrize(
    ("bit", "pattern"),
    [
        ("SPACE", r"\s"),
        ("DIGIT", r"\d"),
        ("PUNCT", filters._PUNCT.pattern),
        ("CJK", filters._CJK.pattern),
        ("SENT_END", filters._SENTENCE_END.pattern),
        ("CONTROL", normalize._CONTROL.pattern),
        ("NAV_SEP", filters._NAV_SPLIT.pattern),
        ("SEO_SEP", filters._SEO_SPLIT.pattern),
        ("CJK_STOP", normalize._CJK_OR_STOP),
    ],
)
def test_class_is_what_the_pattern_matches(bit, pattern):
    """Each class holds exactly the characters the pattern matches standing alone."""
    rx = re.compile(pattern)
    assert marked(getattr(_textscan, bit)) == {c for c in EVERYTHING if rx.fullmatch(c)}


def test_whitespace_class_is_str_isspace():
    assert marked(_textscan.SPACE) == {c for c in EVERYTHING if c.isspace()}


def test_patterns_the_scans_reproduce_are_unchanged():
    """The scans stand for these exact patterns (textscan.c spells out some of their characters)."""
    assert normalize._SPACES.pattern == r"[ \t\u3000\xa0]+"
    assert (
        normalize._SPACE_BETWEEN_CJK.pattern == r"(?<=[\u3400-\u9fff，。！？：；、]) (?=[\u3400-\u9fff，。！？：；、])"
    )
    assert filters._URL.pattern == r"(https?://|www\.)[A-Za-z0-9\-._~/?%&=#:+@!$]+" and filters._URL.flags & re.I
    assert filters._EMAIL.pattern == r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"
    assert filters._PHONE.pattern == r"(?<!\d)(1[3-9]\d[- ]?\d{4}[- ]?\d{4}|0\d{2,3}-\d{7,8})(?!\d)"
    # private_candidates looks for ':', '/', '.' and w/W only: no other character matches them ignoring case
    for literal, chars in ((":", {":"}), ("/", {"/"}), (r"\.", {"."}), ("w", {"w", "W"})):
        assert set(re.findall(literal, EVERYTHING, re.I)) == chars


def test_nfkc_class_covers_every_change_and_composition():
    """The premises of the NFKC fast path, checked on the whole code space: every character outside the NFKC
    class (Chinese punctuation aside) is its own NFKC, has combining class 0 and is never the second
    character of a canonical decomposition (so never composes with the one before): NFKC_QC=Yes."""
    unstable = marked(_textscan.NFKC)
    stable = [c for c in EVERYTHING if c not in unstable and c not in normalize._CJK_PUNCT]
    others = [c for c in stable if c != "\x00"]
    assert unicodedata.normalize("NFKC", "\x00".join(others)).split("\x00") == others  # NUL never composes
    assert not [c for c in stable if unicodedata.combining(c)]
    seconds = {
        chr(int(h, 16))
        for c in EVERYTHING
        if (d := unicodedata.decomposition(c)) and not d.startswith("<")
        for h in d.split()[1:]
    }
    seconds |= {chr(c) for c in range(0x1161, 0x1176)} | {chr(c) for c in range(0x11A8, 0x11C3)}  # Hangul V, T jamo
    assert not seconds.intersection(stable)
    assert not [
        c
        for c in EVERYTHING[normalize._DECOMPOSABLE_BELOW :]
        if unicodedata.decomposition(c) or unicodedata.combining(c)
    ]
    assert not unstable.intersection(normalize._CJK_PUNCT)


def test_t2s_class_holds_a_character_of_every_key_opencc_converts():
    """OpenCC replaces only dictionary keys: a text without a T2S character holds no key that changes."""
    converter = normalize._t2s_converter()
    entries = normalize._opencc_dictionary_entries(Path(converter.config))
    assert entries is not None and len(entries) > 5000
    changing = [key for key, value in entries if key != value]
    assert [key for key in changing if not _textscan.has(key, _textscan.T2S)] == []
    # the same for every single code point, seen by OpenCC itself rather than through the dictionary dump
    chars = [c for c in EVERYTHING if not 0xD800 <= ord(c) < 0xE000 and c != "\n"]
    converted = converter.convert("\n".join(chars)).split("\n")
    assert len(converted) == len(chars)
    assert [c for c, out in zip(chars, converted) if out != c and not _textscan.has(c, _textscan.T2S)] == []
    # keys alone and inside text convert as OpenCC converts them
    for key, _ in entries:
        for text in (key, f"在{key}中", f"{key}{key}"):
            assert normalize.traditional_to_simplified(text) == converter.convert(text), text
    # and the screen is selective: common simplified text skips OpenCC
    assert not _textscan.has("北京是中国的首都，也是政治和文化中心。", _textscan.T2S)


def test_group_prefilters():
    """A spam keyword / boilerplate pattern can only match a text that holds all its required characters."""
    assert filters._required_chars(r"^\(?（?编辑[:：]") == "编辑"
    assert filters._required_chars(r"[Cc]opyright") == "opyright"
    assert filters._required_chars(r"(?i)abc") == ""
    for keyword in filters.SPAM_KEYWORDS:
        assert _textscan.groups_present(f"x{keyword}y", filters._SPAM_SLOT)
    for pattern in filters.BOILERPLATE_PATTERNS:
        required = filters._required_chars(pattern)
        assert required and _textscan.groups_present(required, filters._BOILERPLATE_SLOT)


def test_groups_present_semantics():
    """All characters of one group must occur; past 64 distinct characters, groups keep only those with a bit."""
    spare = 3  # a slot the modules leave free
    _textscan.set_groups(spare, ("ab", "cd"))
    assert [_textscan.groups_present(t, spare) for t in ("", "a", "b c", "ba", "xcyd", "ac")] == [
        False,
        False,
        False,
        True,
        True,
        False,
    ]
    _textscan.set_groups(spare, ())
    assert not _textscan.groups_present("ab", spare)
    _textscan.set_groups(spare, tuple(chr(0x4E00 + i) * 2 for i in range(70)))
    assert _textscan.groups_present("x", spare)  # groups 65-70 have no character with a bit: always present
    assert _textscan.groups_present("\u4e00\u4e00", spare)


def test_native_functions_reject_non_str():
    for call in (lambda: _textscan.has(b"x", 1), lambda: _textscan.metrics(None, 10), lambda: _textscan.seo_spam(1)):
        with pytest.raises(TypeError):
            call()
    with pytest.raises(ValueError):
        _textscan.ngram_covered("abc", 0)
