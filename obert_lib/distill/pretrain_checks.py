"""Everything a pretraining-stage distillation checks before any model is loaded or anything is written.

`check(cfg) -> Plan`: the output folder (what an earlier run left in it is distill.resume.prior_run's), the
teacher (a masked-LM checkpoint: config.json, weights, tokenizer), the corpus and its vocabulary, the student's
shape (from config.json files and model presets only), the layer map, the attention-score option, sequence length
against the position tables, and the DeepSpeed settings (pretraining.plan.validate on the `train` stage, its
messages renamed to this config's keys).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, UserError
from ..model import ModelConfig
from ..model.checkpoint_check import check_checkpoint, load_tokenizer
from ..paths import check_output_dir
from ..pretraining.plan import PretrainConfig, SpeedConfig, validate
from .config import DistillConfig
from .layer_map import LayerMap, check_layer_map, uniform_layer_map


@dataclass
class Shape:
    """What the losses need to know of an encoder, read from its config.json (or a model preset)."""

    layers: int
    width: int
    heads: int
    position: str  # absolute, relative or rotary
    max_positions: int


@dataclass
class Plan:
    """The checked run: where things are, both shapes, the layer map and the engine settings."""

    out: Path
    teacher_path: Path
    corpus_dir: Path
    tokenizer: Any  # the corpus tokenizer (the teacher's vocabulary, checked)
    teacher: Shape
    student: Shape
    layer_map: LayerMap | None  # None when neither hidden nor attention MSE is on
    accumulation: int  # micro-batches per optimiser step
    speed: SpeedConfig


def check(cfg: DistillConfig) -> Plan:
    """The Plan of a stage-pretrain config, or a ConfigError naming the key and the fix."""
    p = cfg.pretrain
    out = check_output_dir(cfg.output_dir)  # what an earlier run left there: distill.resume.prior_run
    teacher_path = Path(cfg.teacher.checkpoint)
    teacher = shape_of(check_checkpoint(teacher_path, masked_lm=True, key="teacher.checkpoint"))
    corpus_dir, tokenizer = _check_corpus(p.corpus_dir, teacher_path)
    student = _student_shape(cfg, teacher, tokenizer)
    layer_map = None
    if p.weights.hidden > 0 or p.weights.attention > 0:
        layer_map = _layer_map(p.layer_map, teacher.layers, student.layers)
    if p.weights.attention > 0:
        _check_attention(teacher, student)
    for who, shape in (("teacher", teacher), ("student", student)):
        if shape.position == "absolute" and p.train.seq_len > shape.max_positions:
            raise ConfigError(
                f"pretrain.train.seq_len: {p.train.seq_len} exceeds the {who}'s max_position_embeddings "
                f"({shape.max_positions}); lower it to <= {shape.max_positions}"
            )
    accumulation, speed = _check_engine(cfg)
    return Plan(out, teacher_path, corpus_dir, tokenizer, teacher, student, layer_map, accumulation, speed)


def shape_of(config: dict) -> Shape:
    """Shape of a config.json of ours (model_type obert) or of BERT layout (absolute positions)."""
    return Shape(
        layers=int(config["num_hidden_layers"]),
        width=int(config["hidden_size"]),
        heads=int(config["num_attention_heads"]),
        position=str(config.get("position", "absolute")),
        max_positions=int(config.get("max_position_embeddings", 512)),
    )


def _check_corpus(corpus_dir: str, teacher_path: Path):
    """The corpus folder (as pretraining checks it) and its tokenizer, which must be the teacher's vocabulary."""
    from ..pretraining.preflight import check_corpus
    from ..pretraining.preflight import load_tokenizer as corpus_tokenizer

    try:
        path = check_corpus(corpus_dir)
    except UserError as exc:
        message = str(exc).replace("`obert pretrain --set corpus_dir=PATH`", "`--set pretrain.corpus_dir=PATH`")
        raise ConfigError(f"pretrain.{message}") from None
    tokenizer = corpus_tokenizer(path)
    if tokenizer.get_vocab() != load_tokenizer(teacher_path, key="teacher.checkpoint").get_vocab():
        raise ConfigError(
            f"pretrain.corpus_dir: {path} was tokenised with another vocabulary than the teacher "
            f"({teacher_path}); both models read the corpus's token ids, so preprocess the corpus with the "
            "teacher's tokenizer (`obert preprocess --set tokenizer.vocab_file=<teacher>/vocab.txt`)"
        )
    return path, tokenizer


def _student_shape(cfg: DistillConfig, teacher: Shape, tokenizer) -> Shape:
    """The student's shape from the settings alone: the teacher cut to k layers, a preset, or a checkpoint."""
    from ..model.configuration import PRESETS

    s = cfg.student
    if s.layers is not None:
        if s.layers > teacher.layers:
            raise ConfigError(f"student.layers: {s.layers} is more than the teacher's {teacher.layers} layers")
        if s.pick == "uniform" and teacher.layers % s.layers:
            raise ConfigError(
                f"student.pick: uniform needs the teacher's {teacher.layers} layers to be a multiple of "
                f"student.layers ({s.layers}); use pick: bottom or another layer count"
            )
        return Shape(s.layers, teacher.width, teacher.heads, teacher.position, teacher.max_positions)
    if s.preset is not None:
        layers, width, heads, _ = PRESETS[s.preset]
        return Shape(layers, width, heads, teacher.position, teacher.max_positions)
    path = Path(s.checkpoint)
    shape = shape_of(check_checkpoint(path, masked_lm=True, key="student.checkpoint"))
    if load_tokenizer(path, key="student.checkpoint").get_vocab() != tokenizer.get_vocab():
        raise ConfigError(
            f"student.checkpoint: {path} has another vocabulary than the teacher; student and teacher read the "
            "same token ids here, so give a checkpoint pretrained with the teacher's tokenizer"
        )
    return shape


def _layer_map(pairs, teacher_layers: int, student_layers: int) -> LayerMap:
    """The hand-written pairs, checked, or TinyBERT's uniform map (embeddings included)."""
    try:
        if pairs is not None:
            return check_layer_map(pairs, teacher_layers, student_layers)
        return uniform_layer_map(teacher_layers, student_layers)
    except ValueError as exc:
        hint = "" if pairs is not None else " (null asks for the uniform map; give [student, teacher] pairs)"
        raise ConfigError(f"pretrain.layer_map: {exc}{hint}") from None


def _check_attention(teacher: Shape, student: Shape) -> None:
    """Attention-score MSE compares [B, heads, T, T] maps, formed from the query/key projections."""
    if teacher.heads != student.heads:
        raise ConfigError(
            f"pretrain.weights.attention: the teacher has {teacher.heads} attention heads and the student "
            f"{student.heads}; score maps are compared head by head (TinyBERT), so use a student with "
            f"{teacher.heads} heads or set the weight to 0"
        )
    for who, shape in (("teacher", teacher), ("student", student)):
        if shape.position != "absolute":
            raise ConfigError(
                f"pretrain.weights.attention: the {who} uses {shape.position} positions, whose part of the "
                "attention score is applied inside attention (scaled_dot_product_attention returns no scores), "
                "so only absolute-position encoders are supported; set the weight to 0"
            )


_RENAMES = (
    (re.compile(r"\bstages\[0\]\."), "pretrain.train."),
    (re.compile(r"\bspeed\.(zero_stage|precision|deepspeed_config)"), r"pretrain.\1"),
)


def _check_engine(cfg: DistillConfig) -> tuple[int, SpeedConfig]:
    """pretraining.plan.validate on the `train` stage (one process): accumulation, schedule, mask schedule,
    LAMB under ZeRO, precision against the hardware; its keys renamed to this config's."""
    import torch

    p = cfg.pretrain
    speed = SpeedConfig(zero_stage=p.zero_stage, precision=p.precision, deepspeed_config=p.deepspeed_config)
    # position "rotary": no position-table check here (check() compares seq_len with both models' tables)
    plan = PretrainConfig(corpus_dir=p.corpus_dir, model=ModelConfig(position="rotary"), stages=[p.train])
    try:
        (accumulation,) = validate(plan, speed, torch.cuda.is_available())
    except ConfigError as exc:
        message = str(exc)
        for pattern, name in _RENAMES:
            message = pattern.sub(name, message)
        raise ConfigError(message) from None
    return accumulation, speed
