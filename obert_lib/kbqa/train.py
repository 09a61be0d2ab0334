"""KgCLUE knowledge-base QA end to end from one config: build the store, train both models, evaluate, load.

- `build_kb(cfg)`: the knowledge file (default: the answers of <kgclue_dir>/train + dev through
  `store.kb_from_kgclue`, a subset with far fewer distractor relations than the real Knowledge.txt) loaded into
  the SQLite store `cfg.store`;
- `train_kbqa(cfg)`: the mention tagger (finetuning data.task "kgclue_ner") and the question × relation pair
  classifier (`relation_data`, finetuning data.task "custom") fine-tuned from `cfg.checkpoint` with
  `finetuning.run`. Both are evaluated after each epoch on a held-out slice of the TRAIN file (its last
  `heldout_rows` rows, at most a tenth of it), never on the eval split, which stays for `evaluate_kbqa`;
- `evaluate_kbqa(cfg)`: the pipeline on the eval split (first `max_eval_rows` rows): official metric, error
  analysis by stage, predictions per id in <output_dir>/eval;
- `load_pipeline(cfg)`: the trained `KbqaPipeline`.

Layout of `output_dir`: knowledge.txt + knowledge.sqlite (build_kb, when `store` is not given), data/ner-<hash>/
and data/relation-<hash>/ (the training files, named by the hash of their content, so changed data is a new
folder and never meets a finished run of other data), tagger/ and relation/ (finetuning runs; best/ inside),
eval/ (predictions.jsonl, metrics.json).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import config as cfgmod
from ..config import ConfigError, DataError, require
from ..paths import check_output_dir, resolve_data_path


@dataclass
class ModelTrainConfig:
    """One of the two fine-tuning runs (the finetuning framework's train.epochs/batch_size/lr, model.max_length)."""

    epochs: int = 2
    batch_size: int = 32
    lr: float = 1e-3  # tiny encoders tolerate a high rate; use ~2e-5 for base-size pretrained models
    max_length: int = 64

    def __post_init__(self):
        require(self.epochs >= 1, "epochs", "must be >= 1")
        require(self.batch_size >= 1, "batch_size", "must be >= 1")
        require(self.lr > 0, "lr", "must be > 0")
        require(self.max_length >= 8, "max_length", "must be >= 8 tokens")


@dataclass
class KbqaConfig:
    checkpoint: str = "runs/pretrain/checkpoints/stage-2-seq128"  # pretrained encoder both models start from
    kgclue_dir: str = "shared:kgclue"  # <kgclue_dir>/<split>.json: {"id", "question", "answer"} lines
    train_split: str = "train"
    eval_split: str = "dev"
    knowledge_file: str | None = None  # build_kb: head<TAB>relation<TAB>tail file (None: from train + dev answers)
    store: str | None = None  # the SQLite store (None: <output_dir>/knowledge.sqlite)
    output_dir: str = "runs/kbqa"
    max_train_rows: int | None = None  # train on the first N rows (None: all but the held-out ones)
    heldout_rows: int = 200  # last rows of the train file, the models' per-epoch check (at most a tenth)
    max_eval_rows: int | None = None  # evaluate on the first N rows of the eval split (None: all)
    negatives: int = 3  # random negative relations per question
    max_entity_negatives: int = 10  # at most this many of the entity's other relations as negatives
    mark_mention: bool = True  # wrap the mention in 「」 in the relation classifier's text
    max_candidates: int = 10  # candidate entities scored per question
    seed: int = 0
    tagger: ModelTrainConfig = field(default_factory=ModelTrainConfig)
    relation: ModelTrainConfig = field(default_factory=ModelTrainConfig)
    overwrite: bool = False  # retrain over finished runs of another config in output_dir

    def __post_init__(self):
        for key in ("max_train_rows", "max_eval_rows"):
            value = getattr(self, key)
            require(value is None or value >= 1, key, f"{value} must be >= 1 (or null for all rows)")
        require(self.heldout_rows >= 1, "heldout_rows", "must be >= 1")
        require(self.negatives >= 0, "negatives", "must be >= 0")
        require(self.max_entity_negatives >= 0, "max_entity_negatives", "must be >= 0")
        require(self.max_candidates >= 1, "max_candidates", "must be >= 1")

    @property
    def out(self) -> Path:
        return resolve_data_path(self.output_dir)

    @property
    def store_path(self) -> Path:
        return resolve_data_path(self.store) if self.store else self.out / "knowledge.sqlite"

    @property
    def tagger_dir(self) -> Path:
        return self.out / "tagger" / "best"

    @property
    def relation_dir(self) -> Path:
        return self.out / "relation" / "best"

    def split_file(self, split: str) -> Path:
        from ..finetuning.example_types import split_file

        try:
            return split_file(self.kgclue_dir, split, (".json", ".jsonl"))
        except FileNotFoundError:
            raise DataError(
                f"kgclue_dir: no {split}.json in {resolve_data_path(self.kgclue_dir)}; give the folder of the KgCLUE "
                "train.json/dev.json files (../shared/data/kgclue, see its README), or sample_kgclue(folder)'s"
            ) from None


def load_config(source=None, **overrides) -> KbqaConfig:
    """A KbqaConfig from a mapping, a YAML file or None, then dotted overrides (`tagger.epochs=1`)."""
    return cfgmod.load(KbqaConfig, source, **overrides)


# --- the knowledge store -----------------------------------------------------------------------------------------


def build_kb(cfg: KbqaConfig | dict | str | None = None, progress: bool = True) -> dict:
    """The store `cfg.store_path` from `cfg.knowledge_file`, or from a knowledge file assembled from the answers
    of the train and eval splits (<output_dir>/knowledge.txt, `store.kb_from_kgclue`); returns the build stats
    with `assembled` (kb_from_kgclue's counts, when it ran)."""
    from .store import build_store, kb_from_kgclue

    cfg = cfgmod.load(KbqaConfig, cfg)
    out = check_output_dir(cfg.output_dir)
    assembled = None
    if cfg.knowledge_file:
        source = resolve_data_path(cfg.knowledge_file)
    else:
        source = out / "knowledge.txt"
        assembled = kb_from_kgclue(cfg.split_file(cfg.train_split), cfg.split_file(cfg.eval_split), source)
    stats = build_store(source, cfg.store_path, progress=progress)
    stats["assembled"] = assembled
    return stats


# --- training -----------------------------------------------------------------------------------------------------


def _hashed_folder(parent: Path, prefix: str, parts: dict[str, list[dict]], suffix: str) -> Path:
    """parent/<prefix>-<hash8 of the parts> with one <name><suffix> JSON-lines file per part."""
    from .relation_data import write_jsonl

    digest = hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:8]
    folder = parent / f"{prefix}-{digest}"
    for name, rows in parts.items():
        write_jsonl(rows, folder / f"{name}{suffix}")
    return folder


def split_train(cfg: KbqaConfig) -> tuple[list[dict], list[dict]]:
    """(training rows, held-out rows) of the train split: the held-out ones its last min(heldout_rows, n // 10)
    rows (at least 1), the training ones the first `max_train_rows` of the rest."""
    from ..finetuning.ner import read_kgclue

    rows = read_kgclue(cfg.split_file(cfg.train_split))
    if len(rows) < 2:
        raise DataError(f"{cfg.split_file(cfg.train_split)}: {len(rows)} row; training needs at least 2")
    n_held = max(1, min(cfg.heldout_rows, len(rows) // 10))
    return rows[:-n_held][: cfg.max_train_rows], rows[-n_held:]


def train_kbqa(cfg: KbqaConfig | dict | str | None = None, progress: bool = True) -> dict:
    """Fine-tune the mention tagger and the relation classifier from `cfg.checkpoint`; returns {"tagger",
    "relation" (the best/ folders), "store", "tagger_metrics", "relation_metrics", "relation_data" (pair counts),
    "train_rows", "heldout_rows"}. A finished run of the same config and data is returned, not retrained."""
    from .. import finetuning
    from .relation_data import LABELS, RELATION_META, relation_examples, split_answer
    from .store import KnowledgeStore

    cfg = cfgmod.load(KbqaConfig, cfg)
    out = check_output_dir(cfg.output_dir)
    KnowledgeStore(cfg.store_path).close()  # missing: DataError saying to run build-kb, before any work
    train_rows, heldout = split_train(cfg)
    ner_dir = _hashed_folder(out / "data", "ner", {"train": train_rows, "heldout": heldout}, ".json")
    pool = [split_answer(r["answer"])[1] for r in train_rows + heldout]  # random negatives: all their relations
    options = dict(negatives=cfg.negatives, seed=cfg.seed, mark_mention=cfg.mark_mention,
                   max_entity_negatives=cfg.max_entity_negatives, extra_pool=pool)  # fmt: skip
    with KnowledgeStore(cfg.store_path) as store:
        pairs = {name: relation_examples(rows, store, **options) for name, rows in
                 (("train", train_rows), ("heldout", heldout))}  # fmt: skip
    rel_dir = _hashed_folder(out / "data", "relation", {k: v[0] for k, v in pairs.items()}, ".jsonl")
    stats = {k: v[1] for k, v in pairs.items()}

    def run(name: str, data: dict, train: ModelTrainConfig):
        return finetuning.run(
            {
                "data": {**data, "data_dir": str(ner_dir if name == "tagger" else rel_dir), "train_split": "train",
                         "eval_split": "heldout"},
                "model": {"checkpoint": cfg.checkpoint, "max_length": train.max_length},
                "train": {"epochs": train.epochs, "batch_size": train.batch_size, "lr": train.lr, "seed": cfg.seed},
                "output_dir": str(out / name),
                "overwrite": cfg.overwrite,
            },
            progress=progress,
        )  # fmt: skip

    tagger = run("tagger", {"task": "kgclue_ner"}, cfg.tagger)
    relation = run("relation", {"task": "custom", "text_field": "text", "pair_field": "relation",
                                "label_field": "label", "labels": LABELS}, cfg.relation)  # fmt: skip
    meta = {"mark_mention": cfg.mark_mention, "data": str(rel_dir)}
    (out / "relation" / RELATION_META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return {
        "tagger": str(cfg.tagger_dir),
        "relation": str(cfg.relation_dir),
        "store": str(cfg.store_path),
        "tagger_metrics": tagger.metrics,
        "relation_metrics": relation.metrics,
        "relation_data": stats,
        "train_rows": len(train_rows),
        "heldout_rows": len(heldout),
    }


# --- the trained pipeline -----------------------------------------------------------------------------------------


def load_pipeline(cfg: KbqaConfig | dict | str | None = None, device: str | None = None):
    """The `KbqaPipeline` of `cfg`'s trained models and store."""
    from .pipeline import KbqaPipeline

    cfg = cfgmod.load(KbqaConfig, cfg)
    return KbqaPipeline(cfg.tagger_dir, cfg.relation_dir, cfg.store_path, max_candidates=cfg.max_candidates,
                        device=device)  # fmt: skip


def eval_rows(cfg: KbqaConfig) -> list[dict]:
    """The first `max_eval_rows` rows of the eval split."""
    from ..finetuning.ner import read_kgclue

    return read_kgclue(cfg.split_file(cfg.eval_split))[: cfg.max_eval_rows]


def evaluate_kbqa(cfg: KbqaConfig | dict | str | None = None, progress: bool = True) -> dict:
    """The pipeline on the eval split: `KbqaPipeline.evaluate` (official metrics, `stages` counts, predictions
    written to <output_dir>/eval/predictions.jsonl and the result to metrics.json)."""
    cfg = cfgmod.load(KbqaConfig, cfg)
    rows = eval_rows(cfg)
    pipe = load_pipeline(cfg)
    try:
        return pipe.evaluate(rows, cfg.out / "eval", progress=progress)
    finally:
        pipe.close()


# --- hand-written sample data -------------------------------------------------------------------------------------

_SAMPLE_KB = {
    "刘晓华（广东工业大学教授）": {"主讲课程": "《固体物理》", "职称": "教授", "所属院校": "广东工业大学"},
    "刘晓华（演员）": {"代表作品": "《大宅门》", "职业": "演员"},
    "龙编站": {"坐标": "21°2′22.9″N105°51′1.1″E", "所属国家": "越南", "类型": "火车站"},
    "守望星光（韩玉玲、刘东考演唱歌曲）": {
        "出品公司": "韩玉玲原创音乐",
        "演唱者": "韩玉玲、刘东考",
        "发行时间": "2015年",
    },
    "巫山县疾病预防控制中心": {"机构职能": "疾病预防控制工作", "所在地区": "重庆市巫山县"},
    "红楼梦（清代曹雪芹所著小说）": {"作者": "曹雪芹", "文学体裁": "长篇小说", "创作年代": "清代"},
    "北京大学": {"创办时间": "1898年", "所在城市": "北京", "校训": "爱国、进步、民主、科学"},
    "黄山（安徽省黄山市境内山脉）": {"最高峰": "莲花峰", "海拔": "1864.8米", "所在地": "安徽省黄山市"},
    "黄山市": {"所属省份": "安徽省", "面积": "9807平方千米"},
    "长江": {"全长": "6397千米", "发源地": "唐古拉山脉", "流域面积": "180万平方千米"},
    "李白（唐代诗人）": {"字": "太白", "代表作品": "《静夜思》", "出生地": "碎叶城"},
    "熊猫（哺乳动物）": {"食物": "竹子", "分布区域": "四川、陕西、甘肃"},
    "西湖（浙江省杭州市西湖）": {"面积": "6.39平方千米", "所在城市": "杭州"},
}
_SAMPLE_QUESTIONS = {
    "train": [
        ("刘晓华主要讲什么课啊？", "刘晓华（广东工业大学教授）", "主讲课程"),
        ("我很好奇龙编站的坐标是什么啊？", "龙编站", "坐标"),
        ("守望星光这首歌的出品公司是哪家？", "守望星光（韩玉玲、刘东考演唱歌曲）", "出品公司"),
        ("巫山县疾病预防控制中心的机构职能是什么?", "巫山县疾病预防控制中心", "机构职能"),
        ("红楼梦的作者是谁？", "红楼梦（清代曹雪芹所著小说）", "作者"),
        ("北京大学是哪一年创办的？", "北京大学", "创办时间"),
        ("黄山的最高峰叫什么？", "黄山（安徽省黄山市境内山脉）", "最高峰"),
        ("长江全长多少千米？", "长江", "全长"),
        ("李白字什么？", "李白（唐代诗人）", "字"),
        ("熊猫平时吃什么食物？", "熊猫（哺乳动物）", "食物"),
        ("西湖的面积有多大？", "西湖（浙江省杭州市西湖）", "面积"),
        ("龙编站在哪个国家？", "龙编站", "所属国家"),
        ("守望星光是谁演唱的？", "守望星光（韩玉玲、刘东考演唱歌曲）", "演唱者"),
        ("红楼梦是什么体裁的作品？", "红楼梦（清代曹雪芹所著小说）", "文学体裁"),
        ("北京大学的校训是什么？", "北京大学", "校训"),
        ("黄山市属于哪个省？", "黄山市", "所属省份"),
        ("刘晓华的代表作品是什么？", "刘晓华（演员）", "代表作品"),
        ("黄山海拔多高？", "黄山（安徽省黄山市境内山脉）", "海拔"),
        ("巫山县疾病预防控制中心在什么地区？", "巫山县疾病预防控制中心", "所在地区"),
        ("李白出生在哪里？", "李白（唐代诗人）", "出生地"),
    ],
    "dev": [
        ("长江发源于哪里？", "长江", "发源地"),
        ("李白的代表作品有哪些？", "李白（唐代诗人）", "代表作品"),
        ("熊猫分布在哪些地区？", "熊猫（哺乳动物）", "分布区域"),
        ("西湖位于哪个城市？", "西湖（浙江省杭州市西湖）", "所在城市"),
        ("刘晓华的职称是什么？", "刘晓华（广东工业大学教授）", "职称"),
        ("北京大学在哪个城市？", "北京大学", "所在城市"),
        ("红楼梦创作于哪个年代？", "红楼梦（清代曹雪芹所著小说）", "创作年代"),
        ("守望星光是什么时候发行的？", "守望星光（韩玉玲、刘东考演唱歌曲）", "发行时间"),
    ],
}


def sample_kgclue(folder: str | Path) -> dict:
    """Hand-written KgCLUE-style data in `folder`: train.json (20 questions), dev.json (8) and knowledge.txt
    (every triple of their 13 entities, 33 triples: each entity with two or three relations, a homonym
    刘晓华 and a near-homonym 黄山/黄山市), for runs without the shared data. Returns the three paths."""
    from .relation_data import write_jsonl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    start = 0
    for split, questions in _SAMPLE_QUESTIONS.items():
        rows = [{"id": start + i, "question": q, "answer": f"{s} ||| {p} ||| {_SAMPLE_KB[s][p]}"}
                for i, (q, s, p) in enumerate(questions)]  # fmt: skip
        start += len(rows)
        paths[split] = str(write_jsonl(rows, folder / f"{split}.json"))
    lines = [f"{s}\t{p}\t{o}\n" for s, rel in _SAMPLE_KB.items() for p, o in rel.items()]
    (folder / "knowledge.txt").write_text("".join(lines), encoding="utf-8")
    paths["knowledge"] = str(folder / "knowledge.txt")
    return paths


def kgclue_source(kgclue_dir: str | None, sample_folder: str | Path) -> dict:
    """Where the notebook's data comes from: {"kgclue_dir", "knowledge_file", "source"}. `kgclue_dir` when
    given; else the shared KgCLUE split (knowledge assembled from its answers) when ../shared/data/kgclue holds
    train.json; else the hand-written sample (`sample_kgclue(sample_folder)`, its own knowledge file)."""
    if kgclue_dir:
        return {"kgclue_dir": str(kgclue_dir), "knowledge_file": None, "source": str(kgclue_dir)}
    if (resolve_data_path("shared:kgclue") / "train.json").is_file():
        return {"kgclue_dir": "shared:kgclue", "knowledge_file": None, "source": "shared KgCLUE train + dev"}
    paths = sample_kgclue(sample_folder)
    return {"kgclue_dir": str(Path(sample_folder)), "knowledge_file": paths["knowledge"],
            "source": "hand-written sample (shared KgCLUE absent)"}  # fmt: skip


__all__ = [
    "ConfigError",
    "KbqaConfig",
    "ModelTrainConfig",
    "build_kb",
    "evaluate_kbqa",
    "kgclue_source",
    "load_config",
    "load_pipeline",
    "sample_kgclue",
    "train_kbqa",
]
