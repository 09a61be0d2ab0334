"""The KgCLUE QA pipeline: relation pair data, the stage of each error, the whole pipeline at tiny size on
hand-written rows and knowledge (never skipped), the `obert kbqa` CLI and its one-line errors."""

from __future__ import annotations

import json

import pytest

from obert_lib.cli import main
from obert_lib.config import ConfigError, DataError
from obert_lib.kbqa import train as kbqa_train
from obert_lib.kbqa.metric import normalize
from obert_lib.kbqa.pipeline import STAGES, KbqaPipeline, error_stage
from obert_lib.kbqa.relation_data import MARKS, mark, mention_span, relation_examples, split_answer
from obert_lib.kbqa.store import KnowledgeStore, build_store
from tests.conftest import shared_file


@pytest.fixture
def sample(tmp_path):
    """The hand-written sample (train 20, dev 8 questions, 34 triples) and its store."""
    paths = kbqa_train.sample_kgclue(tmp_path / "sample")
    build_store(paths["knowledge"], tmp_path / "kb.sqlite", progress=False)
    return paths, tmp_path / "kb.sqlite"


def read_rows(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


# --- relation pair data -------------------------------------------------------------------------------------------


def check_pairs(rows, examples, store=None):
    by_question: dict = {}
    for ex in examples:
        by_question.setdefault(ex["question_id"], []).append(ex)
    assert set(by_question) == {r["id"] for r in rows}
    for row in rows:
        subject, relation, _ = split_answer(row["answer"])
        pairs = by_question[row["id"]]
        positives = [p["relation"] for p in pairs if p["label"] == "1"]
        negatives = [p["relation"] for p in pairs if p["label"] == "0"]
        assert positives == [relation]
        assert normalize(relation) not in {normalize(r) for r in negatives}  # never the positive, in any spelling
        assert len(set(negatives)) == len(negatives)
        if store is not None:  # the entity's other relations are all there (the sample has at most 3 each)
            assert {r for r in store.relations(subject) if normalize(r) != normalize(relation)} <= set(negatives)


def test_relation_negatives_are_the_entitys_other_relations_and_seeded_random_ones_never_the_positive(sample):
    paths, db = sample
    rows = read_rows(paths["train"])
    with KnowledgeStore(db) as store:
        examples, stats = relation_examples(rows, store, negatives=4, seed=3)
        check_pairs(rows, examples, store)
        assert stats["positives"] == len(rows) == stats["questions"]
        assert stats["examples"] == len(examples) == len(rows) + stats["entity_negatives"] + stats["random_negatives"]
        assert stats["random_negatives"] == 4 * len(rows) and stats["unmarked"] == 0
        assert relation_examples(rows, store, negatives=4, seed=3)[0] == examples  # seeded
        assert relation_examples(rows, store, negatives=4, seed=4)[0] != examples
    alone, stats = relation_examples(rows, None, negatives=2, mark_mention=False)
    check_pairs(rows, alone)
    assert stats["entity_negatives"] == 0 and alone[0]["text"] == rows[0]["question"]


def test_a_relation_spelled_otherwise_in_the_store_is_not_a_negative(tmp_path):
    (tmp_path / "kb.txt").write_text("某书\tISBN\t978-7\n某书\t作者\t某人\n某书\t出版社\t某社\n", encoding="utf-8")
    build_store(tmp_path / "kb.txt", tmp_path / "kb.sqlite", progress=False)
    rows = [{"id": 1, "question": "某书的isbn是多少", "answer": "某书 ||| isbn ||| 978-7"},
            {"id": 2, "question": "某书的作者", "answer": "某书 ||| 作者 ||| 某人"}]  # fmt: skip
    with KnowledgeStore(tmp_path / "kb.sqlite") as store:
        examples, _ = relation_examples(rows, store, negatives=5, extra_pool=["ISBN", "Isbn ", "出版社"])
    check_pairs(rows, examples)
    first = [e["relation"] for e in examples if e["question_id"] == 1]
    assert first[0] == "isbn" and "ISBN" not in first and "Isbn" not in first


def test_the_mention_is_marked_where_the_tagger_is_taught_it():
    question = "刘晓华主要讲什么课啊？"
    span = mention_span(question, "刘晓华（广东工业大学教授）")
    assert span == (0, 3) and mark(question, span) == f"{MARKS[0]}刘晓华{MARKS[1]}主要讲什么课啊？"
    assert mention_span("龙编车站在哪", "龙编站") == (0, 2)  # longest common substring of >= 2 characters
    assert mention_span("它在哪", "龙编站") is None and mark("它在哪", None) == "它在哪"


@pytest.mark.bad_input
def test_bad_relation_data_input_is_one_line():
    with pytest.raises(DataError, match="row 7: answer 'a ||| b' is not"):
        relation_examples([{"id": 7, "question": "q", "answer": "a ||| b"}])
    with pytest.raises(ConfigError, match="negatives: -1 must be >= 0"):
        relation_examples([{"id": 7, "question": "q", "answer": "a ||| b ||| c"}], negatives=-1)


# --- error stages ---------------------------------------------------------------------------------------------------

GOLD = "刘晓华（广东工业大学教授） ||| 主讲课程 ||| 《固体物理》"
Q = "刘晓华主要讲什么课啊？"


@pytest.mark.parametrize(
    "result, stage",
    [
        ({"answer": GOLD, "candidates": ["刘晓华（广东工业大学教授）"], "spans": [[0, 3]]}, "correct"),
        ({"answer": "", "candidates": [], "spans": []}, "mention_missed"),
        ({"answer": "", "candidates": [], "spans": [[5, 7]]}, "mention_missed"),  # a mention elsewhere
        ({"answer": "", "candidates": [], "spans": [[1, 3]]}, "entity_not_found"),  # overlaps the gold mention
        ({"answer": "刘晓华（演员） ||| 职业 ||| 演员", "candidates": ["刘晓华（演员）"], "spans": [[0, 3]]},
         "entity_not_found"),
        ({"answer": "刘晓华（广东工业大学教授） ||| 职称 ||| 教授", "spans": [[0, 3]],
          "candidates": ["刘晓华（演员）", "刘晓华（广东工业大学教授）"]}, "wrong_relation"),
        ({"answer": "刘晓华（演员） ||| 职业 ||| 演员", "spans": [[0, 3]],
          "candidates": ["刘晓华（演员）", "刘晓华（广东工业大学教授）"]}, "wrong_relation"),  # a homonym won
        ({"answer": "刘晓华（广东工业大学教授） ||| 主讲课程 ||| 《热学》", "spans": [[0, 3]],
          "candidates": ["刘晓华（广东工业大学教授）"]}, "wrong_object"),
    ],
)  # fmt: skip
def test_each_question_goes_to_the_first_stage_that_failed(result, stage):
    assert error_stage(Q, GOLD, result) == stage


def test_character_tags_follow_the_first_token_of_each_word():
    # "Apple Inc在哪": words Apple | Inc(2 tokens: In, ##c) | 在 | 哪; predicted B, I, O(ignored: later sub-token), O
    question = "Apple Inc在哪"
    word_ids = [None, 0, 1, 1, 2, 3, None]
    offsets = [(0, 0), (0, 5), (6, 8), (8, 9), (9, 10), (10, 11), (0, 0)]
    predicted = [0, 1, 2, 0, 0, 0, 0]
    tags = KbqaPipeline._char_tags(question, word_ids, offsets, predicted)
    assert tags == ["B-SUBJ"] + ["I-SUBJ"] * 8 + ["O", "O"]  # the space inside the entity continues it


# --- the pipeline end to end at tiny size (hand-written rows, never skipped) ------------------------------------------


@pytest.fixture(scope="module")
def trained(tiny_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("kbqa")
    paths = kbqa_train.sample_kgclue(root / "sample")
    cfg = kbqa_train.load_config({
        "checkpoint": str(tiny_checkpoint.checkpoints[-1]), "kgclue_dir": str(root / "sample"),
        "knowledge_file": paths["knowledge"], "output_dir": str(root / "out"), "negatives": 3,
        "tagger": {"epochs": 2, "batch_size": 8}, "relation": {"epochs": 2, "batch_size": 16},
    })  # fmt: skip
    built = kbqa_train.build_kb(cfg, progress=False)
    return cfg, built, kbqa_train.train_kbqa(cfg, progress=False)


def test_training_writes_both_models_and_reruns_return_the_finished_runs(trained, monkeypatch):
    cfg, built, result = trained
    assert (built["triples"], built["entities"], built["skipped"]) == (34, 13, 0)
    assert (result["train_rows"], result["heldout_rows"]) == (18, 2)  # a tenth of the 20 train rows held out
    assert result["tagger_metrics"]["metric"] == "span_f1" and result["relation_metrics"]["metric"] == "accuracy"
    assert result["relation_data"]["train"]["positives"] == 18
    from obert_lib.finetuning import trainer

    monkeypatch.setattr(trainer, "train_step", None)  # any training would fail
    again = kbqa_train.train_kbqa(cfg, progress=False)
    assert again["tagger_metrics"] == result["tagger_metrics"]


def test_the_pipeline_runs_end_to_end_and_its_stage_counts_add_up(trained):
    cfg, _, _ = trained
    metrics = kbqa_train.evaluate_kbqa(cfg, progress=False)
    assert metrics["n"] == 8 and sum(metrics["stages"].values()) == 8 and list(metrics["stages"]) == list(STAGES)
    assert metrics["stages"]["correct"] == round(metrics["EM_All"] * 8)
    assert 0 <= metrics["EMF1"] <= 1 and metrics["missing"] == 0
    lines = read_rows(metrics["predictions"])
    dev = read_rows(cfg.split_file("dev"))
    assert [r["id"] for r in lines] == [r["id"] for r in dev]
    assert all(r["error_stage"] in STAGES and r["gold"] == d["answer"] for r, d in zip(lines, dev))
    saved = json.loads((cfg.out / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["stages"] == metrics["stages"]


def test_ask_answers_with_a_triple_of_the_store(trained):
    cfg, _, _ = trained
    with kbqa_train.load_pipeline(cfg) as pipe:
        result = pipe.ask("  刘晓华主要讲什么课啊？ ")
        assert result["stage"] in ("answered", "mention_missed", "entity_not_found")
        if result["answer"]:
            s, p, o = (x.strip() for x in result["answer"].split("|||"))
            assert o in pipe.store.objects(s, p) and s in result["candidates"] and 0 <= result["score"] <= 1
        with pytest.raises(DataError, match="is empty"):
            pipe.ask("  ")


def test_the_cli_evaluates_and_asks(trained, capsys):
    cfg, _, _ = trained
    common = ["--output", str(cfg.out), "--kgclue-dir", cfg.kgclue_dir, "--runtime", "progress=false"]
    assert main(["kbqa", "eval", *common, "--max-rows", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == 3 and sum(printed["stages"].values()) == 3
    assert main(["kbqa", "ask", "李白字什么？", "红楼梦的作者是谁？", *common]) == 0
    assert capsys.readouterr().out.count('"question": ') == 2


# --- bad input: one line, exit 2 ----------------------------------------------------------------------------------


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "argv, needle",
    [
        (["kbqa", "ask", "   "], "is empty; give a question"),
        (["kbqa", "ask", "李白字什么？"], "no knowledge store there"),
        (["kbqa", "eval"], "no knowledge store there"),
        (["kbqa", "train"], "no knowledge store there"),
        (["kbqa", "build-kb", "--kgclue-dir", "/nonexistent/kgclue"], "kgclue_dir: no train.json in"),
        (["kbqa", "build-kb", "--knowledge", "/nonexistent/k.txt"], "/nonexistent/k.txt does not exist"),
        (["kbqa", "train", "--set", "negatives=-1"], "negatives: must be >= 0"),
        (["kbqa", "eval", "--runtime", "threads=2"], "--runtime threads: not a setting of `obert kbqa`"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, argv, needle):
    assert main([*argv, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.startswith("obert kbqa: error:") and err.count("\n") == 1


@pytest.mark.bad_input
def test_a_store_without_models_is_one_line(sample, tmp_path, capsys):
    _, db = sample
    assert main(["kbqa", "ask", "李白字什么？", "--store", str(db), "--output", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "tagger_dir:" in err and "holds no fine-tuned model" in err and err.count("\n") == 1


# --- shared data (skipped without it) -----------------------------------------------------------------------------


def test_relation_data_on_shared_kgclue_never_uses_the_positive_as_a_negative(tmp_path):
    from obert_lib.finetuning.ner import read_kgclue
    from obert_lib.kbqa.store import kb_from_kgclue

    train, dev = shared_file("kgclue/train.json"), shared_file("kgclue/dev.json")
    kb_from_kgclue(train, dev, tmp_path / "kb.txt")
    build_store(tmp_path / "kb.txt", tmp_path / "kb.sqlite", progress=False)
    rows = read_kgclue(train)[:300]
    with KnowledgeStore(tmp_path / "kb.sqlite") as store:
        examples, stats = relation_examples(rows, store, negatives=3)
        check_pairs(rows, examples, store)
    assert stats["random_negatives"] == 3 * 300 and stats["unmarked"] < 30
