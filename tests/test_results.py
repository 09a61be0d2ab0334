import pandas as pd

from obert_lib.results import append_result, hash_files, summarise


def test_append_rows_and_summarise(tmp_path):
    table = tmp_path / "results.csv"
    append_result(table, "finetune", 0, "abc", {"trick": "none", "opt": {"lr": 0.1}}, {"acc": 0.5})
    df = append_result(table, "finetune", 1, "abc", {"trick": "none", "opt": {"lr": 0.1}}, {"acc": 0.7})
    assert list(df["seed"]) == [0, 1]
    assert "config.opt.lr" in df.columns and "metric.acc" in df.columns
    s = summarise(pd.read_csv(table), ["config.trick"], "metric.acc")
    assert s.loc[0, "mean"] == 0.6 and round(s.loc[0, "std"], 6) == round(pd.Series([0.5, 0.7]).std(), 6)
    assert s.loc[0, "count"] == 2


def test_hash_files_changes_with_content(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x")
    h1 = hash_files([f])
    f.write_text("y")
    assert hash_files([f]) != h1 and len(h1) == 16
