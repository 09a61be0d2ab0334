"""Compute of one shared backbone against T separate task models: counted FLOPs and the layer-count theory.

Counting: torch.utils.flop_counter.FlopCounterMode over a real forward (matmuls, linear layers and
scaled_dot_product_attention; 2 FLOPs per multiply-add). It runs on the meta device: no weights, no time,
exact counts (on the CPU, SDPA with a float mask dispatches to a kernel the counter does not see).

Theory per input, counting encoder layers only (all of one shape): T separate models run T·L layers; the
unified model runs the shared bottom once (L − N layers) and T tops of N, L − N + T·N layers:
    exact_ratio = (L − N + T·N) / (T·L)          theory_ratio = (L + T·N) / (T·L)  (OBERT's / issue 17's form)
theory_ratio counts the N top layers of the shared backbone once more, so it exceeds the exact count by
N / (T·L) (0.0125 at L = 24, T = 10, N = 3: 0.2125 against 0.225). The measured ratio departs from
exact_ratio only through the heads (one H·C linear per task on both sides, counted) and what the counter
does not count (embedding lookups, LayerNorm, GELU, softmax: elementwise, < 1% of a BERT layer's FLOPs).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..finetuning.model import FinetuneModel
from ..model.modeling import OBertModel
from .model import UnifiedModel

VOCAB = 21128  # the Chinese BERT vocabulary (embedding lookups cost no counted FLOPs)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs FlopCounterMode counts while `fn()` runs."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def theory_ratio(layers: int, tasks: int, top: int) -> float:
    """(L + T·N) / (T·L): OBERT's shared/separate compute ratio."""
    return (layers + tasks * top) / (tasks * layers)


def exact_ratio(layers: int, tasks: int, top: int) -> float:
    """(L − N + T·N) / (T·L): the layers the unified model runs over those of T separate models."""
    return (layers - top + tasks * top) / (tasks * layers)


def task_model(shape: tuple[int, int, int, int], labels: int = 2, device: str | torch.device = "cpu",
               vocab: int = VOCAB) -> FinetuneModel:  # fmt: skip
    """A random OBERT encoder (layers, hidden, heads, ffn; BERT's absolute positions and Post-LN) with a
    classification head over `labels` classes, in eval mode, on `device` ("meta": shapes only)."""
    from ..model.configuration import OBertConfig

    layers, hidden, heads, ffn = shape
    config = OBertConfig(vocab_size=vocab, num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                         intermediate_size=ffn)  # fmt: skip
    with torch.device(device):
        return FinetuneModel(OBertModel(config, add_pooling_layer=False), "classification", labels, 0.1).eval()


def unified_of(model: FinetuneModel, tasks: int, top: int) -> UnifiedModel:
    """T tasks over `model`'s bottom L − N layers, each top its layers [L − N, L) and head: the same modules
    T times (compute as T distinct tops, memory of one)."""
    layers = model.encoder.config.num_hidden_layers
    return UnifiedModel.from_models({f"task{i}": model for i in range(tasks)}, shared_layers=layers - top).eval()


def batch(size: int, length: int, device: str | torch.device = "cpu", vocab: int = VOCAB, seed: int = 0) -> dict:
    """Random token ids, full attention, segment 0: input_ids, attention_mask, token_type_ids [size, length]."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (size, length), generator=gen)
    out = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    return {k: v.to(device) for k, v in out.items()}


def separate_forward(model: FinetuneModel, tasks: int, inputs: dict) -> list[torch.Tensor]:
    """T full task models run one after another (here one model T times: the same compute)."""
    return [model(inputs).logits for _ in range(tasks)]


def measured(shape: tuple[int, int, int, int], tasks: int, top: int, size: int = 1, length: int = 128) -> dict:
    """Counted FLOPs on the meta device: {"shared", "separate", "layer", "head"} for one batch [size, length]."""
    model = task_model(shape, device="meta")
    inputs = batch(size, length, device="meta")
    unified = unified_of(model, tasks, top)
    x = torch.empty(size, length, shape[1], device="meta")
    extras = unified.start(**inputs)[1]
    with torch.no_grad():
        return {
            "shared": count_flops(lambda: unified(**inputs)),
            "separate": count_flops(lambda: separate_forward(model, tasks, inputs)),
            "layer": count_flops(lambda: model.encoder.encoder.layer[0](x, *extras)),
            "head": count_flops(lambda: model.head(x[:, 0])),
        }
