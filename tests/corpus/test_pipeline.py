import json

import pyarrow.parquet as pq
import pytest

from obert_lib import corpus
from obert_lib.config import ConfigError
from obert_lib.corpus.annotate import SPAN_TYPES
from tests.conftest import shared_file


def _write_jsonl(path, rows):
    with open(path, "wb") as fh:
        for row in rows:
            fh.write(row if isinstance(row, bytes) else (json.dumps(row, ensure_ascii=False) + "\n").encode())
    return path


GOOD = "北京是中华人民共和国的首都，也是全国的政治中心和文化中心，历史悠久，名胜古迹众多。"


def test_hand_written_corpus_exact_outcomes(tmp_path):
    src = _write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "text": "首页 | 百科 | 分类 | 特色 | 帮助\n" + GOOD + "\n版权所有 © 2023 某某百科"},
            {"id": "b", "text": GOOD},  # exact duplicate of a after cleaning
            {"id": "c", "text": "顶"},  # too short
            {"id": "d", "text": "å¤§å®¶å¥½ï¼æ¬¢è¿å¤§å®¶å¥½ï¼æ¬¢è¿"},  # mojibake
            {"id": "e", "text": "哈" * 60},  # repetitive
            b"{not json\n",  # unreadable line
            {"id": "g", "title": "x"},  # no text field
            {"id": "h", "text": "<p>長江是中國第一長河，全長約６３００公里，流經重慶、武漢、南京與上海等城市。</p>"},
        ],
    )
    result = corpus.run(
        {"inputs": [str(src)], "output_dir": str(tmp_path / "out"), "knowledge_base": None},
        corpus.CorpusRuntime(progress=False),
    )
    s = result.stats
    assert s["documents_in"] == 8 and s["documents_kept"] == 2
    assert s["documents_dropped"] == {
        "exact_duplicate": 1,
        "low_cjk_ratio": 1,
        "missing_text": 1,
        "repetitive_characters": 1,
        "too_short": 1,
        "unreadable_line": 1,
    }
    assert s["lines_removed"]["navigation"] == 1 and s["lines_removed"]["boilerplate"] == 1
    table = corpus.load_shards(result.output_dir)
    assert table.column("text").to_pylist() == [
        GOOD,
        "长江是中国第一长河，全长约6300公里，流经重庆、武汉、南京与上海等城市。",
    ]
    # every artefact is written with the resolved config beside it
    for name in ("config.json", "stats.json", "tokenizer/tokenizer.json", "removed/too_short/00000.jsonl"):
        assert (result.output_dir / name).is_file()
    assert json.loads((result.output_dir / "config.json").read_text())["inputs"] == [str(src)]
    assert json.loads((result.output_dir / "removed/exact_duplicate/00000.jsonl").read_text())["id"] == "b"
    bad = json.loads((result.output_dir / "removed/unreadable_line/00000.jsonl").read_text())
    assert bad["file"].endswith("in.jsonl") and bad["line"] == 6  # file and line of the bad input
    lengths = result.lengths  # one row per document in: chars_after of the kept ones, NaN for the dropped
    assert len(lengths) == 8 and lengths["chars_after"].notna().sum() == 2
    kept = lengths.dropna().set_index("doc_id")["chars_after"].to_dict()
    assert kept == {"a": len(GOOD), "h": len("长江是中国第一长河，全长约6300公里，流经重庆、武汉、南京与上海等城市。")}


def test_spans_are_valid_token_ranges(sample_corpus):
    table = corpus.load_shards(sample_corpus.output_dir)
    for row in table.slice(0, 200).to_pylist():
        n = len(row["input_ids"])
        for t in SPAN_TYPES:
            spans = row[f"{t}_spans"]
            assert all(0 <= s < e <= n for s, e in spans), (t, spans, n)


def test_sample_corpus_cleaning_named_drops(sample_corpus):
    s = sample_corpus.stats
    assert s["documents_in"] == 220
    assert s["documents_in"] == s["documents_kept"] + sum(s["documents_dropped"].values())
    removed = {reason: {i["id"] for i in items} for reason, items in sample_corpus.removed.items()}
    assert {"enc-023", "enc-059", "enc-072", "qa-055", "news-055"} <= removed["exact_duplicate"]
    assert {"enc-049", "enc-063", "qa-069", "news-060"} <= removed["near_duplicate"]
    assert {"qa-042", "qa-060", "qa-067"} <= removed["too_short"]
    assert {"enc-040", "qa-048", "news-052"} <= removed["low_cjk_ratio"]
    assert {"qa-045", "qa-058", "news-050", "news-065"} <= removed["spam_keywords"]
    text = "\n".join(corpus.load_shards(sample_corpus.output_dir).column("text").to_pylist())
    for dirt in ("ICP备", "&nbsp;", "<p>", "首页 |", "故宮", "ＧＤＰ", "www.", "@example"):
        assert dirt not in text, dirt
    assert pq.read_table(sample_corpus.shards[0]).schema.field("word_spans").type.value_type.value_type.bit_width == 32


def test_missing_input_and_unknown_key_fail_before_work(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        corpus.run({"inputs": [str(tmp_path / "nope.jsonl")], "output_dir": str(tmp_path / "o")})
    with pytest.raises(
        ConfigError, match="quality.min_cjk_char: unknown key in QualityConfig; did you mean 'min_cjk_chars'"
    ):
        corpus.run({"quality": {"min_cjk_char": 3}})
    assert not (tmp_path / "o").exists()


def test_real_fewclue_text_with_standard_vocab(tmp_path):
    src = shared_file("fewclue/eprstmt/unlabeled.json")
    vocab = shared_file("vocab/bert-base-chinese-vocab.txt")
    result = corpus.run(
        {
            "inputs": [str(src)],
            "text_key": "sentence",
            "output_dir": str(tmp_path / "o"),
            "tokenizer": {"vocab_file": str(vocab)},
            "max_documents": 2000,
            "quality": {"min_cjk_chars": 5},
        },
        corpus.CorpusRuntime(progress=False),
    )
    s = result.stats
    assert s["documents_in"] == 2000 == s["documents_kept"] + sum(s["documents_dropped"].values())
    assert s["documents_kept"] > 1000 and s["vocab_size"] == 21128
    row = corpus.load_shards(result.output_dir).slice(0, 1).to_pylist()[0]
    assert max(row["input_ids"]) < 21128 and row["word_spans"]


def test_shards_load_with_datasets_and_card_is_written(sample_corpus, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from datasets import load_dataset

    ds = load_dataset(
        "parquet",
        data_files=str(sample_corpus.output_dir / "shards" / "*.parquet"),
        split="train",
        cache_dir=str(sample_corpus.output_dir / "_hf_cache"),
    )
    assert len(ds) == sample_corpus.stats["paragraphs_out"]
    assert set(ds.column_names) >= {"input_ids", "word_spans", "clause_spans", "text"}
    card = (sample_corpus.output_dir / "README.md").read_text(encoding="utf-8")
    assert f"documents in: {sample_corpus.stats['documents_in']}" in card and "| exact_duplicate |" in card
    assert sample_corpus.stats["bytes_in"] > 0 and sample_corpus.stats["bytes_out"] > 0


def test_paragraph_dedup_across_documents_and_tasks(tmp_path):
    shared = "本平台致力于为广大用户提供真实实用的知识分享服务，欢迎大家积极参与讨论交流。"
    bodies = [
        "长江是中国第一长河，全长约六千三百公里，流经重庆、武汉、南京与上海等城市。",
        "黄河是中国第二长河，发源于青海省巴颜喀拉山脉，流经九个省区，最后注入渤海。",
        "泰山位于山东省泰安市，是五岳之首，自古以来就有很多帝王到这里举行封禅大典。",
    ]
    a = _write_jsonl(
        tmp_path / "a.jsonl",
        [{"id": "a0", "text": bodies[0] + "\n" + shared}, {"id": "a1", "text": bodies[1] + "\n" + shared}],
    )
    b = _write_jsonl(tmp_path / "b.jsonl", [{"id": "b0", "text": bodies[2] + "\n" + shared + "\n好。"}])
    result = corpus.run(
        {"inputs": [str(a), str(b)], "output_dir": str(tmp_path / "out"), "knowledge_base": None},
        {"workers": 2, "progress": False},
    )
    texts = corpus.load_shards(result.output_dir).column("text").to_pylist()
    assert sorted(texts) == sorted(bodies + [shared])  # the shared paragraph once, across both input shards
    assert result.stats["lines_removed"]["duplicate_paragraph"] == 2
    assert result.stats["documents_kept"] == 3
