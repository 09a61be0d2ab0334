"""Issue 13: a user's mistake with `obert mask` is one line `obert mask: error: ...` and exit 2, never a traceback,
and the corpus tokenizer loads from disk only (a missing folder never becomes a Hugging Face Hub request)."""

import json
import shutil

import pytest
import transformers

from obert_lib.cli import main

pytestmark = pytest.mark.bad_input


@pytest.fixture(scope="module")
def no_kb_corpus(sample_corpus, tmp_path_factory):
    """The sample corpus's config.json and tokenizer, as if it had been built without a knowledge base."""
    out = tmp_path_factory.mktemp("no_kb")
    shutil.copytree(sample_corpus.output_dir / "tokenizer", out / "tokenizer")
    cfg = json.loads((sample_corpus.output_dir / "config.json").read_text(encoding="utf-8"))
    (out / "config.json").write_text(json.dumps({**cfg, "knowledge_base": None}), encoding="utf-8")
    return out


@pytest.fixture(autouse=True)
def local_only(monkeypatch):
    """Fail any tokenizer load that may go to the Hub, instead of sending requests."""
    load = transformers.AutoTokenizer.from_pretrained

    def checked(path, *args, **kwargs):
        assert kwargs.get("local_files_only") is True, f"from_pretrained({path}) may reach the network"
        return load(path, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", checked)


def one_line_error(capsys, argv: list[str], *expected: str) -> str:
    assert main(["mask", "--text", "北京是中国的首都。", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("obert mask: error: "), captured.err
    for part in expected:
        assert part in lines[0], lines[0]
    return lines[0]


def test_corpus_folder_missing_a_file_or_not_a_corpus(sample_corpus, tmp_path, capsys):
    one_line_error(capsys, ["--corpus", str(tmp_path / "nocorpus")], "nocorpus does not exist", "obert preprocess")
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    one_line_error(capsys, ["--corpus", str(tmp_path / "file.txt")], "is a file, not a folder")
    one_line_error(capsys, ["--corpus", str(tmp_path)], "has no config.json", "obert preprocess")
    shutil.copy(sample_corpus.output_dir / "config.json", tmp_path / "config.json")  # no tokenizer/
    one_line_error(capsys, ["--corpus", str(tmp_path)], "has no tokenizer in", "obert preprocess")
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    one_line_error(capsys, ["--corpus", str(tmp_path)], "config.json is not valid JSON")


def test_bad_strategy_mixture_rates_seed_and_text(sample_corpus, capsys):
    corpus = ["--corpus", str(sample_corpus.output_dir)]
    one_line_error(capsys, [*corpus, "--strategy", "sentence"], "strategy: 'sentence' is unknown")
    one_line_error(capsys, [*corpus, "--mixture", "word:x"], "is not a number")
    one_line_error(capsys, [*corpus, "--mixture", "word:-1"], "mixture.word: weight -1")
    one_line_error(capsys, [*corpus, "--mixture", "word:inf,phrase:1"], "mixture.word: weight inf must be a finite")
    one_line_error(capsys, [*corpus, "--mixture", "sentence:1"], "mixture.sentence: unknown strategy")
    one_line_error(capsys, [*corpus, "--mixture", ","], "mixture: empty")
    for rate in ("0", "1", "1.5", "-0.1", "nan"):
        one_line_error(capsys, [*corpus, "--mask-rate", rate], "mask_rate", "must be within (0, 1)")
    one_line_error(capsys, [*corpus, "--synonym", "--synonym-rate", "2"], "synonym.rate: 2.0 must be within [0, 1]")
    one_line_error(capsys, [*corpus, "--seed", "-1"], "seed: -1 must be an integer >= 0")
    assert main(["mask", *corpus, "--text", "  "]) == 2
    assert (
        capsys.readouterr().err.strip() == "obert mask: error: --text is empty; give the paragraph to mask, "
        "e.g. --text '北京是中国的首都。'"
    )


def test_knowledge_on_a_corpus_without_a_knowledge_base(no_kb_corpus, capsys):
    one_line_error(capsys, ["--corpus", str(no_kb_corpus), "--knowledge"], "without a knowledge_base")
    assert (
        main(["mask", "--corpus", str(no_kb_corpus), "--text", "北京是中国的首都。"]) == 0
    )  # without --knowledge: fine
