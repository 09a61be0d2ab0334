import numpy as np

from obert_lib.corpus.dedup import exact_dedup_key, shingles


class Doc:
    def __init__(self, text):
        self.text = text


def test_exact_key_ignores_spacing_punctuation_and_case():
    assert exact_dedup_key(Doc("北京 是，首都！AI")) == exact_dedup_key(Doc("北京是首都ai")) == "北京是首都ai".encode()
    assert exact_dedup_key(Doc("北京是首都")) != exact_dedup_key(Doc("上海是首都"))


def test_shingles_are_distinct_character_ngrams():
    assert len(shingles("北京北京北京", 2)) == 2  # 北京, 京北
    assert len(shingles("北", 5)) == 1 and len(shingles("，。", 5)) == 0
    a, b = set(shingles("长江是中国第一长河", 3).tolist()), set(shingles("长江是中国第一大河", 3).tolist())
    assert len(a & b) == 5 and shingles("abc", 2).dtype == np.uint64


def test_batched_minhash_signatures_write_the_same_bucket_files_as_datatrove(tmp_path, monkeypatch):
    """CharMinhashSignature.run batches documents; its sorted bucket files equal datatrove's own run's, byte for byte
    (documents without shingles skipped, batches split mid-stream, 64- and 32-bit hashes)."""
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    from obert_lib.corpus import dedup

    monkeypatch.setattr(dedup, "BATCH_SHINGLES", 40)  # several batches on this small input
    texts = ["长江是中国第一长河", "，。", "北京是中国的首都，也是政治和文化中心。", "北", "长江是中国第一大河"] * 7
    texts += [f"今天天气真不错呀我们去公园散步吧{i}" for i in range(30)]
    for precision in (64, 32):
        config = MinhashConfig(hash_config=HashConfig(precision=precision), num_buckets=4, hashes_per_bucket=3)
        files = {}
        for side in ("ours", "datatrove"):
            step = dedup.CharMinhashSignature(str(tmp_path / f"{side}-{precision}"), config=config, shingle_size=5)
            docs = (Document(text=t, id=str(i)) for i, t in enumerate(texts))
            run = step.run if side == "ours" else MinhashDedupSignature.run.__get__(step)
            for _ in run(docs, rank=3) or ():
                pass
            files[side] = {
                p.relative_to(tmp_path / f"{side}-{precision}"): p.read_bytes()
                for p in sorted((tmp_path / f"{side}-{precision}").rglob("*.sig"))
            }
        assert len(files["ours"]) == 4 and files["ours"] == files["datatrove"]
        assert all(len(b) == (len(texts) - 7) * (3 * precision // 8 + 4) for b in files["ours"].values())


def test_mod_mersenne_61_equals_numpy_modulo_on_the_edges_and_at_random():
    from obert_lib.corpus.dedup import MERSENNE_61, mod_mersenne_61

    p = int(MERSENNE_61)
    edges = [0, 1, p - 1, p, p + 1, 2 * p - 1, 2 * p, 2**61, 2**62, 2**63, 2**64 - 1, 7 * 2**61 + p - 1]
    x = np.array(edges + list(np.random.default_rng(0).integers(0, 2**64 - 1, 10_000, dtype=np.uint64)), np.uint64)
    assert (mod_mersenne_61(x.copy()) == x % MERSENNE_61).all()


def test_sorted_minhash_buckets_write_the_same_pairs_as_datatrove(tmp_path):
    """SortedMinhashBuckets writes datatrove's `.dups` files byte for byte: duplicates within a task, across
    tasks, three copies, and a task without any document."""
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.utils.hashing import HashConfig

    from obert_lib.corpus.dedup import CharMinhashSignature, SortedMinhashBuckets

    config = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=4, hashes_per_bucket=2)
    tasks = [
        ["长江是中国第一长河", "北京是中国的首都", "长江是中国第一长河", "今天天气真不错"],
        ["北京是中国的首都", "上海是中国的城市", "长江是中国第一长河"],
        ["，。"],  # no shingles: empty bucket files
        [f"今天天气真不错呀{i}" for i in range(20)],
    ]
    for rank, texts in enumerate(tasks):
        step = CharMinhashSignature(str(tmp_path / "sigs"), config=config, shingle_size=3)
        step.run((Document(text=t, id=str(i)) for i, t in enumerate(texts)), rank=rank)
    for side, cls in (("ours", SortedMinhashBuckets), ("datatrove", MinhashDedupBuckets)):
        for bucket in range(4):
            step = cls(str(tmp_path / "sigs"), str(tmp_path / side), config=config)
            MinhashDedupBuckets.run(step, rank=bucket, world_size=4) if side == "datatrove" else step.run(
                rank=bucket, world_size=4
            )
    ours = {p.name: p.read_bytes() for p in sorted((tmp_path / "ours").glob("*.dups"))}
    theirs = {p.name: p.read_bytes() for p in sorted((tmp_path / "datatrove").glob("*.dups"))}
    assert list(ours) == [f"{b:05d}_00.dups" for b in range(4)] and ours == theirs
    pairs = np.frombuffer(ours["00000_00.dups"], dtype="<u4").reshape(-1, 4).tolist()
    assert [0, 0, 0, 2] in pairs and [0, 2, 1, 2] in pairs and [0, 1, 1, 0] in pairs
