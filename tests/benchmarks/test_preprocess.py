"""`obert bench preprocess`'s timed pass on a tiny input: the corpus stage's own steps, same shards for 1 and 2
workers."""

import json

import pyarrow.parquet as pq

from obert_lib.benchmarks import preprocess as bench
from obert_lib.corpus.config import CorpusConfig, QualityConfig
from obert_lib.corpus.pipeline import cleaning_steps
from tests.conftest import shared_file

TEXTS = [
    "北京是中国的首都，也是政治和文化中心。",
    "长江是中国第一长河",
    "哈哈哈哈哈哈哈哈哈哈",
    "联系我们：13800138000，加微信领红包",
    "今天天气真不错呀我们去公园散步吧",
    "ok",
    "这部电影的剧情很精彩，演员的表演也很到位",
]


def test_timed_pass_writes_the_same_shards_with_one_and_two_workers(tmp_path):
    paths = []
    for i in range(2):
        path = tmp_path / f"in-{i}.jsonl"
        path.write_text(
            "".join(
                json.dumps({"id": f"{i}-{k}", "text": t}, ensure_ascii=False) + "\n" for k, t in enumerate(TEXTS * 3)
            ),
            encoding="utf-8",
        )
        paths.append(path)
    vocab = str(shared_file("vocab/bert-base-chinese-vocab.txt"))
    shards = {}
    for workers in (1, 2):
        timing = bench._measured_pass(paths, tmp_path / f"out-{workers}", workers, "native", vocab)
        assert timing.seconds > 0 and timing.rss_mb > 50  # a worker holds at least the segmenter's tables
        # both tasks found in the task logs, inside the pass (log times have millisecond resolution)
        assert len(timing.tasks) == 2 and all(-0.002 <= s <= e <= timing.seconds + 0.002 for s, e in timing.tasks)
        assert timing.outside_tasks >= -0.002 and 0 <= timing.end_gap <= timing.seconds
        shards[workers] = sorted((tmp_path / f"out-{workers}" / "shards").glob("*.parquet"))
    assert (
        [p.name for p in shards[1]]
        == [p.name for p in shards[2]]
        == ["000_part-00000.parquet", "000_part-00001.parquet"]
    )
    tables = {w: [pq.read_table(p) for p in shards[w]] for w in shards}
    assert all(a.equals(b) for a, b in zip(tables[1], tables[2]))
    # each file without the spam, the laugh and "ok"; repeated paragraphs stay (dedup is corpus.run's own stages)
    kept = [text for text in TEXTS * 3 if text not in (TEXTS[2], TEXTS[3], TEXTS[5])]
    assert len(kept) == 12 and [t.column("text").to_pylist() for t in tables[1]] == [kept] * 2


def test_timed_pass_cleans_with_the_corpus_stage_steps():
    """The benchmark times the corpus stage's cleaning steps, with its thresholds (but 5 CJK chars for FewCLUE)."""
    cfg = CorpusConfig(inputs=["x"], quality=QualityConfig(min_cjk_chars=5))
    names = [type(s).__name__ for s in cleaning_steps(cfg)]
    assert names == ["ReaderDropFilter", "LengthGuardFilter", "Normalize", "LineRules", "QualityFilter"]
    quality = cleaning_steps(cfg)[-1]
    assert (quality.min_cjk_chars, quality.max_punct, quality.max_dup_ngrams) == (5, 0.3, 0.3)


def test_task_spans_read_start_and_end_of_each_task_from_datatrove_logs(tmp_path):
    from datetime import datetime

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "task_00000.log").write_text(
        "2026-11-22 09:52:56.204 | INFO     | datatrove.utils.logging:add_task_logger:76 - Launching pipeline for rank=0\n"  # noqa: E501 (a real log line)
        "2026-11-22 09:52:56.221 | INFO     | datatrove.pipeline.readers.base:read_files_shard:215 - Reading input file x\n"  # noqa: E501 (a real log line)
        "2026-11-22 09:52:57.621 | SUCCESS  | datatrove.executor.base:_run_for_rank:140 - Processing done for rank=0\n"
    )
    (logs / "task_00001.log").write_text(  # killed: no end, left out
        "2026-11-22 09:52:56.300 | INFO     | datatrove.utils.logging:add_task_logger:76 - Launching pipeline for rank=1\n"  # noqa: E501 (a real log line)
    )
    (logs / "task_00002.log").write_text(
        "2026-11-22 09:52:56.250 | INFO     | datatrove.utils.logging:add_task_logger:76 - Launching pipeline for rank=2\n"  # noqa: E501 (a real log line)
        "2026-11-22 09:52:58.000 | SUCCESS  | datatrove.executor.base:_run_for_rank:140 - Processing done for rank=2\n"
    )
    start = datetime(2026, 11, 22, 9, 52, 56).timestamp()
    spans = bench.task_spans(tmp_path, start)
    assert [(round(s, 3), round(e, 3)) for s, e in spans] == [(0.204, 1.621), (0.25, 2.0)]
    timing = bench.PassTiming(seconds=2.1, rss_mb=300.0, tasks=spans)
    assert [round(t, 3) for t in timing.task_seconds] == [1.417, 1.75]
    assert round(timing.end_gap, 3) == 0.379 and round(timing.outside_tasks, 3) == 0.304  # 2.1 - (2.0 - 0.204)
    assert bench.task_spans(tmp_path / "none", start) == []


def test_bench_prints_one_table_with_the_full_pipelines_and_ends_with_the_ratio(tmp_path, capsys):
    """On a tiny input: the single pass, the baseline, and both full pipelines with 1 and 2 workers; last line ratio."""
    paths = []
    for i in range(2):
        path = tmp_path / f"in-{i}.jsonl"
        path.write_text(
            "".join(
                json.dumps({"id": f"{i}-{k}", "text": f"{t}{i}{k}"}, ensure_ascii=False) + "\n"
                for k, t in enumerate(TEXTS * 3)
            ),
            encoding="utf-8",
        )
        paths.append(path)
    vocab = str(shared_file("vocab/bert-base-chinese-vocab.txt"))
    bench.run([str(p) for p in paths], vocab, repeats=1, full_repeats=1)
    lines = capsys.readouterr().out.strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("pipeline"))
    table = [line.rsplit(None, 3)[0].strip() + f" {line.split()[-3]}" for line in lines[header + 1 : header + 10]]
    assert table == [
        "ours (C annotate+tokenise) 1",
        "ours (C annotate+tokenise) 2",
        "baseline (jieba.posseg) 1",
        "ours, Python rules (rjieba) 1",
        "datatrove read+write only 1",
        "ours full pipeline 1",
        "ours full pipeline 2",
        "datatrove stock full pipeline 1",
        "datatrove stock full pipeline 2",
    ]
    assert any(line.startswith("ours full, 2 workers vs 1:") for line in lines)
    assert any(line.startswith("stock full, 2 workers vs 1:") for line in lines)
    ratio = lines[-1].split()
    assert ratio[0] == "ratio:" and float(ratio[1]) > 0


def _talk_on_stderr(word: str) -> str:
    """A run that logs to standard error as datatrove does, through Python and through fd 2 itself."""
    import os
    import sys

    sys.stderr.write(f"{word} from sys.stderr\n")
    sys.stderr.flush()
    os.write(2, f"{word} from fd 2\n".encode())
    return word


def _fail_after_logging() -> None:
    import sys

    sys.stderr.write("last task log line\n")
    sys.stderr.flush()
    raise ValueError("the run failed")


def test_fresh_runs_log_to_a_file_not_the_terminal(tmp_path, capfd):
    import pytest

    from obert_lib.benchmarks.full_pipeline import fresh, stderr_log

    log = stderr_log(tmp_path / "run-1")
    assert log == tmp_path / "run-1.stderr.log"
    assert fresh(_talk_on_stderr, "hello", log=log) == "hello"
    assert log.read_text() == "hello from sys.stderr\nhello from fd 2\n"
    assert "hello" not in capfd.readouterr().err
    with pytest.raises(ValueError, match="the run failed"):
        fresh(_fail_after_logging, log=tmp_path / "run-2.stderr.log")
    err = capfd.readouterr().err
    assert f"--- the end of {tmp_path / 'run-2.stderr.log'} ---" in err and "last task log line" in err
