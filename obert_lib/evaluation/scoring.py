"""Label-word scores from one masked-LM forward pass per input, and contextual calibration.

A label word of k tokens scores the sum over its k slots of the log-softmax of its token there (PET; Schick
& Schütze 2021). Contextual calibration follows Zhao et al. 2021 ("Calibrate Before Use"): the label
probabilities of an input are divided by those the model gives a content-free input, then renormalised.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import ConfigError

# Zhao et al. average the content-free strings 'N/A', '' and '[MASK]'; '[MASK]' is left out here because a
# mask inside the content would read as another label slot (content masks become [UNK]).
CONTENT_FREE = ("N/A", "")


def word_ids(tokenizer, words: dict[str, str], n_slots: int, task: str) -> np.ndarray:
    """Token ids of each label word, [n_labels, n_slots]; every word must fill the slots exactly, without [UNK]."""
    out = []
    for label, word in words.items():
        ids = list(tokenizer(word, add_special_tokens=False)["input_ids"])
        if tokenizer.unk_token_id in ids:
            raise ConfigError(
                f"label word {word!r} of {task} (label {label}) is not in the checkpoint's vocabulary (it "
                "tokenises to [UNK]); use a checkpoint with a Chinese BERT vocabulary or another word"
            )
        if len(ids) != n_slots:
            raise ConfigError(
                f"label word {word!r} of {task} (label {label}) tokenises to {len(ids)} tokens but the template "
                f"has {n_slots} [M] slots; the words of one task must all have {n_slots} tokens"
            )
        out.append(ids)
    return np.array(out, dtype=np.int64)


def candidate_ids(tokenizer, candidates: list[str], n_slots: int, where: str) -> tuple[np.ndarray, int]:
    """chid: token ids of one row's candidate idioms, [n_candidates, n_slots], and how many hold [UNK].

    The reference scores idioms with characters outside the vocabulary as [UNK] there (the standard 21,128
    vocabulary lacks about 40 idiom characters); so do we, and count them.
    """
    out, unknown = [], 0
    for word in candidates:
        ids = list(tokenizer(word, add_special_tokens=False)["input_ids"])
        if len(ids) != n_slots:
            raise ConfigError(f"{where}: candidate {word!r} tokenises to {len(ids)} tokens, not the {n_slots} slots")
        unknown += tokenizer.unk_token_id in ids
        out.append(ids)
    return np.array(out, dtype=np.int64), unknown


@torch.no_grad()
def slot_log_probs(model, input_ids: torch.Tensor, attention: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the vocabulary at each slot: [B, T] ids, [B, T] mask, [B, k] positions -> [B, k, V].

    Models in the BERT layout (`bert` encoder + `cls` MLM head: ours and transformers' BertForMaskedLM) run the
    head on the slots only, which skips a [T, V] projection per row (V = 21,128 for the Chinese vocabulary);
    any other masked LM runs whole and its logits are gathered at the slots.
    """
    if isinstance(getattr(model, "bert", None), torch.nn.Module) and isinstance(
        getattr(model, "cls", None), torch.nn.Module
    ):
        hidden = model.bert(input_ids=input_ids, attention_mask=attention)[0]  # [B, T, H]
        picked = model.cls(torch.gather(hidden, 1, slots[:, :, None].expand(-1, -1, hidden.shape[-1])))  # [B, k, V]
    else:
        logits = model(input_ids=input_ids, attention_mask=attention).logits  # [B, T, V]
        picked = torch.gather(logits, 1, slots[:, :, None].expand(-1, -1, logits.shape[-1]))  # [B, k, V]
    return torch.log_softmax(picked.float(), -1)


def _pad(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, batch))
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for i, row in enumerate(batch):
        ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
    return ids, attention


def score_inputs(
    model,
    tokenizer,
    inputs: list[tuple[list[int], list[int]]],
    candidates: list[np.ndarray],
    batch_size: int,
    progress: bool = False,
    desc: str = "zero-shot",
) -> list[np.ndarray]:
    """Score of each candidate word of each input: list of [n_candidates] float arrays, in input order.

    `inputs` are (ids, slot positions); `candidates[i]` is [n_candidates, k] token ids for input i. Inputs are
    batched by length (less padding); one forward pass per input.
    """
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(inputs)), key=lambda i: len(inputs[i][0]))
    out: list[np.ndarray | None] = [None] * len(inputs)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress, leave=False):
        chunk = order[start : start + batch_size]
        ids, attention = _pad([inputs[i][0] for i in chunk], tokenizer.pad_token_id)
        slots = torch.tensor([inputs[i][1] for i in chunk])
        logp = slot_log_probs(model, ids.to(device), attention.to(device), slots.to(device)).cpu().numpy()
        for b, i in enumerate(chunk):
            out[i] = word_scores(logp[b], candidates[i])
    return out  # type: ignore[return-value]


def word_scores(slot_logp: np.ndarray, words: np.ndarray) -> np.ndarray:
    """[k, V] log-probs at the slots and [C, k] word ids -> [C] summed log-probs."""
    return slot_logp[np.arange(words.shape[1])[None, :], words].sum(1)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Normalise scores over the last axis into probabilities."""
    z = np.exp(scores - scores.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def calibrate(probs: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """Zhao et al. 2021, eq. 2 with W = diag(p_cf)^-1, b = 0: [C] or [N, C] probabilities, [C] or [N, C] p_cf."""
    q = probs / np.maximum(content_free, 1e-12)
    return q / q.sum(-1, keepdims=True)
