"""Pre-flight checks of a checkpoint directory a user names, before any model is built or data is read.

Each failure is a one-line ConfigError naming the directory (or file, line and column) and the fix, so that
`obert zeroshot` / `obert finetune` never start work on a checkpoint they cannot use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..corpus.tokenizer import SAVED_TOKENIZER_FILES, holds_tokenizer, load_saved_tokenizer

WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
# Architectures whose weights include a masked-LM head (transformers' BertForPreTraining carries MLM + NSP).
MLM_SUFFIXES = ("ForMaskedLM", "ForPreTraining")
KNOWN_MODEL_TYPES = ("obert", "bert")


def read_checkpoint_config(path: Path, key: str = "checkpoint") -> dict[str, Any]:
    """config.json of checkpoint directory `path` as a dict; missing, unparsable or non-object is a ConfigError."""
    if not path.exists():
        raise ConfigError(
            f"{key}: {path} does not exist; give a pretraining stage directory "
            "(e.g. runs/pretrain/checkpoints/stage-2-seq128)"
        )
    if not path.is_dir():
        raise ConfigError(f"{key}: {path} is a file; give the checkpoint directory that holds config.json")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"{key}: {path} holds no config.json; give a pretraining stage directory")
    try:
        data = json.loads(config_file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{key}: {config_file} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{key}: {config_file}:{exc.lineno}:{exc.colno}: broken JSON ({exc.msg}); "
            "restore the file from the run that wrote it"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{key}: {config_file} holds a JSON {type(data).__name__}, not a model config object")
    return data


def check_checkpoint(path: str | Path, *, masked_lm: bool, key: str = "checkpoint") -> dict[str, Any]:
    """Check that `path` is a loadable checkpoint of ours or of BERT layout; returns its config.json.

    Checks, in order: the directory and its config.json (valid JSON object), a known `model_type`, a
    positive integer `vocab_size`, weights and tokenizer files present, and with `masked_lm` an
    architecture that carries an MLM head (zero-shot scores label words with it).
    """
    path = Path(path)
    config = read_checkpoint_config(path, key)
    where = f"{key}: {path}/config.json"
    model_type = config.get("model_type")
    if model_type not in KNOWN_MODEL_TYPES:
        raise ConfigError(
            f"{where}: model_type {model_type!r} is not one of {list(KNOWN_MODEL_TYPES)}; "
            "give a checkpoint written by `obert pretrain` or a BERT checkpoint"
        )
    vocab_size = config.get("vocab_size")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ConfigError(f"{where}: vocab_size {vocab_size!r} is not a positive integer")
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise ConfigError(
            f"{key}: {path} holds no weights (none of {list(WEIGHT_FILES)}); "
            "give a finished stage directory, not a run folder or a resume point"
        )
    if not holds_tokenizer(path):
        raise ConfigError(
            f"{key}: {path} holds no tokenizer (none of {list(SAVED_TOKENIZER_FILES)}); "
            "checkpoints written by `obert pretrain` carry theirs"
        )
    architectures = config.get("architectures") or []
    if masked_lm and architectures and not any(str(a).endswith(MLM_SUFFIXES) for a in architectures):
        raise ConfigError(
            f"{where}: architectures {architectures} has no masked-LM head, which zero-shot scoring "
            "needs; give a pretraining checkpoint (…ForMaskedLM), not a fine-tuned model"
        )
    return config


def check_vocabulary(path: str | Path, config: dict[str, Any], tokenizer, key: str = "checkpoint") -> None:
    """The model's embedding table must hold every id the tokenizer produces (else ids index past its end)."""
    if len(tokenizer) > config["vocab_size"]:
        raise ConfigError(
            f"{key}: {path}: the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is "
            f"{config['vocab_size']}; ids past {config['vocab_size'] - 1} have no embedding. Use the "
            "tokenizer the checkpoint was trained with"
        )


def load_tokenizer(path: str | Path, key: str = "checkpoint"):
    """The checkpoint's tokenizer, from local files only (never the network)."""
    try:
        return load_saved_tokenizer(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}: {path}: its tokenizer does not load ({' '.join(str(exc).split())[:300]})") from None
