"""UnifiedModel over top-N fine-tuned task models from one tiny checkpoint (OBERT and transformers' BERT layout):
its logits equal each task model run alone, one copy of the shared bottom, mismatched backbones refused by name."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from obert_lib import finetuning
from obert_lib.config import ConfigError, DataError
from obert_lib.finetuning import encoding
from obert_lib.finetuning import model as ftmodel
from obert_lib.finetuning.examples import Example
from obert_lib.unified import UnifiedModel, top_n_config

TOL = 1e-5
TEXTS = ["这家店的菜很好吃，服务也不错", "太差了", "北京很好"]
PAIRS = [("今天天气怎么样", "今天天气如何"), ("我想买手机", "北京很好吃"), ("好", "不好说")]
QUERY = "encoder.encoder.layer.0.attention.self.query.weight"


def _conll(folder):
    folder.mkdir(exist_ok=True)
    sentence = [("北", "B-LOC"), ("京", "I-LOC"), ("很", "O"), ("好", "O")]
    text = "\n".join(f"{c} {t}" for c, t in sentence) + "\n\n"
    for split in ("train", "dev"):
        (folder / f"{split}.txt").write_text(text * 4, encoding="utf-8")
    return {"task": "conll", "data_dir": str(folder), "train_split": "train", "eval_split": "dev"}


def _tune(checkpoint, out, data: dict, freeze: int, seed: int = 0, **sections):
    cfg = {"model": {"checkpoint": str(checkpoint), "max_length": 64}, "data": data, "output_dir": str(out),
           "train": {"epochs": 1, "seed": seed}, **sections}  # fmt: skip
    cfg = top_n_config(cfg, 2 - freeze, num_layers=2)  # the tiny preset has 2 layers: top N = 2 - freeze
    return finetuning.run(cfg, progress=False).output_dir / "best"


@pytest.fixture(scope="module")
def tasks(tiny_checkpoint, tmp_path_factory):
    """Four task models from the tiny checkpoint: classification (plain and Multi-Sample Dropout), pair and
    tagging; three trained with freeze_layers 1 (top 1 layer), the tagging one with 2 (frozen deeper)."""
    ckpt, root = tiny_checkpoint.checkpoints[-1], tmp_path_factory.mktemp("unified")
    return {
        "eprstmt": _tune(ckpt, root / "eprstmt", {"task": "eprstmt"}, 1),
        "eprstmt_msd": _tune(ckpt, root / "msd", {"task": "eprstmt"}, 1, seed=1, tricks={"msd": {"enabled": True}}),
        "bustm": _tune(ckpt, root / "bustm", {"task": "bustm"}, 1),
        "ner": _tune(ckpt, root / "ner", _conll(root / "conll"), 2),
    }


def _batches(tokenizer):
    single = [Example(id=str(i), text=t) for i, t in enumerate(TEXTS)]
    pairs = [Example(id=str(i), text=a, pair=b) for i, (a, b) in enumerate(PAIRS)]
    return [encoding.encode("classification", tokenizer, single, 64), encoding.encode("pair", tokenizer, pairs, 64)]


def _assert_equal_to_separate(unified: UnifiedModel, dirs: dict) -> None:
    with torch.no_grad():
        for batch in _batches(unified.tokenizer):
            assert batch["attention_mask"].min() == 0  # padded rows: the mask path is exercised
            together = unified(**batch)
            assert list(together) == list(dirs)
            for name, folder in dirs.items():
                alone = ftmodel.load(folder)[0](batch).logits
                assert together[name].shape == alone.shape
                assert (together[name] - alone).abs().max().item() <= TOL, name


def test_unified_logits_equal_each_task_model_alone_with_one_shared_bottom(tasks):
    unified = UnifiedModel.from_checkpoints(tasks)
    assert unified.layout == "obert" and unified.shared_layers == 1  # the smallest freeze_layers
    assert [len(unified.tops[n].layers) for n in tasks] == [1, 1, 1, 1]
    _assert_equal_to_separate(unified, tasks)
    full = ftmodel.load(tasks["eprstmt"])[0]
    tops = [ftmodel.load(folder)[0] for name, folder in tasks.items() if name != "eprstmt"]
    top_params = [
        sum(p.numel() for p in [*m.encoder.encoder.layer[1].parameters(), *m.head.parameters()]) for m in tops
    ]
    assert sum(p.numel() for p in unified.parameters()) == sum(p.numel() for p in full.parameters()) + sum(top_params)
    assert (
        unified.max_length == 64
        and unified.labels["bustm"]
        == json.loads((tasks["bustm"] / "finetune.json").read_text(encoding="utf-8"))["labels"]
    )


def test_predict_gives_each_tasks_label_names_as_the_task_models_do(tasks):
    unified = UnifiedModel.from_checkpoints(tasks)
    got = unified.predict(PAIRS, batch_size=2)
    batch = _batches(unified.tokenizer)[1]
    with torch.no_grad():
        for name, folder in tasks.items():
            model, info = ftmodel.load(folder)
            best = model(batch).logits.argmax(-1)
            if name == "ner":  # one tag per token of the two texts: [CLS], [SEP] and padding left out
                special = torch.tensor(unified.tokenizer.all_special_ids)
                keep = batch["attention_mask"].bool() & ~torch.isin(batch["input_ids"], special)
                want = [[info["labels"][i] for i in best[b][keep[b]].tolist()] for b in range(len(PAIRS))]
                assert [len(x) for x in want] == [len(a) + len(b) for a, b in PAIRS]
            else:
                want = [info["labels"][i] for i in best.tolist()]
            assert got[name] == want, name
    assert list(unified.predict(TEXTS)) == list(tasks)
    with pytest.raises(DataError, match=r"^texts: give a non-empty list"):
        unified.predict([])
    with pytest.raises(DataError, match=r"^texts: .*not a mix"):
        unified.predict(["好", ("好", "不好")])


def test_a_list_of_checkpoints_is_named_by_task_and_a_duplicate_refused(tasks):
    unified = UnifiedModel.from_checkpoints([tasks["eprstmt"], tasks["bustm"]])
    assert list(unified.tops) == ["eprstmt", "bustm"]
    with pytest.raises(ConfigError, match=r"^tasks: .* are both eprstmt; name them with a dict"):
        UnifiedModel.from_checkpoints([tasks["eprstmt"], tasks["eprstmt_msd"]])


def test_an_edited_frozen_tensor_is_refused_naming_task_and_tensor(tasks, tmp_path):
    edited = tmp_path / "best"
    shutil.copytree(tasks["bustm"], edited)
    state = load_file(edited / "model.safetensors")
    state[QUERY][0, 0] += 1e-3
    save_file(state, edited / "model.safetensors")
    with pytest.raises(ConfigError) as err:
        UnifiedModel.from_checkpoints({"eprstmt": tasks["eprstmt"], "bustm": edited})
    assert str(err.value).startswith(f"tasks.bustm: shared tensor {QUERY} differs from task eprstmt's")
    assert "\n" not in str(err.value)


def test_fewer_frozen_layers_than_shared_are_refused_naming_task_and_tensor(tiny_checkpoint, tasks, tmp_path):
    with pytest.raises(ConfigError) as err:  # layer 1 was trained in eprstmt and bustm
        UnifiedModel.from_checkpoints({"ner": tasks["ner"], "eprstmt": tasks["eprstmt"]}, shared_layers=2)
    assert str(err.value).startswith(
        "tasks.eprstmt: shared tensor encoder.encoder.layer.1.attention.self.query.weight differs from task ner's"
    )
    assert "model.freeze_layers = 1; fine-tune it with freeze_layers >= 2 or pass shared_layers <= 1" in str(err.value)
    unfrozen = _tune(tiny_checkpoint.checkpoints[-1], tmp_path / "full", {"task": "bustm"}, 0)
    with pytest.raises(ConfigError) as err:
        UnifiedModel.from_checkpoints({"eprstmt": tasks["eprstmt"], "full": unfrozen})
    assert str(err.value).startswith(
        "tasks.full: shared tensor encoder.embeddings.word_embeddings.weight differs from task eprstmt's"
    )
    assert "model.freeze_layers = 0 (nothing frozen)" in str(err.value)


def test_top_n_config_and_refusals(tiny_checkpoint, tasks):
    ckpt = str(tiny_checkpoint.checkpoints[-1])
    base = {"model": {"checkpoint": ckpt, "max_length": 32}, "train": {"epochs": 1}}
    assert top_n_config(base, 1) == {"model": {"checkpoint": ckpt, "max_length": 32, "freeze_layers": 1},
                                     "train": {"epochs": 1}}  # fmt: skip
    assert base["model"] == {"checkpoint": ckpt, "max_length": 32}  # a copy: the base is untouched
    assert top_n_config(finetuning.FinetuneConfig(), 3, num_layers=12)["model"]["freeze_layers"] == 9
    with pytest.raises(ConfigError, match=r"^top_n: 3 must be an integer in \[0, 2\]"):
        top_n_config(base, 3)
    model = ftmodel.load(tasks["eprstmt"])[0]
    choice = ftmodel.FinetuneModel(model.encoder, "multiple_choice", 1, 0.0)
    with pytest.raises(ConfigError, match=r"^tasks.chid: a multiple_choice task reads one sequence per choice"):
        UnifiedModel.from_models({"eprstmt": model, "chid": choice}, shared_layers=1)
    with pytest.raises(ConfigError, match=r"^shared_layers: 3 must be an integer in \[0, 2\]"):
        UnifiedModel.from_models({"eprstmt": model}, shared_layers=3)
    with pytest.raises(ConfigError, match=r"^tasks.x: .* holds no finetune.json"):
        UnifiedModel.from_checkpoints({"x": tiny_checkpoint.checkpoints[-1]})


def test_bert_layout_tasks_equal_their_models_alone(tiny_checkpoint, tmp_path):
    """transformers' BertModel layout: a random tiny BertForMaskedLM with the tiny checkpoint's tokenizer."""
    from transformers import BertConfig, BertForMaskedLM

    from obert_lib.model.checkpoint_check import load_tokenizer

    tokenizer = load_tokenizer(tiny_checkpoint.checkpoints[-1])
    bert = tmp_path / "bert"
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), num_hidden_layers=2, hidden_size=64, num_attention_heads=2,
                        intermediate_size=256, max_position_embeddings=128)  # fmt: skip
    BertForMaskedLM(config).save_pretrained(bert)
    tokenizer.save_pretrained(bert)
    dirs = {
        "eprstmt": _tune(bert, tmp_path / "eprstmt", {"task": "eprstmt"}, 1),
        "bustm": _tune(bert, tmp_path / "bustm", {"task": "bustm"}, 1),
        "tnews": _tune(bert, tmp_path / "tnews", {"task": "tnews", "train_split": "dev_0"}, 1),
    }
    unified = UnifiedModel.from_checkpoints(dirs)
    assert unified.layout == "bert" and unified.shared_layers == 1
    _assert_equal_to_separate(unified, dirs)


def test_max_difference_measures_each_task_against_its_model_alone(tasks):
    from obert_lib.unified import top_n

    diff = top_n.max_difference(tasks, TEXTS)
    assert list(diff) == list(tasks) and max(diff.values()) <= TOL
