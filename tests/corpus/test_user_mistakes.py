"""A user's mistake with `obert preprocess` is one line naming the key or path and the fix, exit 2, before any work
(issue 13): impossible config values, output paths, and nothing that reaches the network."""

import ast
import json
import socket
from pathlib import Path

import pytest

from obert_lib import corpus
from tests.corpus.small_runs import preprocess_cli

pytestmark = pytest.mark.bad_input

GOOD = "北京是中华人民共和国的首都，也是全国的政治中心和文化中心，历史悠久，名胜古迹众多。"


@pytest.fixture
def one_doc(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "a", "text": GOOD}, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


_preprocess = preprocess_cli


# (flags, what the message must say): impossible values, some of which ran or crashed in the validator before
BAD_VALUES = [
    (["--set", "dedup.bands=0"], "dedup.bands: must be >= 1"),
    (["--set", "dedup.bands=-16"], "dedup.bands: must be >= 1"),
    (["--set", "dedup.num_perm=0"], "dedup.bands: num_perm (0)"),
    (["--set", "dedup.shingle_size=0"], "dedup.shingle_size"),
    (["--set", "dedup.min_paragraph_chars=-1"], "dedup.min_paragraph_chars"),
    (["--set", "quality.max_punctuation_ratio=-1"], "quality.max_punctuation_ratio: must be within [0, 1] (got -1.0)"),
    (["--set", "quality.max_digit_ratio=1.5"], "quality.max_digit_ratio"),
    (["--set", "quality.min_cjk_ratio=2"], "quality.min_cjk_ratio"),
    (["--set", "quality.max_duplicate_line_fraction=-0.1"], "quality.max_duplicate_line_fraction"),
    (["--set", "quality.max_duplicate_ngram_fraction=3"], "quality.max_duplicate_ngram_fraction"),
    (["--set", "quality.max_spam_line_fraction=-1"], "quality.max_spam_line_fraction"),
    (["--set", "quality.max_top_char_fraction=0"], "quality.max_top_char_fraction"),
    (["--set", "quality.min_cjk_chars=-5"], "quality.min_cjk_chars"),
    (["--set", "tokenizer.min_frequency=0"], "tokenizer.min_frequency"),
    (["--set", "max_documents=0"], "max_documents"),
    (["--set", "max_documents=-1"], "max_documents"),
    (["--set", "text_key="], "text_key"),
    (["--workers", "0"], "--workers 0: must be >= 1"),
    (["--workers", "-2"], "--workers -2: must be >= 1"),
    (["--runtime", "workers=0"], "workers: must be >= 1"),
    (["--runtime", "tasks=0"], "tasks: must be >= 1"),
    (["--runtime", "tasks=-3"], "tasks: must be >= 1"),
    (["--runtime", "slurm_cpus_per_task=0"], "slurm_cpus_per_task"),
]


@pytest.mark.parametrize("flags,says", BAD_VALUES, ids=[" ".join(f) for f, _ in BAD_VALUES])
def test_impossible_values_are_refused_before_work(tmp_path, capsys, one_doc, flags, says):
    code = _preprocess([one_doc], tmp_path / "out", *flags)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("obert preprocess: error: ") and says in err, err
    assert not (tmp_path / "out").exists()


def test_output_that_is_a_file_is_refused(tmp_path, capsys, one_doc):
    target = tmp_path / "out.txt"
    target.write_text("keep me")
    for output in (target, target / "corpus"):
        assert _preprocess([one_doc], output) == 2
        err = capsys.readouterr().err
        assert f"output_dir: {output}" in err and f"{target}" in err and "a file, not a folder" in err
    assert target.read_text() == "keep me"


def test_output_inside_an_input_folder_and_input_inside_output_are_refused(tmp_path, capsys, one_doc):
    folder = one_doc.parent
    assert _preprocess([folder], folder / "out") == 2
    err = capsys.readouterr().err
    assert f"output_dir: {folder / 'out'} is inside input folder {folder}" in err
    assert not (folder / "out").exists()  # refused before any work, so a second run cannot read it either
    assert _preprocess([folder], folder) == 2 and f"{folder} is input folder {folder}" in capsys.readouterr().err
    previous = tmp_path / "run" / "removed" / "too_short" / "00000.jsonl"  # a former run's drops, rerun in place
    previous.parent.mkdir(parents=True)
    previous.write_bytes(one_doc.read_bytes())
    assert _preprocess([previous], tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert f"inputs: {previous} is inside {tmp_path / 'run' / 'removed'}, which a run into {tmp_path / 'run'}" in err
    assert previous.is_file()


def test_every_from_pretrained_in_the_corpus_stage_is_local_only():
    """A call of from_pretrained in obert_lib/corpus without local_files_only=True could reach the Hub."""
    package = Path(corpus.__file__).parent
    calls = []
    for source in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "from_pretrained":
                local = any(
                    k.arg == "local_files_only" and getattr(k.value, "value", None) is True for k in node.keywords
                )
                calls.append((source.name, node.lineno, local))
    assert calls and all(local for _, _, local in calls), calls


def test_a_missing_corpus_tokenizer_is_named_without_network(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the corpus stage tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    from obert_lib.corpus import view

    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nocorpus' / 'tokenizer'} holds no tokenizer"):
        view.annotated_paragraphs_html(tmp_path / "nocorpus")
