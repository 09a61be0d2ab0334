"""Deduplication: the keys (dedup.py), the C MinHash against its references, and the corpus-wide decision
(dedup_index.py) on hand-written inputs with exact outcomes."""

import dataclasses

import numpy as np
import pytest
from datatrove.data import Document

from obert_lib.corpus._minhash import bands, crc32
from obert_lib.corpus.config import DedupConfig
from obert_lib.corpus.dedup import (
    HASH64,
    CharacterShingles,
    exact_dedup_key,
    minhash_parameters,
    minhash_reference,
    shingles,
)
from obert_lib.corpus.dedup_index import (
    DUPLICATE_PARAGRAPH,
    EXACT,
    KEEP,
    NEAR,
    REPEATED_LINE,
    DedupDecisions,
    DedupSignatures,
    component_minimum,
    decide,
    first_copies,
    lsh_edges,
    paragraph_key,
    rank_file,
)


class Doc:
    def __init__(self, text):
        self.text = text


TEXTS = [
    "长江是中国第一长河",
    "长江是中国第一大河",
    "，。",  # no word character: no signature
    "北",  # shorter than n: one shingle, the whole text
    "Hello_World 2024 年，ÀÉ 😀 表情 𠀀 扩展B",  # '_' dropped, 4-byte characters, accents
    "北京是中国的首都，也是政治和文化中心。" * 3,
    "",
]


def test_exact_key_ignores_spacing_punctuation_and_case():
    assert exact_dedup_key(Doc("北京 是，首都！AI")) == exact_dedup_key(Doc("北京是首都ai")) == "北京是首都ai".encode()
    assert exact_dedup_key(Doc("北京是首都")) != exact_dedup_key(Doc("上海是首都"))


def test_shingles_are_distinct_character_ngrams():
    assert len(shingles("北京北京北京", 2)) == 2  # 北京, 京北
    assert len(shingles("北", 5)) == 1 and len(shingles("，。", 5)) == 0
    a, b = set(shingles("长江是中国第一长河", 3).tolist()), set(shingles("长江是中国第一大河", 3).tolist())
    assert len(a & b) == 5 and shingles("abc", 2).dtype == np.uint64


def test_keys_hash_as_datatrove_hash_config_xxhash_64():
    """HASH64 (exact, paragraph and line keys) is the function datatrove's 64-bit xxhash HashConfig makes."""
    from datatrove.utils.hashing import HashConfig, create_hash_func

    theirs = create_hash_func(HashConfig(precision=64, hash_fc="xxhash"), bytes)
    for data in (b"", b"a", "长江".encode(), bytes(range(256)) * 3):
        assert HASH64(data) == theirs(data)
    assert HASH64(b"") == 0xEF46DB3751D8E999  # xxh64 of nothing, seed 0 (the xxHash reference's test vector)


def test_c_crc32_is_zlibs():
    import zlib

    for data in (b"", b"a", "长江".encode(), bytes(range(256)) * 3):
        assert crc32(data) == zlib.crc32(data)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_c_signatures_equal_the_reference_and_datatrove_get_signature(n):
    """The C signatures equal dedup.minhash_reference and datatrove's own get_signature on the same shingles."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    a, b = minhash_parameters(16)
    raw, has = bands(TEXTS, n, a, b, 4, True)
    sigs = np.frombuffer(raw, dtype=np.uint64).reshape(len(TEXTS), 16)
    assert list(has) == [1, 1, 0, 1, 1, 1, 0]
    config = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=4, hashes_per_bucket=4)
    theirs = MinhashDedupSignature("/tmp/unused", config=config, language=CharacterShingles())
    assert all((x == y).all() for x, y in zip(theirs.parameters, (a[None], b[None])))  # the same permutations
    for text, sig, got in zip(TEXTS, sigs, has):
        reference = minhash_reference(text, n, a, b)
        if not got:
            assert reference is None and (sig == 0).all()
            continue
        assert (sig == reference).all()
        assert sig.tolist() == sum(theirs.get_signature(shingles(text, n).reshape(-1, 1)), [])


def test_band_keys_agree_exactly_when_the_bands_hashes_agree():
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list("长江黄河中国"), size=12)) for _ in range(200)]  # many shared bands
    a, b = minhash_parameters(12)
    sigs = np.frombuffer(bands(texts, 3, a, b, 4, True)[0], dtype=np.uint64).reshape(-1, 4, 3)
    keys = np.frombuffer(bands(texts, 3, a, b, 4)[0], dtype=np.uint64).reshape(-1, 4)
    same_sig = (sigs[:, None] == sigs[None]).all(axis=3)  # [docs, docs, bands]
    assert (same_sig == (keys[:, None] == keys[None])).all() and same_sig.sum() > same_sig.shape[0] * 4
    assert len(set(keys[0].tolist())) == 4  # the band index is in the key: equal hashes in two bands differ


def test_c_bands_reject_bad_arguments():
    a, b = minhash_parameters(16)
    with pytest.raises(ValueError, match="multiple of bands"):
        bands(["长江"], 5, a, b, 3)
    with pytest.raises(ValueError, match="n: 0"):
        bands(["长江"], 0, a, b, 4)
    with pytest.raises(TypeError, match=r"texts\[1\]: str expected"):
        bands(["长江", 3], 5, a, b, 4)
    with pytest.raises(TypeError, match="a list of str"):
        bands(("长江",), 5, a, b, 4)


def test_first_copies_in_corpus_order():
    keys = np.array([5, 3, 5, 7, 3, 5], dtype=np.uint64)
    assert first_copies(keys).tolist() == [True, True, False, True, False, False]
    assert first_copies(np.zeros(0, np.uint64)).tolist() == []


def test_lsh_edges_join_each_bucket_to_its_earliest_member():
    # 5 documents, 2 bands: band 0 buckets {0, 2, 4} and {1, 3}; band 1 buckets {3, 4}; document 1 not eligible
    keys = np.array([[10, 1], [20, 2], [10, 3], [20, 4], [10, 4]], dtype=np.uint64)
    eligible = np.array([True, False, True, True, True])
    u, v = lsh_edges(keys, eligible)
    assert sorted(zip(u.tolist(), v.tolist())) == [(0, 2), (0, 4), (3, 4)]


def test_component_minimum_follows_chains():
    # components {0, 3, 5, 7} (a chain 7-5-3-0 given from its far end), {1, 6}, {2}, {4}
    u = np.array([7, 5, 3, 6], dtype=np.int64)
    v = np.array([5, 3, 0, 1], dtype=np.int64)
    assert component_minimum(8, u, v).tolist() == [0, 1, 2, 0, 4, 0, 1, 0]
    assert component_minimum(3, np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == [0, 1, 2]


def _part(documents, exact=(), band_rows=(), has=(), paragraphs=()):
    """A task's signatures by hand: paragraphs = (doc, idx, para_hash, dedup_eligible, line_hash or 0)."""
    p = list(zip(*paragraphs)) if paragraphs else [[]] * 5
    return {
        "documents": np.array(documents),
        "exact": np.array(exact, dtype=np.uint64),
        "bands": np.array(band_rows, dtype=np.uint64).reshape(-1, 2),
        "has_sig": np.array(has, dtype=bool),
        "para_doc": np.array(p[0], dtype=np.int64),
        "para_idx": np.array(p[1], dtype=np.int64),
        "para_hash": np.array(p[2], dtype=np.uint64),
        "para_dedup": np.array(p[3], dtype=bool),
        "line_hash": np.array(p[4], dtype=np.uint64),
        "line_has": np.array([h != 0 for h in p[4]], dtype=bool),
    }


def test_decide_across_tasks_in_order():
    """Task 0: documents 0-2, task 1: documents 3-5 (global 3-5). Exact: 3 copies 0. Near: 1 ~ 4 (band 0),
    4 ~ 5 (band 1): one group {1, 4, 5}, 1 stays. Document 2 has no signature. Paragraphs: hash 70 in 0 and 5
    (5 goes as near anyway), hash 80 in 0 and 1 (1's copy goes), hash 90 in 1 twice but one too short to count.
    Lines: key 7 in documents 0, 1 and 2 (3 kept documents) is furniture at min 3; key 8 in 0 and 1 is not."""
    parts = [
        _part(
            3,
            exact=[1, 2, 3],
            band_rows=[[100, 101], [200, 201], [0, 0]],
            has=[1, 1, 0],
            paragraphs=[
                (0, 0, 70, True, 7),
                (0, 2, 80, True, 8),
                (1, 0, 80, True, 7),
                (1, 1, 90, True, 8),
                (1, 3, 90, False, 0),
                (2, 0, 60, True, 7),
            ],
        ),
        _part(
            3,
            exact=[1, 4, 5],
            band_rows=[[300, 301], [200, 401], [500, 401]],
            has=[1, 1, 1],
            paragraphs=[(0, 0, 95, True, 9), (1, 0, 96, True, 9), (2, 0, 70, True, 7)],
        ),
    ]
    cfg = DedupConfig(repeated_lines=True, repeated_line_min_documents=3)
    doc_reasons, para_drops, counts = decide(parts, cfg)
    assert [r.tolist() for r in doc_reasons] == [[KEEP, KEEP, KEEP], [EXACT, NEAR, NEAR]]
    assert counts == {
        "exact_duplicates": 1,
        "near_duplicates": 2,
        "duplicate_paragraphs": 1,
        "repeated_lines_found": 1,
        "repeated_line_paragraphs": 2,  # 0:0 and 2:0; 1:0 is already a duplicate_paragraph
    }
    keys, reasons = para_drops[0]
    assert dict(zip(keys.tolist(), reasons.tolist())) == {
        paragraph_key(0, 0): REPEATED_LINE,
        paragraph_key(1, 0): DUPLICATE_PARAGRAPH,
        paragraph_key(2, 0): REPEATED_LINE,
    }
    assert para_drops[1][0].tolist() == []  # task 1's paragraphs belong to dropped documents
    # each option off leaves the others' decisions as they were
    no_near = decide(parts, dataclasses.replace(cfg, near=False))
    assert [r.tolist() for r in no_near[0]] == [[KEEP] * 3, [EXACT, KEEP, KEEP]]
    no_exact = decide(parts, dataclasses.replace(cfg, exact=False))
    assert [r.tolist() for r in no_exact[0]] == [[KEEP] * 3, [KEEP, NEAR, NEAR]]
    assert decide(parts, dataclasses.replace(cfg, repeated_line_min_documents=4))[2]["repeated_lines_found"] == 0


def test_decide_without_documents():
    doc_reasons, para_drops, counts = decide([_part(0)], DedupConfig(repeated_lines=True))
    assert doc_reasons[0].tolist() == [] and para_drops[0][0].tolist() == [] and set(counts.values()) == {0}


def test_signature_and_decision_steps_on_two_tasks(tmp_path):
    """DedupSignatures passes documents through and writes each task's hashes; DedupDecisions reads them."""
    para = "长江是中国第一长河，全长约六千三百公里，流经许多城市。"
    tasks = [
        [
            para + "\n短行\n" + "北京是中国的首都，也是政治和文化中心。",
            "杭州西湖的荷花陆续盛开，每天吸引数万名游客前来观赏。",
        ],
        ["北京 是中国的首都，也是政治和文化中心！\n短行\n" + para, "景区管理部门介绍，今年新增了三条游览线路。"],
    ]
    tasks[1][0] = tasks[0][0].replace("，", " ")  # an exact copy but for punctuation
    cfg = DedupConfig()
    for rank, texts in enumerate(tasks):
        docs = [Document(text=t, id=f"{rank}-{i}") for i, t in enumerate(texts)]
        step = DedupSignatures(str(tmp_path / "sigs"), cfg, split_min_chars=5)
        assert [d.text for d in step.run(iter(docs), rank=rank)] == texts
    with np.load(rank_file(tmp_path / "sigs", 0)) as f:
        assert int(f["documents"]) == 2 and f["bands"].shape == (2, 16)
        assert f["para_doc"].tolist() == [0, 0, 1] and f["para_idx"].tolist() == [0, 2, 0]  # "短行" under 5
    list(DedupDecisions(str(tmp_path / "sigs"), str(tmp_path / "dec"), tasks=2, dedup=cfg).run())
    with np.load(rank_file(tmp_path / "dec", 1)) as f:
        assert f["doc_reason"].tolist() == [EXACT, KEEP] and f["para_key"].tolist() == []
    with np.load(rank_file(tmp_path / "dec", 0)) as f:
        assert f["doc_reason"].tolist() == [KEEP, KEEP] and f["para_key"].tolist() == []
