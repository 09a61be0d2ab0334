"""The bad-input suite for config loaders and the CLI: every user mistake is one line and exit 2, never a traceback.

Each case runs `obert_lib.cli.main` in-process: an exception that escapes it is a traceback a user would see
(the test fails with it). Cases that need a checkpoint or a corpus are in tests/evaluation and tests/corpus.
"""

from __future__ import annotations

import pytest

from obert_lib.cli import main

pytestmark = pytest.mark.bad_input


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, command: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert lines and lines[-1].startswith(f"obert {command}: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])


BAD_YAML = "task: eprstmt\nbatch_size: [1, 2\nseed: 0\n"  # an unclosed flow sequence on line 2


@pytest.mark.parametrize(
    "command,flag",
    [
        ("zeroshot", "--config"),
        ("finetune", "--config"),
        ("preprocess", "--config"),
        ("pretrain", "--plan"),
        ("preprocess", "--runtime-config"),
    ],
)
def test_yaml_that_does_not_parse_names_file_line_and_column(capsys, tmp_path, command, flag):
    path = tmp_path / "broken.yaml"
    path.write_text(BAD_YAML, encoding="utf-8")
    code, err = run_cli(capsys, command, flag, str(path))
    assert_one_line_error(code, err, command, f"{path}:", "does not parse")
    assert f"{path}:3:5: " in err  # where the parser found ':' inside the unclosed [ of line 2


@pytest.mark.parametrize("command", ["zeroshot", "finetune", "preprocess", "pretrain"])
def test_set_value_that_does_not_parse_names_the_key(capsys, command):
    code, err = run_cli(capsys, command, "--set", "seed=[1,")
    assert_one_line_error(code, err, command, "--set seed", "does not parse")


@pytest.mark.parametrize("command", ["zeroshot", "finetune", "preprocess", "pretrain"])
def test_set_without_equals_is_one_line(capsys, command):
    code, err = run_cli(capsys, command, "--set", "seed")
    assert_one_line_error(code, err, command, "KEY=VALUE")


@pytest.mark.parametrize(
    "command,flag", [("zeroshot", "--config"), ("finetune", "--config"), ("preprocess", "--runtime-config")]
)
def test_config_file_that_is_not_a_mapping(capsys, tmp_path, command, flag):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    code, err = run_cli(capsys, command, flag, str(path))
    assert_one_line_error(code, err, command, str(path), "mapping")


@pytest.mark.parametrize(
    "command,flag",
    [("zeroshot", "--config"), ("finetune", "--config"), ("preprocess", "--runtime-config"), ("pretrain", "--plan")],
)
def test_missing_config_file(capsys, tmp_path, command, flag):
    code, err = run_cli(capsys, command, flag, str(tmp_path / "nope.yaml"))
    assert_one_line_error(code, err, command, "nope.yaml")


CHECKPOINT_KEY = {"zeroshot": "checkpoint", "finetune": "model.checkpoint"}

# (command, --set overrides, words the one-line error must hold); each refused before any work.
CONFIG_CASES = [
    ("zeroshot", ["batch_size=0"], ["batch_size", ">= 1"]),
    ("zeroshot", ["batch_size=-3"], ["batch_size"]),
    ("zeroshot", ["max_length=0"], ["max_length", ">= 16"]),
    ("zeroshot", ["tasks=cmnli"], ["tasks", "'cmnli' is not a FewCLUE task"]),
    ("zeroshot", ["tasks=eprstmt,eprstmt"], ["tasks", "names a task twice"]),
    ("zeroshot", ["task=eprstmt"], ["task", "did you mean 'tasks'"]),
    ("zeroshot", ["templates=nosuch.yaml"], ["nosuch.yaml"]),
    ("zeroshot", ["bacth_size=4"], ["bacth_size", "did you mean 'batch_size'"]),
    ("zeroshot", ["batch_size=many"], ["batch_size", "integer"]),
    ("finetune", ["train.batch_size=0"], ["train.batch_size", ">= 1"]),
    ("finetune", ["model.max_length=0"], ["model.max_length", ">= 8"]),
    ("finetune", ["train.epochs=0"], ["train.epochs"]),
    ("finetune", ["train.lr=-1"], ["train.lr"]),
    ("finetune", ["trick=pgd"], ["trick", "unknown key"]),
    ("finetune", ["tricks.pgd.enabled=maybe"], ["tricks.pgd.enabled", "true/false"]),
    ("finetune", ["data.task=nosuch"], ["nosuch"]),
    ("pretrain", ["stages=3"], ["stages"]),
    ("pretrain", ["no_such_key=1"], ["no_such_key", "unknown key"]),
    ("preprocess", ["no_such_key=1"], ["no_such_key", "unknown key"]),
]


@pytest.mark.parametrize("command,sets,needles", CONFIG_CASES, ids=[f"{c}-{'+'.join(s)}" for c, s, _ in CONFIG_CASES])
def test_impossible_config_values_are_one_line_before_any_work(capsys, tmp_path, command, sets, needles):
    argv = [command]
    for item in sets:
        argv += ["--set", item]
    if command in ("zeroshot", "finetune"):
        argv += ["--set", f"output_dir={tmp_path / 'out'}", "--set", f"{CHECKPOINT_KEY[command]}={tmp_path / 'no'}"]
    code, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, command, *needles)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["zeroshot", "finetune"])
def test_missing_checkpoint_is_one_line(capsys, tmp_path, command):
    code, err = run_cli(
        capsys,
        command,
        "--set",
        f"{CHECKPOINT_KEY[command]}={tmp_path / 'nowhere'}",
        "--set",
        f"output_dir={tmp_path / 'out'}",
    )
    assert_one_line_error(code, err, command, "checkpoint", "nowhere", "does not exist")
    assert not (tmp_path / "out").exists()


def test_outbound_connections_are_refused_in_tests():
    """The suite's guard (tests/conftest.py) that makes any download attempt fail loudly."""
    import socket
    import urllib.request

    from tests.conftest import NetworkAccessInTest

    with pytest.raises(NetworkAccessInTest):
        urllib.request.urlopen("https://huggingface.co/api/models/bert-base-chinese", timeout=5)
    with pytest.raises(NetworkAccessInTest):
        socket.create_connection(("8.8.8.8", 53), timeout=1)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["bench", "collate", "--corpus", "/nonexistent-corpus"], "/nonexistent-corpus does not exist"),
        (["bench", "train", "--corpus", "/nonexistent-corpus"], "/nonexistent-corpus does not exist"),
        (["bench", "preprocess", "--input", "/nonexistent.jsonl"], "--input: /nonexistent.jsonl is not a file"),
        (["bench", "preprocess", "--vocab", "/nonexistent-vocab.txt"], "--vocab: /nonexistent-vocab.txt is not a file"),
    ],
)
def test_benchmark_paths_are_checked_before_any_work(capsys, argv, needle):
    code, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, "bench", needle)


@pytest.mark.parametrize("command", ["zeroshot", "finetune"])
def test_an_output_path_that_is_a_file_is_refused(capsys, tmp_path, command):
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    for out, needle in ((afile, f"output_dir: {afile} is a file"), (afile / "sub", f"{afile} (a parent of")):
        code, err = run_cli(
            capsys, command, "--set", f"output_dir={out}", "--set", f"{CHECKPOINT_KEY[command]}={tmp_path}"
        )
        assert_one_line_error(code, err, command, needle)


def test_demo_with_no_matching_notebook_or_a_file_as_output_is_one_line(capsys, tmp_path):
    code, err = run_cli(capsys, "demo", "--only", "99", "--output", str(tmp_path / "out"))
    assert_one_line_error(code, err, "demo", "only: no notebook name starts with ['99']", "01_corpus_preprocessing")
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    code, err = run_cli(capsys, "demo", "--only", "01", "--output", str(afile))
    assert_one_line_error(code, err, "demo", f"output: {afile} is a file")
    assert not (tmp_path / "out").exists()
