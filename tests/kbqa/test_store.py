"""The SQLite knowledge store on a hand-written knowledge file: counted skips, exact lookups, suffixes, rebuilds."""

from __future__ import annotations

import json
import sqlite3

import pytest

from obert_lib.config import ConfigError, DataError
from obert_lib.kbqa import store as store_mod
from obert_lib.kbqa.store import KnowledgeStore, build_store, kb_from_kgclue
from tests.conftest import shared_file

ZDB_2000 = "郑多彬（韩国女演员（2000年出生））"
ZDB_1993 = "郑多彬（韩国女演员（1993年出生））"
SONG = "守望星光（韩玉玲、刘东考演唱歌曲）"

LINES = [
    f"{ZDB_2000}\t职业\t演员".encode(),  # 1
    f"{ZDB_2000}\t出生日期\t2000年".encode(),  # 2
    f"{ZDB_1993}\t职业\t演员".encode(),  # 3: a homonym
    "only\ttwo".encode(),  # 4: two fields
    f"{SONG}\t出品公司\t韩玉玲原创音乐".encode(),  # 5
    b"\xff\xfe\ta\tb",  # 6: not UTF-8
    b"a\t\tb",  # 7: an empty field
    b"",  # 8: blank
    "完美（中国）有限公司\t总部\t广州".encode(),  # 9: the bracket is not a suffix
    f"{ZDB_2000}\t职业\t演员".encode(),  # 10: a duplicate of line 1
    "Apple  Inc\t类型\t公司\r".encode(),  # 11: CRLF line ending
    b"x\ty\tz\tw",  # 12: four fields
    f"{ZDB_2000}\t职业\t歌手".encode(),  # 13: a second object of (entity, relation)
]


@pytest.fixture
def knowledge(tmp_path):
    path = tmp_path / "knowledge.txt"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    return path


@pytest.fixture
def built(knowledge, tmp_path):
    db = tmp_path / "kb.sqlite"
    return build_store(knowledge, db, progress=False, chunk_size=3), db


def dump(db) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_build_counts_triples_and_skips_malformed_lines_with_their_numbers(built):
    stats, db = built
    assert {k: stats[k] for k in ("lines", "triples", "duplicates", "entities", "relations", "skipped")} == {
        "lines": 13,
        "triples": 7,
        "duplicates": 1,
        "entities": 5,
        "relations": 5,
        "skipped": 5,
    }
    assert stats["skipped_lines"] == [
        {"line": 4, "reason": "2 tab-separated fields, not 3"},
        {"line": 6, "reason": "not UTF-8 (byte 0 of the line)"},
        {"line": 7, "reason": "an empty field"},
        {"line": 8, "reason": "blank line"},
        {"line": 12, "reason": "4 tab-separated fields, not 3"},
    ]
    assert stats["db_bytes"] == db.stat().st_size > 0
    with KnowledgeStore(db) as kb:
        assert kb.meta["triples"] == "7" and kb.meta["skipped"] == "5" and kb.meta["schema_version"] == "1"


def test_lookups_are_exact(built):
    _, db = built
    with KnowledgeStore(db) as kb:
        assert kb.entities("郑多彬") == [ZDB_2000, ZDB_1993]  # surface without the nested suffix, load order
        assert kb.entities(ZDB_1993) == [ZDB_1993]  # a full head finds itself
        assert kb.entities("守望星光") == [SONG]
        assert kb.entities("完美（中国）有限公司") == ["完美（中国）有限公司"]
        assert kb.entities("完美") == []
        assert kb.entities(" apple INC ") == ["Apple  Inc"]  # surface lower-cased, whitespace collapsed
        assert kb.entities("不存在") == []
        assert kb.relations(ZDB_2000) == ["职业", "出生日期"]
        assert kb.relations(ZDB_1993) == ["职业"]
        assert kb.relations("郑多彬") == []  # relations and objects take full heads
        assert kb.objects(ZDB_2000, "职业") == ["歌手", "演员"]  # distinct, code-point order (歌 U+6B4C < 演 U+6F14)
        assert kb.objects(ZDB_2000, "出生日期") == ["2000年"]
        assert kb.objects(SONG, "出品公司") == ["韩玉玲原创音乐"]
        assert kb.objects("Apple  Inc", "类型") == ["公司"]
        assert kb.objects(ZDB_2000, "身高") == []
        assert kb.objects("不存在", "职业") == []


def test_suffix_is_stored_with_the_head_and_stripped_from_the_surface(built):
    _, db = built
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT name, surface FROM entity ORDER BY id").fetchall()
    conn.close()
    assert rows == [
        (ZDB_2000, "郑多彬"),
        (ZDB_1993, "郑多彬"),
        (SONG, "守望星光"),
        ("完美（中国）有限公司", "完美（中国）有限公司"),
        ("Apple  Inc", "apple inc"),
    ]


def test_fuzzy_entities_contained_and_prefix(built):
    _, db = built
    with KnowledgeStore(db) as kb:
        # '郑多彬' is inside the text: both homonyms, F1 2·3/(3+5) = 0.75 each, load order breaks the tie
        assert kb.fuzzy_entities("郑多彬是谁", limit=5) == [ZDB_2000, ZDB_1993]
        assert kb.fuzzy_entities("郑多彬是谁", limit=1) == [ZDB_2000]
        assert kb.fuzzy_entities("守望星光好听吗") == [SONG]
        assert kb.fuzzy_entities("守望") == [SONG]  # the surface begins with the text
        assert kb.fuzzy_entities("APPLE") == ["Apple  Inc"]
        assert kb.fuzzy_entities("你知道完美（中国）有限公司吗") == ["完美（中国）有限公司"]
        assert kb.fuzzy_entities("星光") == []  # in the middle of a surface: not found (no n-gram table)
        assert kb.fuzzy_entities("") == []
        with pytest.raises(ConfigError, match="limit: 0 must be at least 1"):
            kb.fuzzy_entities("守望", limit=0)


def test_rebuild_is_idempotent_and_leaves_no_temporary_file(built, knowledge, tmp_path):
    stats, db = built
    before = dump(db)
    again = build_store(knowledge, db, progress=False)  # a different chunk size, the same store
    assert dump(db) == before
    assert {k: again[k] for k in ("triples", "entities", "relations", "skipped")} == {
        k: stats[k] for k in ("triples", "entities", "relations", "skipped")
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb.sqlite", "knowledge.txt"]


def test_a_failed_build_keeps_the_previous_store(built, knowledge, tmp_path, monkeypatch):
    _, db = built
    before = dump(db)

    def explode(raw):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(store_mod, "_parse_line", explode)
    with pytest.raises(RuntimeError, match="disk gone"):
        build_store(knowledge, db, progress=False)
    assert dump(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb.sqlite", "knowledge.txt"]


def test_store_errors_name_the_path_and_the_fix(tmp_path, knowledge):
    with pytest.raises(DataError, match="does not exist; give a knowledge file"):
        build_store(tmp_path / "absent.txt", tmp_path / "kb.sqlite", progress=False)
    with pytest.raises(ConfigError, match="db_path: .* is a folder"):
        build_store(knowledge, tmp_path, progress=False)
    with pytest.raises(DataError, match=r"no knowledge store there; build one with build_store"):
        KnowledgeStore(tmp_path / "absent.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database", encoding="utf-8")
    with pytest.raises(DataError, match="not a knowledge store"):
        KnowledgeStore(junk)


# --- kb_from_kgclue -----------------------------------------------------------------------------------------------


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_kb_from_kgclue_one_deduplicated_triple_per_answer(tmp_path):
    write_rows(
        tmp_path / "train.json",
        [
            {"id": 0, "question": "q", "answer": f"{SONG} ||| 出品公司 ||| 韩玉玲原创音乐"},
            {"id": 1, "question": "q", "answer": "龙晶（游戏） ||| 繁体 ||| 龍晶"},
        ],
    )
    write_rows(
        tmp_path / "dev.json",
        [
            {"id": 0, "question": "q", "answer": "龙晶（游戏）|||繁体|||龍晶"},  # the same triple, spaced otherwise
            {"id": 1, "question": "q", "answer": "龙晶（游戏） ||| 拼音 ||| long\tjing"},  # a tab becomes a space
        ],
    )
    out = tmp_path / "kb" / "knowledge.txt"
    stats = kb_from_kgclue(tmp_path / "train.json", tmp_path / "dev.json", out)
    assert {k: stats[k] for k in ("answers", "triples", "duplicates", "entities", "relations")} == {
        "answers": 4,
        "triples": 3,
        "duplicates": 1,
        "entities": 2,
        "relations": 3,
    }
    assert out.read_text(encoding="utf-8") == (
        f"{SONG}\t出品公司\t韩玉玲原创音乐\n龙晶（游戏）\t繁体\t龍晶\n龙晶（游戏）\t拼音\tlong jing\n"
    )
    write_rows(tmp_path / "dev.json", [{"id": 0, "question": "q", "answer": "a ||| b"}])
    with pytest.raises(DataError, match=r"dev.json:1: answer 'a \|\|\| b' is not"):
        kb_from_kgclue(tmp_path / "train.json", tmp_path / "dev.json", out)


def test_kb_from_kgclue_on_the_shared_split_builds_a_store(tmp_path):
    train, dev = shared_file("kgclue/train.json"), shared_file("kgclue/dev.json")
    stats = kb_from_kgclue(train, dev, tmp_path / "knowledge.txt")
    assert {k: stats[k] for k in ("answers", "triples", "duplicates", "entities", "relations")} == {
        "answers": 20000,
        "triples": 20000,
        "duplicates": 0,
        "entities": 20000,
        "relations": 1747,
    }
    built = build_store(tmp_path / "knowledge.txt", tmp_path / "kb.sqlite", progress=False)
    assert (built["lines"], built["triples"], built["skipped"], built["entities"]) == (20000, 20000, 0, 20000)
    with KnowledgeStore(tmp_path / "kb.sqlite") as kb:
        assert kb.entities("守望星光") == [SONG]
        assert kb.relations(SONG) == ["出品公司"]
        assert kb.objects(SONG, "出品公司") == ["韩玉玲原创音乐"]


# --- the synthetic knowledge file of the scale measurement -------------------------------------------------------


def test_generated_knowledge_file_is_deterministic_well_formed_and_measurable(tmp_path):
    from obert_lib.kbqa.generate import generate_knowledge, measure_lookups

    args = dict(n_triples=2000, n_entities=300, n_relations=50, seed=3, progress=False, chunk_entities=128)
    made = generate_knowledge(tmp_path / "a.txt", **args)
    generate_knowledge(tmp_path / "b.txt", **args)
    assert (made["triples"], made["entities"], made["relations"]) == (2000, 300, 50)
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()
    text = (tmp_path / "a.txt").read_text(encoding="utf-8")
    assert text.count("\n") == 2000 and "）\t" in text  # some heads carry a suffix
    built = build_store(tmp_path / "a.txt", tmp_path / "kb.sqlite", progress=False)
    assert (built["lines"], built["skipped"], built["triples"] + built["duplicates"]) == (2000, 0, 2000)
    assert built["entities"] <= 300 and built["relations"] <= 50
    m = measure_lookups(tmp_path / "kb.sqlite", samples=40)
    assert (m["samples"], m["entities_hits"], m["relations_hits"], m["objects_hits"]) == (40, 40, 40, 40)
    assert (m["entities_absent_hits"], m["fuzzy_entities_calls"], m["fuzzy_entities_hits"]) == (0, 4, 4)
    with pytest.raises(ConfigError, match="n_entities: 0 must be between 1 and n_triples"):
        generate_knowledge(tmp_path / "c.txt", n_triples=10, n_entities=0, progress=False)
