"""Fine-tuning tricks a training loop composes: R-Drop, NoisyTune, layer freezing.

FGM and PGD live in `adversarial` (they perturb the embedding output, not the weight, so they work under
ZeRO); Multi-Sample Dropout and the token-tagging head in `heads`; lexical labels in `lexical`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import ConfigError


def rdrop_loss(logits_a: torch.Tensor, logits_b: torch.Tensor, labels: torch.Tensor, alpha: float) -> torch.Tensor:
    """R-Drop (Liang et al. 2021, "R-Drop: Regularized Dropout for Neural Networks").

    logits_a, logits_b: [B, C] from two forwards of the same batch (different dropout masks); labels: [B].
    Returns 0.5·(CE₁ + CE₂) + α·0.5·(KL(p₁‖p₂) + KL(p₂‖p₁)): each CE is the batch mean; each KL is summed
    over the classes and averaged over the batch (implementations differ here; the paper's code sums
    the KL over the batch, which is the same up to a factor B in α).
    """
    ce = 0.5 * (F.cross_entropy(logits_a, labels) + F.cross_entropy(logits_b, labels))
    la, lb = F.log_softmax(logits_a.float(), -1), F.log_softmax(logits_b.float(), -1)
    # F.kl_div(input, target) = KL(target ‖ input); "batchmean" = sum over classes / B.
    kl = 0.5 * (
        F.kl_div(lb, la, log_target=True, reduction="batchmean")  # KL(p₁‖p₂)
        + F.kl_div(la, lb, log_target=True, reduction="batchmean")  # KL(p₂‖p₁)
    )
    return ce + alpha * kl.to(ce.dtype)


def noisytune_(model: torch.nn.Module, lam: float = 0.15, seed: int = 0) -> list[str]:
    """NoisyTune (Wu et al. 2022, "NoisyTune: A Little Noise Can Help You Finetune Pretrained Language
    Models Better"), in place, once before training: W += U(−λ/2, λ/2)·std(W) for every parameter.

    std is torch.std (unbiased) of the whole tensor; tensors with fewer than 2 elements are skipped (their
    std is undefined), as are constant ones (std 0, e.g. a fresh LayerNorm: noise 0). Tied weights are
    perturbed once. The noise comes from a torch.Generator seeded with `seed`, drawn on the CPU in
    float32 in named_parameters() order: the global RNG is untouched and a seed gives the same noise on
    any device. Apply before deepspeed.initialize (ZeRO-3 partitions the weights). Returns the names of
    the perturbed parameters.
    """
    if not (lam >= 0 and lam == lam):
        raise ConfigError(f"noisytune lambda: {lam} must be >= 0")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    changed = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.numel() < 2:
                continue
            std = p.detach().float().std()
            noise = (torch.rand(p.shape, generator=gen, dtype=torch.float32) - 0.5) * lam  # U(−λ/2, λ/2)
            p.add_((noise.to(p.device) * std).to(p.dtype))
            changed.append(name)
    return changed


def _encoder_parts(model: torch.nn.Module) -> tuple[torch.nn.Module, list[torch.nn.Module]]:
    """(embeddings module, encoder layer list) of an OBERT or HF BERT-layout model (or its bare encoder)."""
    for base in (model, getattr(model, "base_model", None), getattr(model, "bert", None)):
        if base is not None and hasattr(base, "embeddings") and hasattr(getattr(base, "encoder", None), "layer"):
            return base.embeddings, list(base.encoder.layer)
    raise ConfigError(
        f"freeze: {type(model).__name__} has no .embeddings and .encoder.layer (OBERT or BERT layout expected)"
    )


def freeze_bottom(model: torch.nn.Module, layers: int, embeddings: bool = True) -> list[str]:
    """Freeze the embeddings (when `embeddings`) and the bottom `layers` encoder layers: requires_grad False.

    Works for OBERT (obert_lib.model) and HF BERT layouts (`.bert.embeddings`, `.bert.encoder.layer`).
    Shared pieces outside the layers (OBERT's relative position bias, the pre-LN final LayerNorm, the
    pooler) stay trainable. With tied input/output embeddings the output projection freezes too (one
    tensor). Returns the frozen parameter names as model.named_parameters() spells them. Build the
    optimiser (or call deepspeed.initialize) after this, so frozen weights get no optimiser state.
    """
    emb, stack = _encoder_parts(model)
    if not isinstance(layers, int) or isinstance(layers, bool) or layers < 0:
        raise ConfigError(f"freeze layers: {layers!r} must be an integer >= 0")
    if layers > len(stack):
        raise ConfigError(f"freeze layers: {layers} is more than the model's {len(stack)} encoder layers")
    targets = {id(p) for m in ([emb] if embeddings else []) + stack[:layers] for p in m.parameters()}
    frozen = []
    for name, p in model.named_parameters():
        if id(p) in targets:
            p.requires_grad_(False)
            frozen.append(name)
    return frozen
