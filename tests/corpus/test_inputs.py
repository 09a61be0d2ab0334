"""Readers and bad input: every document in is kept or dropped under a named reason; nothing crashes."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from obert_lib import corpus

GOOD = "北京是中华人民共和国的首都，也是全国的政治中心和文化中心，历史悠久，名胜古迹众多。"
GOOD2 = "长江是中国第一长河，全长约六千三百公里，流经重庆、武汉、南京与上海等城市，航运发达。"


def _run(tmp_path, inputs, **cfg):
    return corpus.run(
        {
            "inputs": [str(p) for p in inputs],
            "output_dir": str(tmp_path / "out"),
            "knowledge_base": None,
            "tokenizer": {"vocab_size": 200},
            **cfg,
        },
        {"progress": False},
    )


def test_bad_input_is_counted_never_crashes(tmp_path):
    bad = tmp_path / "bad.jsonl"
    with open(bad, "wb") as fh:
        fh.write((json.dumps({"id": "ok", "text": GOOD}, ensure_ascii=False) + "\n").encode())  # 1 kept
        fh.write(b'{"id": "u", "text": "\xff\xfe\xfa broken"}\n')  # 2 invalid utf-8
        fh.write(b'{"id": "t", "text": "truncated\n')  # 3 truncated json
        fh.write(b"[1, 2, 3]\n")  # 4 not an object
        fh.write(b'{"id": "m", "body": "no text field"}\n')  # 5 missing text
        fh.write(b'{"id": "e", "text": ""}\n')  # 6 empty document
        fh.write(
            (json.dumps({"id": "big", "text": "长" * 10_500_000}, ensure_ascii=False) + "\n").encode()
        )  # 7 >10 MB line
        fh.write(bytes(b for b in range(256) if b != 10) * 4 + b"\n")  # 8 binary junk
        fh.write((json.dumps({"id": "ok2", "text": GOOD2}, ensure_ascii=False) + "\n").encode())  # 9 kept
    broken_gz = tmp_path / "broken.jsonl.gz"
    broken_gz.write_bytes(gzip.compress(b'{"id": "x", "text": "abc"}\n')[:15])  # 10 unreadable file
    result = _run(tmp_path, [bad, broken_gz], max_chars=1_000_000)
    s = result.stats
    assert s["documents_kept"] == 2
    assert s["documents_dropped"] == {
        "empty_after_cleaning": 1,
        "invalid_utf8": 2,
        "missing_text": 2,
        "too_long": 1,
        "unreadable_file": 1,
        "unreadable_line": 1,
    }
    assert s["documents_in"] == 10 == s["documents_kept"] + sum(s["documents_dropped"].values())
    where = {(r["id"], r["line"]) for r in result.removed["invalid_utf8"]}
    assert {w[1] for w in where} == {2, 8}
    assert result.removed["unreadable_file"][0]["file"].endswith("broken.jsonl.gz")


def test_compressed_and_other_formats(tmp_path):
    rows = [{"id": "a", "text": GOOD}, {"id": "b", "text": GOOD2}]
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(payload))
    zst = tmp_path / "b.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(payload))
    r = _run(tmp_path / "jz", [gz, zst], dedup={"exact": False, "near": False})
    assert r.stats["documents_in"] == 4 and r.stats["documents_kept"] == 4

    txt = tmp_path / "c.txt"
    txt.write_text(f"{GOOD}\n\n{GOOD2}\n第三段很短\n", encoding="utf-8")
    r = _run(tmp_path / "t", [txt])
    assert r.stats["documents_in"] == 3 and r.stats["documents_kept"] == 2  # 第三段很短 is too short
    r = _run(tmp_path / "tb", [txt], input_format="text_blocks")
    assert r.stats["documents_in"] == 2  # blank-line separated blocks
    assert corpus.load_shards(r.output_dir).column("text").to_pylist() == [GOOD, GOOD2, "第三段很短"][:2]

    pqf = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": ["p1", "p2"], "content": [GOOD, GOOD2]}), pqf)
    r = _run(tmp_path / "p", [pqf], text_key="content")
    assert r.stats["documents_kept"] == 2


def test_portal_pages_keep_body_and_lose_boilerplate(tmp_path):
    page = "\n".join(
        [
            "首页 | 新闻 | 国内 | 国际 | 财经 | 体育 | 娱乐 | 科技 | 汽车",
            "当前位置：首页 > 新闻 > 国内 > 正文",
            "原标题：杭州西湖景区迎来赏荷高峰",
            "本报讯 入夏以来，杭州西湖曲院风荷景区的荷花陆续盛开，每天吸引数万名游客前来观赏。",
            "景区管理部门介绍，今年新增了三条游览线路，并在高峰时段实行单向通行，以保证游客安全。",
            "相关阅读：西湖十景全攻略",
            "（责任编辑：李明）",
            "分享到：微信 微博 QQ空间",
            "版权所有 © 2024 某某网 浙ICP备12345678号 联系电话：0571-88886666",
        ]
    )
    body2 = [
        "本报讯 记者从市气象台获悉，受冷空气影响，本周末全市将出现明显降温，最低气温可能降至零度以下。",
        "气象专家提醒市民及时添加衣物，出行注意交通安全，农业生产要提前做好防冻准备。",
    ]
    page2 = "\n".join(page.split("\n")[:3] + body2 + page.split("\n")[5:])
    src = tmp_path / "portal.jsonl"
    src.write_text(
        "".join(
            json.dumps(
                {"id": f"p{i}", "title": "西湖_西湖旅游_西湖攻略_西湖门票-某某网", "text": t}, ensure_ascii=False
            )
            + "\n"
            for i, t in enumerate([page, page2])
        ),
        encoding="utf-8",
    )
    r = _run(tmp_path, [src])
    texts = corpus.load_shards(r.output_dir).column("text").to_pylist()
    body = [line.replace("本报讯 ", "本报讯") for line in page.split("\n")[3:5] + body2]  # spaces between CJK go
    assert texts == body
    lines = r.stats["lines_removed"]
    assert lines["navigation"] == 4 and lines["boilerplate"] == 10 and lines["seo_spam_title"] == 2


def test_jsonl_reader_rows_exactly(tmp_path):
    """ObertJsonlReader on each kind of row: the document (id, text, metadata) or the drop it yields."""
    from datatrove.io import get_datafolder

    from obert_lib.corpus.readers import DROP_KEY, ObertJsonlReader

    lines = [
        b'{"id": "a", "text": "\xe5\x8c\x97\xe4\xba\xac"}',  # 1 the common row
        b'{"text": "t2"}',  # 2 no id: file:line
        b'{"id": null, "text": "t3"}',  # 3 null id: "None"
        b'{"id": 7, "text": "t4", "lang": "zh", "n": 2, "x": 0.5, "tags": ["a"], "o": {}}',  # 4 scalars kept
        b'{"id": "u", "text": "\xff broken"}',  # 5 invalid UTF-8
        b"[1, 2]",
        b'"just a string"',  # 6, 7 not objects
        b'{"id": "m", "text": 3}',  # 8 text not a string
        b"   ",  # 9 blank: skipped
        b'{"id": "t", "text": "cut',  # 10 truncated
        b'\xef\xbb\xbf{"id": "bom", "text": "t11"}',
    ]  # 11 a BOM: not JSON to orjson
    (tmp_path / "rows.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    reader = ObertJsonlReader(get_datafolder(str(tmp_path)))
    got = [
        (
            d.id,
            d.text,
            d.metadata.get(DROP_KEY),
            {k: v for k, v in d.metadata.items() if k not in ("file", "detail", DROP_KEY)},
        )
        for d in reader.read_file("rows.jsonl")
    ]
    # (the same as before the reader parsed the line's bytes rather than its decoded str, detail messages too)
    assert got == [
        ("a", "北京", None, {"line": 1}),
        ("rows.jsonl:2", "t2", None, {"line": 2}),
        ("None", "t3", None, {"line": 3}),
        ("7", "t4", None, {"lang": "zh", "n": 2, "x": 0.5, "line": 4}),
        ("/rows.jsonl:5", '{"id": "u", "text": "\ufffd broken"}\n', "invalid_utf8", {"line": 5}),
        ("/rows.jsonl:6", "[1, 2]\n", "missing_text", {"line": 6}),
        ("/rows.jsonl:7", '"just a string"\n', "missing_text", {"line": 7}),
        ("/rows.jsonl:8", '{"id": "m", "text": 3}\n', "missing_text", {"line": 8}),
        ("/rows.jsonl:10", '{"id": "t", "text": "cut\n', "unreadable_line", {"line": 10}),
        ("/rows.jsonl:11", '\ufeff{"id": "bom", "text": "t11"}\n', "unreadable_line", {"line": 11}),
    ]
