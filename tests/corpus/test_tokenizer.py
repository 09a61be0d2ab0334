from obert_lib.corpus.tokenizer import char_spans_to_token_spans, train_tokenizer
from tests.conftest import shared_file


def test_char_spans_map_to_covering_tokens():
    # tokens: 李 白 | test ##ing | 诗 人  -> offsets as a fast tokenizer reports them
    offsets = [(0, 1), (1, 2), (2, 6), (6, 9), (9, 10), (10, 11)]
    assert char_spans_to_token_spans(offsets, [(0, 2), (2, 9), (4, 5), (9, 11)]) == [(0, 2), (2, 4), (2, 3), (4, 6)]
    assert char_spans_to_token_spans(offsets, [(11, 12)]) == []
    assert char_spans_to_token_spans([], [(0, 1)]) == []


def test_trained_tokenizer_splits_cjk_per_character():
    tk = train_tokenizer(["北京是中国的首都", "上海是中国的城市"], vocab_size=200)
    assert tk.convert_ids_to_tokens(tk("北京是首都", add_special_tokens=False)["input_ids"]) == [
        "北",
        "京",
        "是",
        "首",
        "都",
    ]
    assert tk.mask_token == "[MASK]" and tk.cls_token_id is not None


def test_standard_chinese_bert_vocab_loads():
    from obert_lib.corpus.tokenizer import load_vocab_tokenizer

    tk = load_vocab_tokenizer(shared_file("vocab/bert-base-chinese-vocab.txt"))
    assert len(tk) == 21128
    assert tk.convert_ids_to_tokens(tk("李白testing")["input_ids"]) == ["[CLS]", "李", "白", "test", "##ing", "[SEP]"]
    assert (tk.mask_token_id, tk.cls_token_id, tk.sep_token_id, tk.pad_token_id) == (103, 101, 102, 0)


def test_vocab_tokenizer_saved_without_transformers_equals_save_pretrained(tmp_path):
    """save_vocab_tokenizer writes save_pretrained's tokenizer.json byte for byte and its tokenizer_config.json's
    keys and values; the folder loads back as the same tokenizer."""
    import json

    from obert_lib.corpus.tokenizer import (
        load_saved_tokenizer,
        load_vocab_tokenizer,
        save_vocab_tokenizer,
        saved_vocab_size,
    )

    vocab = shared_file("vocab/bert-base-chinese-vocab.txt")
    load_vocab_tokenizer(vocab).save_pretrained(tmp_path / "theirs")
    save_vocab_tokenizer(vocab, tmp_path / "ours")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    assert (ours / "tokenizer.json").read_bytes() == (theirs / "tokenizer.json").read_bytes()
    theirs_config = json.loads((theirs / "tokenizer_config.json").read_text())
    theirs_config.pop("added_tokens_decoder", None)  # the five specials, already in tokenizer.json
    assert json.loads((ours / "tokenizer_config.json").read_text()) == theirs_config
    tk = load_saved_tokenizer(ours)
    assert tk("李白", "杜甫")["input_ids"] == [101, 3330, 4635, 102, 3336, 4502, 102]  # vocab.txt line - 1
    assert saved_vocab_size(ours) == len(tk) == 21128
