"""The tiny two-stage plan through DeepSpeed ZeRO-3 on CPU: both stage checkpoints load as HF models, stage 2
trained on.

(The session fixture `tiny_checkpoint` covers ZeRO-2, the default.) Stage 2 gets 3 steps: DeepSpeed's
warm-up schedulers give the first two optimiser steps of a stage lr 0, so with 2 steps stage 2 would
not move the weights at all.
"""

import torch

import obert_lib.model  # noqa: F401  (registers model_type "obert" with the Auto classes)
from obert_lib import pretraining


def test_two_stage_run_through_zero3(sample_corpus, tmp_path):
    from transformers import AutoModelForMaskedLM

    plan = pretraining.load_plan(
        "tiny",
        corpus_dir=str(sample_corpus.output_dir),
        output_dir=str(tmp_path),
        **{"stages.0.steps": 3, "stages.1.steps": 3, "stages.0.warmup_steps": 1, "stages.1.warmup_steps": 1},
    )
    result = pretraining.run(plan, {"zero_stage": 3, "checkpoint_every": 0}, progress=False)
    assert result.status == "finished" and len(result.checkpoints) == 2
    assert result.metrics["stage"].tolist() == [1, 1, 1, 2, 2, 2]

    models = [AutoModelForMaskedLM.from_pretrained(path).eval() for path in result.checkpoints]
    ids = torch.tensor([[2, 100, 200, 300, 3]])  # any in-vocabulary ids
    for model in models:
        assert type(model).__name__ == "OBertForMaskedLM"
        # ZeRO-3 partitions parameters: a checkpoint written from the bare module would hold empty tensors.
        assert model.bert.embeddings.word_embeddings.weight.shape == (model.config.vocab_size, model.config.hidden_size)
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        assert logits.shape == (1, 5, model.config.vocab_size) and torch.isfinite(logits).all()

    first, second = (dict(m.state_dict()) for m in models)
    assert first.keys() == second.keys()
    change = max((second[k] - first[k]).abs().max().item() for k in first)
    scale = max(first[k].abs().max().item() for k in first)
    assert 0 < change < 0.1 * scale  # warm-started and trained a few steps further, not re-initialised
