"""One backbone, many tasks (issue 17): T top-N fine-tuned task models served over one shared bottom.

Top-N fine-tuning: a task fine-tuned with `model.freeze_layers = L − N` (`top_n_config`) trains only its top N
encoder layers and its head; the embeddings and the bottom L − N layers stay as pretrained
(finetuning.tricks.freeze_bottom). T such tasks from one pretrained checkpoint share that bottom bit for bit,
so `UnifiedModel` keeps one copy of it, runs it once per input, and runs each task's top on its output:

    shared:   x = embeddings(ids); x = layer_0 .. layer_{S-1}(x)          once   (S = shared_layers)
    per task: h_t = layer_S .. layer_{L-1}(x) [-> final LayerNorm, Pre-LN]; logits_t = head_t(h_t)

S is the smallest `freeze_layers` among the tasks (so N = max over tasks of L − freeze_layers); a task frozen
deeper runs its extra frozen layers in its own top (same result, less shared). Every shared tensor
(embeddings, layers [0, S), OBERT's relative position bias, which freeze_bottom leaves trainable) is checked
with torch.equal against the first task's, else a ConfigError names the task and the tensor.

Compute (layers only): T separate models run T·L layers, the unified model L − N + T·N; shared/separate =
(L − N + T·N) / (T·L) ≈ (L + T·N) / (T·L) as OBERT states it (the "+ L" counts the N shared-model top layers
once more; see obert_lib.unified.flops). Layouts: ours (OBertModel) and transformers' BertModel, each layer
called as its own encoder calls it (OBertEncoder.forward: additive padding bias, relative bias or RoPE
tables; BertModel.forward: transformers.masking_utils.create_bidirectional_mask). Heads: classification,
pair and tagging (multiple choice reads one sequence per choice, not the shared input: serve it alone).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from ..config import ConfigError, DataError
from ..finetuning import model as ftmodel
from ..finetuning.heads import MultiSampleDropoutClassifier
from ..model.layers import OBertEncoder
from ..model.modeling import OBertModel
from ..model.positions import rotary_tables

KINDS = ("classification", "pair", "tagging")
DEFAULT_MAX_LENGTH = 128  # finetuning.config.ModelConfig's default
# Encoder config fields that must agree across tasks (the rest is bookkeeping: names, versions, dtypes).
SHAPE_KEYS = (
    "model_type", "num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size",
    "hidden_act", "layer_norm_eps", "max_position_embeddings", "type_vocab_size", "position", "layer_norm",
    "relative_buckets", "relative_max_distance", "rotary_base",
)  # fmt: skip


def top_n_config(base: Mapping | object, n: int, num_layers: int | None = None) -> dict:
    """A copy of fine-tuning config `base` (mapping or FinetuneConfig) that trains only the top `n` layers and
    the head (n = 0: the head alone): model.freeze_layers = num_layers − n (num_layers: read from
    model.checkpoint's config.json when not given)."""
    from .. import config as cfgmod

    cfg = copy.deepcopy(dict(base) if isinstance(base, Mapping) else cfgmod.to_dict(base))
    model = cfg.setdefault("model", {})
    if num_layers is None:
        path = Path(model.get("checkpoint", "")) / "config.json"
        if not path.is_file():
            raise ConfigError(f"model.checkpoint: {path} is missing; give num_layers or an existing checkpoint")
        num_layers = json.loads(path.read_text(encoding="utf-8"))["num_hidden_layers"]
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= num_layers:
        raise ConfigError(
            f"top_n: {n!r} must be an integer in [0, {num_layers}] (the encoder's layers; 0 trains the head only)"
        )
    model["freeze_layers"] = num_layers - n
    return cfg


def _layout(encoder: nn.Module) -> str:
    if isinstance(encoder, OBertModel):
        return "obert"
    if getattr(encoder.config, "model_type", None) == "bert" and hasattr(getattr(encoder, "encoder", None), "layer"):
        return "bert"
    raise ConfigError(f"encoder: {type(encoder).__name__} is neither OBertModel nor transformers' BertModel")


class _RelativeBias(nn.Module):
    """OBERT's shared relative position bias (one copy): OBertEncoder.position_bias on its own table."""

    def __init__(self, config, table: nn.Embedding):
        super().__init__()
        self.config, self.relative_attention_bias = config, table

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:  # [1, T] -> [1, heads, T, T]
        return OBertEncoder.position_bias(self, position_ids)


class TaskTop(nn.Module):
    """One task's layers [S, L), (Pre-LN) final LayerNorm and head. forward(x [B, T, H], extras) -> logits
    ([B, C]; tagging [B, T, C]), as FinetuneModel.forward computes them in eval mode."""

    def __init__(self, layers: Sequence[nn.Module], final_norm: nn.Module | None, head: nn.Module, kind: str):
        super().__init__()
        self.layers, self.final_norm, self.head, self.kind = nn.ModuleList(layers), final_norm, head, kind

    def forward(self, x: torch.Tensor, extras: tuple) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, *extras)
        if self.final_norm is not None:
            x = self.final_norm(x)
        if self.kind == "tagging":
            return self.head(x)  # [B, T, C]
        if isinstance(self.head, MultiSampleDropoutClassifier):
            return self.head(x[:, 0])[0]  # eval: the plain classifier
        return self.head(x[:, 0])  # [B, C]


class UnifiedModel(nn.Module):
    """Embeddings + `shared_layers` layers once, then each task's TaskTop.

    forward(input_ids, attention_mask, token_type_ids [B, T]) -> {task: logits}; predict(texts) -> {task:
    label names}. Build with `from_checkpoints` (saved task models) or `from_models` (FinetuneModels).
    """

    def __init__(self, encoder: nn.Module, shared_layers: int, tops: Mapping[str, TaskTop], labels=None,
                 tokenizer=None, max_length: int = DEFAULT_MAX_LENGTH, info=None):  # fmt: skip
        super().__init__()
        self.layout, self.config = _layout(encoder), encoder.config
        self.shared_layers = shared_layers
        self.embeddings = encoder.embeddings
        self.shared = nn.ModuleList(list(encoder.encoder.layer)[:shared_layers])
        table = getattr(encoder.encoder, "relative_attention_bias", None)
        self.relative_bias = _RelativeBias(self.config, table) if self.layout == "obert" and table is not None else None
        self.tops = nn.ModuleDict(dict(tops))
        self.labels = dict(labels or {})
        self.tokenizer, self.max_length, self.info = tokenizer, max_length, dict(info or {})

    @classmethod
    def from_models(cls, models: Mapping[str, ftmodel.FinetuneModel], shared_layers: int | None = None,
                    labels=None, tokenizer=None, max_length: int = DEFAULT_MAX_LENGTH, info=None,
                    freeze_layers: Mapping[str, int] | None = None) -> UnifiedModel:  # fmt: skip
        """Share one model's embeddings and layers [0, shared_layers) (default: the smallest of the tasks'
        `freeze_layers`) after checking that every other model holds equal tensors there."""
        if not models:
            raise ConfigError("tasks: no task models given; give at least one fine-tuned checkpoint")
        names, frozen = list(models), dict(freeze_layers or {})
        depth = models[names[0]].encoder.config.num_hidden_layers
        if shared_layers is None and not frozen:
            raise ConfigError("shared_layers: give it (how many bottom layers the tasks share), or freeze_layers")
        shared_layers = min(frozen.values()) if shared_layers is None else shared_layers
        if isinstance(shared_layers, bool) or not isinstance(shared_layers, int) or not 0 <= shared_layers <= depth:
            raise ConfigError(f"shared_layers: {shared_layers!r} must be an integer in [0, {depth}]")
        # the reference: a task frozen at least that deep, so a mismatch names the task that was trained there
        ref_name = next((n for n in names if frozen.get(n, shared_layers) >= shared_layers), names[0])
        ref = models[ref_name].encoder
        for name in names:
            m = models[name]
            if m.kind not in KINDS:
                raise ConfigError(
                    f"tasks.{name}: a {m.kind} task reads one sequence per choice, not the shared input; "
                    f"serve it alone (finetuning.model.load) or leave it out"
                )
            _check_shape(name, ref_name, m.encoder, ref)
            _check_shared(name, ref_name, m.encoder, ref, shared_layers, frozen.get(name))
        tops = {n: _top(models[n], shared_layers) for n in names}
        return cls(ref, shared_layers, tops, labels, tokenizer, max_length, info)

    @classmethod
    def from_checkpoints(cls, dirs: Mapping[str, str | Path] | Sequence[str | Path],
                         shared_layers: int | None = None) -> UnifiedModel:  # fmt: skip
        """T task models saved by finetuning.model.save (`<output_dir>/best`), named by the mapping's keys or
        (a list) by their finetune.json task. All must come from one pretrained checkpoint and tokenizer."""
        from ..model.checkpoint_check import load_tokenizer

        if not isinstance(dirs, Mapping):
            dirs = _named(list(dirs))
        models, labels, info, frozen, max_lengths, tokenizer = {}, {}, {}, {}, [], None
        for name, folder in dirs.items():
            folder = Path(folder)
            if not (folder / ftmodel.FINETUNE_FILE).is_file():
                raise ConfigError(f"tasks.{name}: {folder} holds no {ftmodel.FINETUNE_FILE}; give a fine-tuned `best/`")
            models[name], info[name] = ftmodel.load(folder)
            labels[name], frozen[name] = list(info[name]["labels"]), int(info[name].get("freeze_layers") or 0)
            max_lengths.append(_max_length(folder))
            tok = load_tokenizer(folder, key=f"tasks.{name}")
            if tokenizer is None:
                tokenizer, first = tok, name
            elif tok.get_vocab() != tokenizer.get_vocab():
                raise ConfigError(
                    f"tasks.{name}: its tokenizer's vocabulary differs from task {first}'s; fine-tune every "
                    f"task from the same pretrained checkpoint"
                )
        unified = cls.from_models(models, shared_layers, labels, tokenizer, min(max_lengths), info, frozen)
        return unified.eval()

    def start(self, input_ids, attention_mask=None, token_type_ids=None) -> tuple[torch.Tensor, tuple]:
        """Embeddings output [B, T, H] and the extra layer arguments, as the encoder's own forward makes them."""
        if self.layout == "bert":
            from transformers.masking_utils import create_bidirectional_mask

            x = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            return x, (create_bidirectional_mask(config=self.config, inputs_embeds=x, attention_mask=attention_mask),)
        batch, length = input_ids.shape  # OBertModel.forward then OBertEncoder.forward, less hidden-state output
        position_ids = torch.arange(length, device=input_ids.device)[None]  # [1, T]
        if self.config.position == "absolute" and length > self.config.max_position_embeddings:
            raise ValueError(f"{length} tokens exceed max_position_embeddings ({self.config.max_position_embeddings})")
        if token_type_ids is None:
            token_type_ids = torch.zeros(batch, length, dtype=torch.long, device=input_ids.device)
        x = self.embeddings(input_ids, token_type_ids, position_ids)
        bias, cos, sin = None, None, None
        if attention_mask is not None:  # [B, 1, 1, T]: 0 for tokens, the dtype's minimum for padding
            keep = attention_mask[:, None, None, :].to(torch.bool)
            bias = torch.zeros(keep.shape, dtype=x.dtype, device=x.device).masked_fill(~keep, torch.finfo(x.dtype).min)
        if self.relative_bias is not None:
            rel = self.relative_bias(position_ids).to(x.dtype)
            bias = rel if bias is None else (rel + bias).clamp(min=torch.finfo(x.dtype).min)
        elif self.config.position == "rotary":
            cos, sin = rotary_tables(position_ids, self.config.head_dim, self.config.rotary_base, x.dtype)
        return x, (bias, cos, sin)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> dict[str, torch.Tensor]:
        """input_ids, attention_mask, token_type_ids [B, T] -> {task: logits [B, C] (tagging [B, T, C])}."""
        x, extras = self.start(input_ids, attention_mask, token_type_ids)
        for layer in self.shared:
            x = layer(x, *extras)
        return {name: top(x, extras) for name, top in self.tops.items()}

    @torch.inference_mode()
    def predict(self, texts: Sequence[str] | Sequence[tuple[str, str]], batch_size: int = 32,
                max_length: int | None = None) -> dict[str, list]:  # fmt: skip
        """Label names per task for texts (or (text, pair) tuples), encoded once as finetuning.encoding.encode
        does (longest-first truncation to max_length, default the smallest of the tasks' max_length). Tagging
        tasks give one tag name per token of the input (special tokens and padding left out)."""
        if self.tokenizer is None:
            raise ConfigError("tokenizer: this UnifiedModel has none; build it with from_checkpoints or tokenizer=")
        texts = list(texts)
        pairs = bool(texts) and all(isinstance(t, (tuple, list)) and len(t) == 2 for t in texts)
        if not texts or not (pairs or all(isinstance(t, str) for t in texts)):
            raise DataError("texts: give a non-empty list of strings or of (text, pair) tuples, not a mix")
        device = next(self.parameters()).device
        out: dict[str, list] = {name: [] for name in self.tops}
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            enc = self.tokenizer(
                [t[0] for t in chunk] if pairs else chunk,
                [t[1] for t in chunk] if pairs else None,
                truncation="longest_first",
                max_length=max_length or self.max_length,
                padding="longest",
                return_token_type_ids=True,
                return_special_tokens_mask=True,
                return_tensors="pt",
            )
            ids = {k: enc[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids")}
            keep = enc["attention_mask"].bool() & ~enc["special_tokens_mask"].bool()  # [B, T]
            for name, logits in self(**ids).items():
                names, best = self.labels.get(name), logits.argmax(-1).cpu()
                if names is None:
                    names = [str(i) for i in range(logits.shape[-1])]
                if self.tops[name].kind == "tagging":
                    out[name] += [[names[i] for i in best[b][keep[b]].tolist()] for b in range(len(chunk))]
                else:
                    out[name] += [names[i] for i in best.tolist()]
        return out


def _named(dirs: list) -> dict[str, Path]:
    named: dict[str, Path] = {}
    for folder in map(Path, dirs):
        info = folder / ftmodel.FINETUNE_FILE
        if not info.is_file():
            raise ConfigError(f"tasks: {folder} holds no {ftmodel.FINETUNE_FILE}; give a fine-tuned `best/` folder")
        task = json.loads(info.read_text(encoding="utf-8")).get("task") or folder.parent.name
        if task in named:
            raise ConfigError(f"tasks: {named[task]} and {folder} are both {task}; name them with a dict instead")
        named[task] = folder
    return named


def _max_length(folder: Path) -> int:
    """The run's model.max_length from `<output_dir>/config.json` beside `best/` (else the default 128)."""
    run = folder.parent / "config.json"
    if run.is_file():
        data = json.loads(run.read_text(encoding="utf-8"))
        if isinstance(data.get("model"), dict) and isinstance(data["model"].get("max_length"), int):
            return data["model"]["max_length"]
    return DEFAULT_MAX_LENGTH


def _check_shape(name: str, ref_name: str, encoder: nn.Module, ref: nn.Module) -> None:
    if _layout(encoder) != _layout(ref):
        raise ConfigError(f"tasks.{name}: a {_layout(encoder)} encoder, task {ref_name}'s is {_layout(ref)}")
    for key in SHAPE_KEYS:
        mine, theirs = getattr(encoder.config, key, None), getattr(ref.config, key, None)
        if mine != theirs:
            raise ConfigError(
                f"tasks.{name}: encoder config {key} = {mine!r}, task {ref_name}'s is {theirs!r}; "
                f"fine-tune every task from the same pretrained checkpoint"
            )


def _shared_keys(encoder: nn.Module, shared_layers: int) -> list[str]:
    """state_dict keys of the shared bottom: embeddings, layers [0, S), OBERT's relative position bias."""
    prefixes = (
        "embeddings.",
        "encoder.relative_attention_bias.",
        *(f"encoder.layer.{i}." for i in range(shared_layers)),
    )
    return [k for k in encoder.state_dict() if k.startswith(prefixes)]


def _check_shared(name, ref_name, encoder, ref, shared_layers: int, frozen: int | None) -> None:
    """Every shared tensor equal (torch.equal) to the reference's, else a ConfigError naming task and tensor
    (as model.safetensors spells it: `encoder.` + the encoder's key)."""
    if encoder is ref:
        return
    mine, theirs = encoder.state_dict(), ref.state_dict()
    for key in _shared_keys(ref, shared_layers):
        a, b = mine.get(key), theirs[key]
        if a is b or (a is not None and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)):
            continue
        if frozen == 0:
            fix = (
                "it was fine-tuned with model.freeze_layers = 0 (nothing frozen); fine-tune it with freeze_layers >= 1"
            )
        elif frozen is not None and frozen < shared_layers:
            fix = (f"it was fine-tuned with model.freeze_layers = {frozen}; fine-tune it with freeze_layers >= "
                   f"{shared_layers} or pass shared_layers <= {frozen}")  # fmt: skip
        else:
            fix = ("fine-tune every task from the same pretrained checkpoint with model.freeze_layers set and "
                   "without tricks.noisytune (it perturbs frozen weights too)")  # fmt: skip
        raise ConfigError(
            f"tasks.{name}: shared tensor encoder.{key} differs from task {ref_name}'s (the shared bottom is the "
            f"embeddings and layers [0, {shared_layers})); {fix}"
        )


def _top(model: ftmodel.FinetuneModel, shared_layers: int) -> TaskTop:
    encoder = model.encoder
    final = getattr(encoder.encoder, "final_layer_norm", None) if _layout(encoder) == "obert" else None
    return TaskTop(list(encoder.encoder.layer)[shared_layers:], final, model.head, model.kind)
