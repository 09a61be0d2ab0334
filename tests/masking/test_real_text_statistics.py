"""Mask statistics on real text: FewCLUE sentences through the corpus stage and the collator."""
import pytest

from obert_lib import corpus, masking
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def real_rows(tmp_path_factory):
    src = shared_file("fewclue/tnews/unlabeled.json")
    vocab = shared_file("vocab/bert-base-chinese-vocab.txt")
    out = tmp_path_factory.mktemp("real")
    corpus.run({"inputs": [str(src)], "text_key": "sentence", "output_dir": str(out), "max_documents": 3000,
                "tokenizer": {"vocab_file": str(vocab)}, "quality": {"min_cjk_chars": 8},
                "dedup": {"min_paragraph_chars": 1000}}, corpus.CorpusRuntime(progress=False))
    from transformers import AutoTokenizer

    return corpus.load_shards(out).to_pylist(), AutoTokenizer.from_pretrained(out / "tokenizer")


def test_char_and_word_rates_and_replacement_split(real_rows):
    rows, tk = real_rows
    assert len(rows) > 2000
    stats = masking.strategy_statistics(rows, tk, mask_rate=0.15, max_length=128).set_index("strategy")
    assert abs(stats.loc["char", "mask_rate"] - 0.15) < 0.01
    assert abs(stats.loc["word", "mask_rate"] - 0.15) < 0.02  # whole words overshoot by < one word per sequence
    for strategy in ("char", "word"):
        assert abs(stats.loc[strategy, "share_mask"] - 0.8) < 0.02
    order = stats["mean_run_length"]
    assert order["char"] < order["word"] < order["phrase"] < order["clause"]
