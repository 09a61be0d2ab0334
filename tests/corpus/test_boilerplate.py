"""Cross-document boilerplate (boilerplate.py): lines found in many documents go, with exact outcomes."""

import json

import pytest
from datatrove.data import Document

from obert_lib import corpus
from obert_lib.config import ConfigError
from obert_lib.corpus.boilerplate import REASON, line_hash, line_key
from obert_lib.corpus.config import DedupConfig, load_config
from obert_lib.corpus.dedup_index import DedupDecisions, DedupSignatures
from obert_lib.corpus.kept_paragraphs import KeptParagraphs

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


def _three_steps(tmp_path, tasks, min_documents):
    """DedupSignatures per task, DedupDecisions, KeptParagraphs per task: the kept paragraph texts and the
    KeptParagraphs counts."""
    cfg = DedupConfig(repeated_lines=True, repeated_line_min_documents=min_documents)
    sigs, decisions = str(tmp_path / "sigs"), str(tmp_path / f"decisions-{min_documents}")
    for rank, docs in enumerate(tasks):
        texts = ["\n".join(lines) for _, lines in docs]
        signer = DedupSignatures(sigs, cfg, split_min_chars=1)
        list(signer.run((Document(text=t, id=d) for (d, _), t in zip(docs, texts)), rank=rank))
    list(DedupDecisions(sigs, decisions, tasks=len(tasks), dedup=cfg).run())
    kept, counts = [], {}
    for rank, docs in enumerate(tasks):
        step = KeptParagraphs(decisions, 1, str(tmp_path / "kept"), removed={})
        kept += [p.text for p in step.run((Document(text="\n".join(lines), id=d) for d, lines in docs), rank=rank)]
        for k, v in step.stats.stats.items():
            counts[k] = counts.get(k, 0) + v.total
    return kept, counts


def test_signatures_decisions_and_kept_paragraphs(tmp_path):
    docs = [(f"d{i}", [ARTICLES[i], FOOTER, FOOTER]) for i in range(3)]  # footer twice in a page: counted once
    docs.append(("d3", [ARTICLES[3], QUOTE]))
    docs.append(("d4", [QUOTE]))
    kept, counts = _three_steps(tmp_path, [docs[:3], docs[3:]], min_documents=3)
    # FOOTER (27 characters, >= dedup.min_paragraph_chars) is in 3 documents: its 5 later copies go as duplicate
    # paragraphs first, its first copy as repeated_line; QUOTE (2 documents) is no furniture: its first copy stays
    assert kept == ARTICLES + [QUOTE]
    assert counts[f"line_removed_{REASON}"] == 1 and counts["line_removed_duplicate_paragraph"] == 5 + 1
    assert counts["documents_kept"] == 5
    # at min_documents 4 nothing is repeated enough: the footer's first copy stays
    kept, counts = _three_steps(tmp_path, [docs[:3], docs[3:]], min_documents=4)
    assert kept == [ARTICLES[0], FOOTER] + ARTICLES[1:] + [QUOTE] and f"line_removed_{REASON}" not in counts


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
