"""Cross-document boilerplate (boilerplate.py): lines found in many documents go, with exact outcomes."""

import json

import numpy as np
import pytest
from datatrove.data import Document

from obert_lib import corpus
from obert_lib.config import ConfigError
from obert_lib.corpus.boilerplate import (
    REASON,
    LineDocumentHashes,
    RepeatedLineCount,
    RepeatedLineFilter,
    line_hash,
    line_key,
)
from obert_lib.corpus.config import load_config

FOOTER = "欢迎访问某某旅游网，这里有最全面最及时的旅游资讯和攻略"  # no keyword of the line rules
QUOTE = "读万卷书，行万里路，这是古人留给我们的学习方法。"
ARTICLES = [
    "杭州西湖曲院风荷景区的荷花陆续盛开，每天吸引数万名游客前来观赏。",
    "气象专家提醒市民及时添加衣物，出行注意交通安全，农业生产要提前做好防冻准备。",
    "景区管理部门介绍，今年新增了三条游览线路，并在高峰时段实行单向通行。",
    "长江是中国第一长河，全长约六千三百公里，流经重庆、武汉、南京与上海等城市。",
]


def test_line_key_and_hash():
    assert line_key("© 2023 某某网 版权所有！") == line_key("©2024某某网版权所有") == "0000某某网版权所有"
    assert line_key("About Us | 关于我们") == "aboutus关于我们"
    assert line_hash("——！！") is None  # nothing but punctuation: not counted
    assert line_hash("关于我们 2023") == line_hash("关于我们2024")


def _paragraph_docs(texts_by_doc):
    return [
        Document(text=line, id=f"{doc_id}#{i}", metadata={"doc_id": doc_id})
        for doc_id, lines in texts_by_doc
        for i, line in enumerate(lines)
    ]


def test_three_steps_on_paragraph_documents(tmp_path):
    docs = [(f"d{i}", [ARTICLES[i], FOOTER, FOOTER]) for i in range(3)]  # footer twice in a page: counted once
    docs.append(("d3", [ARTICLES[3], QUOTE]))
    docs.append(("d4", [QUOTE]))
    signer = LineDocumentHashes(str(tmp_path / "sigs"))
    assert len(list(signer.run(_paragraph_docs(docs[:3]), rank=0))) == 9
    assert len(list(signer.run(_paragraph_docs(docs[3:]), rank=1))) == 3
    assert sorted(p.name for p in (tmp_path / "sigs").iterdir()) == ["00000.npy", "00001.npy"]
    list(RepeatedLineCount(str(tmp_path / "sigs"), str(tmp_path / "rep.npy"), min_documents=3).run())
    assert np.load(tmp_path / "rep.npy").tolist() == [line_hash(FOOTER)]  # FOOTER in 3 documents, QUOTE in 2
    f = RepeatedLineFilter(str(tmp_path / "rep.npy"))
    kept = [d.text for d in f.run(_paragraph_docs(docs))]
    assert kept == ARTICLES + [QUOTE, QUOTE]
    assert {k: v.total for k, v in f.stats.stats.items() if k.startswith("line_")} == {f"line_removed_{REASON}": 6}
    # at min_documents 4 nothing is repeated enough
    list(RepeatedLineCount(str(tmp_path / "sigs"), str(tmp_path / "rep4.npy"), min_documents=4).run())
    assert np.load(tmp_path / "rep4.npy").size == 0


def test_pipeline_removes_site_furniture(tmp_path):
    short = "关于我们联系我们广告服务"  # 12 chars: under dedup.min_paragraph_chars (20), the paragraph dedup keeps it
    rows = [{"id": f"p{i}", "text": f"{ARTICLES[i]}\n{FOOTER}\n{short}"} for i in range(4)]
    rows.append({"id": "q1", "text": f"{ARTICLES[0][:10]}游客很多，大家都很开心，拍了很多照片留念。\n{QUOTE}"})
    rows.append({"id": "q2", "text": f"{QUOTE}\n我们一起去了图书馆，借了三本关于历史和地理的好书。"})
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    cfg = {
        "inputs": [str(src)],
        "output_dir": str(tmp_path / "out"),
        "knowledge_base": None,
        "tokenizer": {"vocab_size": 200},
        "dedup": {"repeated_lines": True, "repeated_line_min_documents": 3},
    }
    result = corpus.run(cfg, corpus.CorpusRuntime(progress=False))
    s = result.stats
    assert s["documents_in"] == 6 and s["documents_kept"] == 6 and s["documents_dropped"] == {}
    # the short line goes from all four pages here; of FOOTER (27 chars) the paragraph dedup has already taken
    # the three later copies, and the first goes here; QUOTE (2 documents) is no furniture: its first copy stays
    assert s["lines_removed"][REASON] == 4 + 1
    assert s["lines_removed"]["duplicate_paragraph"] == 3 + 1
    texts = corpus.load_shards(result.output_dir).column("text").to_pylist()
    assert FOOTER not in texts and short not in texts and texts.count(QUOTE) == 1
    assert all(a in texts for a in ARTICLES)


def test_config_errors_name_key_and_fix():
    with pytest.raises(ConfigError, match=r"dedup\.repeated_line_min_documents: must be >= 2"):
        load_config("web", **{"dedup.repeated_line_min_documents": 1})
    with pytest.raises(ConfigError, match=r"dedup\.repeated_lines: expected true/false"):
        load_config("default", **{"dedup.repeated_lines": "yes"})
    assert load_config("web").dedup.repeated_lines and not load_config("default").dedup.repeated_lines
