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
