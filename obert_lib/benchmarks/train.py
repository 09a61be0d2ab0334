"""`obert bench train`: training tokens/s of OBertForMaskedLM vs transformers' BertForMaskedLM, same DeepSpeed setup.

Both models have the same shape and start from the same weights (parameter names are BERT's, so HF
loads our state dict), and both train through `deepspeed.initialize` with the trainer's own
`engine.deepspeed_config` (ZeRO-2 by default, fp32 on CPU; bf16/fp16 on a GPU), the same optimiser as the
trainer uses (on CPU the client optimiser `build_optimizer(model, "adamw", ...)`, on CUDA DeepSpeed's
fused AdamW over `param_groups`), the same micro batch and the same sequence-length cap.
What differs is the input recipe:

* HF, the standard recipe: every corpus paragraph is its own sequence ([CLS] ids [SEP], cut to
  seq_len), masked by transformers' DataCollatorForLanguageModeling, each batch padded to its longest
  row; `BertForMaskedLM` with its default attention implementation (printed in the header).
* ours: the same paragraphs packed by `masking.pack_rows(..., method="first_fit")` (first-fit
  decreasing) into rows of up to seq_len - 2 tokens (a packed row's paragraphs attend to each other, as in
  RoBERTa's FULL-SENTENCES inputs), masked by our MaskingCollator; `OBertForMaskedLM` (attention through
  F.scaled_dot_product_attention).

Throughput counts REAL tokens (attention_mask == 1: context plus [CLS]/[SEP]) per second of
forward + backward + optimiser step, the same way for both; padded tokens/s (positions computed) and
the padding share show where the difference comes from. Batches are collated before timing, so only
training steps are timed. After `warmup` untimed steps each, the two models take turns step by step
(the order flips every step) so that other load on the machine hits both alike.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

OURS = "OBertForMaskedLM"
HF = "BertForMaskedLM (HF)"


@dataclass
class TrainRow:
    """One model's timed steps: real and padded tokens trained on, and the seconds each step took."""

    model: str
    inputs: str
    real_tokens: int = 0
    padded_tokens: int = 0
    step_seconds: list[float] = field(default_factory=list)
    mfu: float | None = None  # model FLOPs utilisation on padded tokens (GPU with a known peak only)
    useful_mfu: float | None = None  # the same on real tokens

    @property
    def seconds(self) -> float:
        return sum(self.step_seconds)

    @property
    def real_per_s(self) -> float:
        return self.real_tokens / self.seconds

    @property
    def padded_per_s(self) -> float:
        return self.padded_tokens / self.seconds

    @property
    def padding_share(self) -> float:
        return 1.0 - self.real_tokens / self.padded_tokens

    @property
    def step_ms(self) -> float:
        return 1000.0 * self.seconds / len(self.step_seconds)


def sample_corpus(out_dir: Path) -> Path:
    """The corpus stage run on the embedded sample corpus."""
    from .. import corpus

    corpus.run({"output_dir": str(out_dir)}, corpus.CorpusRuntime(progress=False))
    return out_dir


def _cycle_batches(items: Sequence, batch_size: int, count: int) -> list[list]:
    """`count` batches of `batch_size` consecutive items; the items repeat when there are too few."""
    stream = itertools.cycle(items)
    return [[next(stream) for _ in range(batch_size)] for _ in range(count)]


def _hf_model(ours, attn_implementation: str | None = None):
    """transformers.BertForMaskedLM of our model's shape, holding our model's weights."""
    from transformers import BertConfig, BertForMaskedLM

    c = ours.config
    config = BertConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        intermediate_size=c.intermediate_size,
        hidden_act=c.hidden_act,
        hidden_dropout_prob=c.hidden_dropout_prob,
        attention_probs_dropout_prob=c.attention_probs_dropout_prob,
        max_position_embeddings=c.max_position_embeddings,
        type_vocab_size=c.type_vocab_size,
        layer_norm_eps=c.layer_norm_eps,
        pad_token_id=c.pad_token_id,
        tie_word_embeddings=c.tie_word_embeddings,
    )
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = BertForMaskedLM(config, **kwargs)
    missing, unexpected = model.load_state_dict(ours.state_dict(), strict=False)
    if missing or unexpected:
        raise RuntimeError(f"HF BERT does not take our weights 1:1: missing {missing}, unexpected {unexpected}")
    return model


def run(
    corpus_dir: str | Path | None = None,
    preset: str = "small",
    seq_len: int = 128,
    micro_batch: int = 16,
    warmup: int = 3,
    steps: int = 20,
    threads: int | None = None,
    precision: str | None = None,
    zero_stage: int = 2,
    seed: int = 0,
    lr: float = 5e-4,
) -> list[TrainRow]:
    """Train both models side by side for `steps` timed steps each; print a table and `ratio: <ours/HF>`.

    precision: fp32 on CPU (the default there); on a GPU bf16 (default where supported) or fp16.
    threads: torch.set_num_threads for the run (default: leave torch's setting).
    """
    from transformers import DataCollatorForLanguageModeling

    from ..corpus import load_shards
    from ..masking import MaskConfig, MaskingCollator, pack_rows
    from ..model import ModelConfig, build_masked_lm, count_parameters
    from ..pretraining.engine import build_engine, single_process_env
    from ..pretraining.plan import SpeedConfig, StageConfig
    from ..pretraining.preflight import check_corpus, load_tokenizer
    from ..pretraining.throughput import mfu, model_flops_per_token, peak_flops

    if steps < 1 or warmup < 0:
        raise ValueError(f"steps ({steps}) must be >= 1 and warmup ({warmup}) >= 0")
    cuda = torch.cuda.is_available()
    if precision is None:
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if precision != "fp32" and not cuda:
        raise ValueError(f"precision {precision!r} needs a GPU; use fp32 on CPU")
    tmp = None
    saved_threads = torch.get_num_threads()
    ds_logger = logging.getLogger("DeepSpeed")
    saved_level = ds_logger.level
    try:
        if corpus_dir is None:
            tmp = Path(tempfile.mkdtemp(prefix="obert-bench-train-"))
            corpus_dir = sample_corpus(tmp / "corpus")
        corpus_dir = check_corpus(corpus_dir)
        if threads:
            torch.set_num_threads(threads)
        tokenizer = load_tokenizer(corpus_dir)
        rows = load_shards(corpus_dir).to_pylist()
        rows = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]  # one shuffled order for both
        n_batches = warmup + steps

        # Inputs, collated before any timing. Ours: packed rows; HF: one paragraph per sequence.
        packed = list(pack_rows(rows, seq_len - 2, method="first_fit"))  # 2: [CLS] and [SEP]
        ours_collate = MaskingCollator(tokenizer, MaskConfig(strategy="word", mask_rate=0.15), seq_len, seed=seed)
        ours_in = [ours_collate(b) for b in _cycle_batches(packed, micro_batch, n_batches)]
        hf_collate = DataCollatorForLanguageModeling(
            tokenizer, mlm=True, mlm_probability=0.15, return_tensors="pt", seed=seed
        )
        hf_rows = [
            {"input_ids": [tokenizer.cls_token_id, *r["input_ids"][: seq_len - 2], tokenizer.sep_token_id]}
            for r in rows
        ]
        hf_in = [hf_collate(b) for b in _cycle_batches(hf_rows, micro_batch, n_batches)]
        for b in hf_in:  # the collator pads; make the mask explicit when the tokenizer did not return one
            if "attention_mask" not in b:
                b["attention_mask"] = (b["input_ids"] != tokenizer.pad_token_id).long()

        # Models: the same shape and the same initial weights.
        shape = ModelConfig(preset=preset, max_positions=max(512, seq_len))
        ours_model = build_masked_lm(shape, len(tokenizer), tokenizer.pad_token_id, seed=seed)
        hf_model = _hf_model(ours_model)
        n_params = count_parameters(ours_model)
        if count_parameters(hf_model) != n_params:
            raise RuntimeError(f"parameter counts differ: ours {n_params}, HF {count_parameters(hf_model)}")
        hf_attention = hf_model.config._attn_implementation

        # The trainer's DeepSpeed setup: one micro batch per optimiser step, the stage's scheduler and clipping.
        single_process_env()
        ds_logger.setLevel(logging.ERROR)
        stage = StageConfig(
            name="bench",
            seq_len=seq_len,
            global_batch=micro_batch,
            micro_batch=micro_batch,
            steps=n_batches + 1,
            lr=lr,
            warmup_steps=1,
            lr_schedule="warmup_constant",
        )
        speed = SpeedConfig(zero_stage=zero_stage, precision=precision)
        # as the trainer builds it (engine.build_engine): on CUDA DeepSpeed's fused Adam (adam_w_mode) over our
        # parameter groups, on CPU our AdamW as a client optimiser
        optimiser = "DeepSpeed fused AdamW over obert_lib param_groups" if cuda else "AdamW (obert_lib build_optimizer)"
        engines = {}
        for name, model in ((OURS, ours_model), (HF, hf_model)):
            torch.manual_seed(seed)
            engines[name], _ = build_engine(model, stage, speed, 1)
            engines[name].train()
        if threads:
            torch.set_num_threads(threads)  # after DeepSpeed's set-up, which may change it
        inputs = {OURS: ours_in, HF: hf_in}
        sync: Callable[[], None] = torch.cuda.synchronize if cuda else (lambda: None)

        def step(name: str, batch: dict[str, Any]) -> float:
            engine = engines[name]
            batch = {k: v.to(engine.device) for k, v in batch.items()}
            sync()
            t0 = time.perf_counter()
            loss = engine(**batch).loss
            engine.backward(loss)
            engine.step()
            sync()
            return time.perf_counter() - t0

        device = torch.cuda.get_device_name() if cuda else "CPU"
        print(
            f"device: {device}; torch threads: {torch.get_num_threads()} (torch.set_num_threads); "
            f"precision {precision}; DeepSpeed ZeRO-{zero_stage}; optimiser {optimiser}, lr {lr}"
        )
        print(
            f"model: preset {preset} ({shape.layers} layers, hidden {shape.hidden}, {shape.heads} heads, "
            f"ffn {shape.ffn}), vocab {len(tokenizer)}, {n_params:,} parameters; same initial weights for both"
        )
        print(f"attention: ours F.scaled_dot_product_attention; HF attn_implementation={hf_attention!r}")
        print(
            f"corpus: {corpus_dir} ({len(rows)} paragraphs -> {len(packed)} packed rows of <= {seq_len - 2} tokens); "
            f"micro batch {micro_batch}, seq_len {seq_len}; {warmup} warm-up + {steps} timed steps each, "
            "the two models alternating step by step"
        )
        print(
            "inputs: ours packed rows (pack_rows) + MaskingCollator(word, 15%); HF one paragraph per sequence + "
            "DataCollatorForLanguageModeling(15%), padded to the longest in the batch"
        )

        for i in range(warmup):
            for name in (OURS, HF) if i % 2 == 0 else (HF, OURS):
                step(name, inputs[name][i])
        results = {OURS: TrainRow(OURS, f"packed to {seq_len}"), HF: TrainRow(HF, "1 paragraph/seq, padded")}
        for i in range(warmup, n_batches):
            for name in (OURS, HF) if i % 2 == 0 else (HF, OURS):
                batch = inputs[name][i]
                row = results[name]
                row.step_seconds.append(step(name, batch))
                row.real_tokens += int(batch["attention_mask"].sum())
                row.padded_tokens += int(batch["input_ids"].numel())

        peak = peak_flops(device, precision) if cuda else None
        if peak:
            for name, row in results.items():
                width = row.padded_tokens / (micro_batch * steps)  # mean padded length: the attention term's S
                per_token = model_flops_per_token(n_params, shape.layers, shape.hidden, round(width))
                row.mfu = mfu(row.padded_per_s, per_token, peak)
                row.useful_mfu = mfu(row.real_per_s, per_token, peak)
        header = (
            f"\n{'model':22s} {'input':24s} {'real tok/s':>11s} {'padded tok/s':>13s} {'padding':>8s} {'step ms':>8s}"
        )
        print(header + (f" {'MFU':>6s} {'useful MFU':>10s}" if peak else ""))
        for row in results.values():
            line = (
                f"{row.model:22s} {row.inputs:24s} {row.real_per_s:11.0f} {row.padded_per_s:13.0f} "
                f"{row.padding_share:8.1%} {row.step_ms:8.1f}"
            )
            print(line + (f" {row.mfu:6.1%} {row.useful_mfu:10.1%}" if peak else ""))
        if cuda and not peak:
            print(f"(no MFU: peak FLOP/s of {device!r} at {precision} is not listed in pretraining.throughput)")
        ratio = results[OURS].real_per_s / results[HF].real_per_s
        print(f"\nratio: {ratio:.2f}")
        return list(results.values())
    finally:
        torch.set_num_threads(saved_threads)
        ds_logger.setLevel(saved_level)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
