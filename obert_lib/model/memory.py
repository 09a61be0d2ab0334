"""Preset sizes measured on the meta device, and a per-GPU memory plan (ZeRO model states + activations).

Model states come from DeepSpeed's own ZeRO estimators (the functions behind
`estimate_zero{2,3}_model_states_mem_needs_all_cold`, without offload, which print nothing). Activations
follow Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models", §4.1:
per layer, fp16, no tensor/sequence parallelism, s*b*h*(34 + 5*a*s/h) bytes -- written here as
s*b*(18h + 4f) + 5*a*s^2*b so that it also holds for ffn f != 4h (f = 4h gives their 34). With full
recomputation (their §5) a layer keeps only its fp16 input, 2*s*b*h bytes, and one layer's activations are
rebuilt at a time during backward. The plan is conservative where fused attention kernels skip storing the
a*s^2 softmax terms.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterable

import pandas as pd
import torch

from .configuration import PRESETS, ModelConfig
from .modeling import OBertForMaskedLM, count_parameters

CHINESE_VOCAB = 21128  # bert-base-chinese / chinese-roberta-wwm-ext vocabulary
GIB = 2**30


def _as_config(preset: str | ModelConfig) -> ModelConfig:
    return preset if isinstance(preset, ModelConfig) else ModelConfig(preset=preset)


def measure(preset: str | ModelConfig, vocab_size: int = CHINESE_VOCAB) -> dict:
    """Parameter counts of OBertForMaskedLM built on the meta device (no memory, no init cost).

    `largest_layer_params` is the biggest module's own parameters, as DeepSpeed's ZeRO-3 `model_to_params`
    counts them (it cannot run on meta tensors: it deduplicates by data_ptr, which is 0 there).
    """
    cfg = _as_config(preset)
    with torch.device("meta"):
        model = OBertForMaskedLM(cfg.to_hf(vocab_size))
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    return {
        "parameters": count_parameters(model),
        "encoder_parameters": count_parameters(model.bert),
        "largest_layer_params": largest,
    }


def preset_table(presets: Iterable[str] | None = None, vocab_size: int = CHINESE_VOCAB) -> pd.DataFrame:
    """Shape and measured parameter count (MLM model, tied embeddings counted once) of each preset."""
    rows = []
    for name in presets or PRESETS:
        cfg = ModelConfig(preset=name)
        rows.append(
            {
                "preset": name,
                "layers": cfg.layers,
                "hidden": cfg.hidden,
                "heads": cfg.heads,
                "ffn": cfg.ffn,
                **measure(cfg, vocab_size),
            }
        )
    table = pd.DataFrame(rows)
    table["parameters_M"] = (table["parameters"] / 1e6).round(1)
    return table


@contextmanager
def _deepspeed_notes_hidden():
    """Hide DeepSpeed's import-time notes ("Setting accelerator to CPU ...") for a memory estimate: they are
    about training, not about the formulas used here. A filter, because DeepSpeed resets its logger's level."""
    deepspeed_logger = logging.getLogger("DeepSpeed")  # deepspeed.utils.logging's logger name

    def errors_only(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    deepspeed_logger.addFilter(errors_only)
    try:
        yield
    finally:
        deepspeed_logger.removeFilter(errors_only)


def model_state_bytes(parameters: int, largest_layer_params: int, zero_stage: int, gpus: int) -> int:
    """Per-GPU bytes of fp16 params, grads and fp32 Adam states under ZeRO-2/3, no offload (DeepSpeed's estimators)."""
    # Without offload the GPU side depends only on the total GPU count, so all GPUs are passed as one node.
    if zero_stage == 2:  # 2*P replicated fp16 params + 18*P/N partitioned (grads, fp32 master, Adam m and v)
        with _deepspeed_notes_hidden():
            from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

        return estimate_zero2_model_states_mem_needs(parameters, gpus, 1, cpu_offload=False)[1]
    if zero_stage == 3:  # 4*largest layer (gathered) + 18*P/N
        with _deepspeed_notes_hidden():
            from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

        return estimate_zero3_model_states_mem_needs(
            parameters, largest_layer_params, gpus, 1, cpu_offload=False, cpu_offload_params=False
        )[1]
    raise ValueError(f"zero_stage {zero_stage}: the plan covers ZeRO stages 2 and 3")


def activation_bytes(
    seq_len: int,
    micro_batch: int,
    layers: int,
    hidden: int,
    heads: int,
    ffn: int,
    vocab_size: int = CHINESE_VOCAB,
    recompute: bool = False,
) -> int:
    """fp16 activation bytes kept for backward in one micro-batch (Korthikanti et al. 2022, §4.1 and §5).

    Per layer s*b*(18h + 4f) + 5*a*s^2*b. Outside the layers: embeddings 3sbh (LayerNorm input, dropout
    mask); MLM head 8sbh (transform dense, GELU, LayerNorm and decoder inputs) + 2sbV fp16 logits + 4sbV
    for the fp32 cross-entropy (Korthikanti's 4sbv term). Recompute: 2sbh per layer + one full layer.
    """
    s, b, h = seq_len, micro_batch, hidden
    layer = s * b * (18 * h + 4 * ffn) + 5 * heads * s * s * b
    outside = s * b * (3 * h + 8 * h + 6 * vocab_size)
    if recompute:
        return layers * 2 * s * b * h + layer + outside
    return layers * layer + outside


def max_micro_batch(capacity_bytes: int, state_bytes: int, per_sample_bytes: int) -> int:
    """Largest micro-batch whose activations fit next to the model states (0 when the states alone do not fit)."""
    return max(0, (capacity_bytes - state_bytes) // per_sample_bytes)


def memory_plan(
    presets: str | ModelConfig | Iterable[str | ModelConfig] = ("100M", "300M", "1B"),
    gpus: Iterable[int] = (1, 8, 64),
    seq_lens: Iterable[int] = (128, 512),
    gpu_memory_gb: float = 32,
    zero_stages: Iterable[int] = (2, 3),
    vocab_size: int = CHINESE_VOCAB,
    reserve_gb: float = 2.0,
) -> pd.DataFrame:
    """Per-GPU memory and the largest micro-batch per preset x ZeRO stage x GPU count x sequence length.

    `gpu_memory_gb` is GiB per GPU (a V100-32GB has 32 GiB). `reserve_gb` is kept free for the CUDA
    context, NCCL and ZeRO communication buckets and allocator fragmentation -- a practical margin, not a
    published number; set it to 0 for the bare arithmetic.
    """
    if isinstance(presets, (str, ModelConfig)):
        presets = [presets]
    capacity = int(gpu_memory_gb * GIB) - int(reserve_gb * GIB)
    rows = []
    for preset in presets:
        cfg = _as_config(preset)
        sizes = measure(cfg, vocab_size)
        for zero in zero_stages:
            for n in gpus:
                states = model_state_bytes(sizes["parameters"], sizes["largest_layer_params"], zero, n)
                for s in seq_lens:
                    shape = dict(
                        seq_len=s,
                        micro_batch=1,
                        layers=cfg.layers,
                        hidden=cfg.hidden,
                        heads=cfg.heads,
                        ffn=cfg.ffn,
                        vocab_size=vocab_size,
                    )
                    full, recomputed = activation_bytes(**shape), activation_bytes(**shape, recompute=True)
                    rows.append(
                        {
                            "preset": cfg.preset,
                            "parameters": sizes["parameters"],
                            "zero_stage": zero,
                            "gpus": n,
                            "seq_len": s,
                            "model_states_gib": states / GIB,
                            "activations_per_sample_gib": full / GIB,
                            "max_micro_batch": max_micro_batch(capacity, states, full),
                            "max_micro_batch_recompute": max_micro_batch(capacity, states, recomputed),
                        }
                    )
    return pd.DataFrame(rows)
