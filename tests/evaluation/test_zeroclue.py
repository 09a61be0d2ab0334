import json

import pytest

from obert_lib import evaluation
from obert_lib.evaluation import build_cloze, load_split
from tests.conftest import shared_file


class CharTokenizer:
    """Minimal stand-in: one id per character."""

    cls_token_id, sep_token_id, mask_token_id, pad_token_id, unk_token_id = 1, 2, 3, 0, 4

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [10 + ord(c) % 1000 for c in text]}


def test_build_cloze_places_masks_and_truncates_text_fields():
    tk = CharTokenizer()
    ids, pos = build_cloze(tk, "{mask}满意。{sentence}", {"sentence": "很好"}, 1, 64)
    assert ids[0] == 1 and ids[-1] == 2 and pos == [1] and ids[1] == 3 and len(ids) == 1 + 1 + 3 + 2 + 1
    ids, pos = build_cloze(tk, "{mask}满意。{sentence}", {"sentence": "好" * 100}, 1, 20)
    assert len(ids) == 20 and ids[pos[0]] == 3
    ids, _ = build_cloze(
        tk, "“{sentence1}”与“{sentence2}”的意思{mask}同。", {"sentence1": "甲" * 50, "sentence2": "乙" * 5}, 1, 30
    )
    assert len(ids) == 30 and ids.count(10 + ord("乙") % 1000) == 5  # the longer field is cut first


def test_sample_splits_load_with_labels():
    rows = load_split("eprstmt", "sample:fewclue", "dev_0")
    assert len(rows) == 16 and {r["label"] for r in rows} == {"Positive", "Negative"}
    with pytest.raises(FileNotFoundError, match="dev_9.json"):
        load_split("eprstmt", "sample:fewclue", "dev_9")
    with pytest.raises(ValueError, match="not supported yet"):
        load_split("cmnli", "sample:fewclue", "dev_0")


def test_zero_shot_run_writes_metrics_and_config(tiny_checkpoint, tmp_path):
    r = evaluation.run(
        {"checkpoint": str(tiny_checkpoint.checkpoints[-1]), "output_dir": str(tmp_path)}, progress=False
    )
    assert r.metrics["n"] == 16 and r.metrics["majority_baseline"] == 0.5
    shares = r.predictions["pred"].value_counts(normalize=True).to_dict()  # the metrics describe the predictions
    assert {label: share for label, share in r.metrics["predicted_share"].items() if share} == shares
    assert abs(sum(r.metrics["predicted_share"].values()) - 1) < 1e-9
    assert r.output_dir == tmp_path / "eprstmt" / "dev_0"  # runs of other tasks and splits write beside it
    assert json.loads((r.output_dir / "config.json").read_text())["task"] == "eprstmt"
    assert (r.output_dir / "predictions.csv").is_file() and (tmp_path / "results.csv").is_file()
    acc = (r.predictions["gold"] == r.predictions["pred"]).mean()
    assert acc == r.metrics["accuracy"]


@pytest.mark.parametrize(
    "task,keys", [("eprstmt", {"id", "sentence", "label"}), ("bustm", {"id", "sentence1", "sentence2", "label"})]
)
def test_sample_files_match_real_fewclue_format(task, keys):
    real = [json.loads(line) for line in open(shared_file(f"fewclue/{task}/dev_0.json"), encoding="utf-8")]
    sample = load_split(task, "sample:fewclue", "dev_0")
    assert set(real[0]) == keys == set(sample[0])
    assert {r["label"] for r in real} == {r["label"] for r in sample}
    assert len(load_split(task, "shared:fewclue", "dev_0")) == len(real)
