"""Exact effects of the fine-tuning tricks on tiny models: FGM/PGD on the embedding output, R-Drop, NoisyTune,
layer freezing, Multi-Sample Dropout, the token-tagging head and the lexical labels."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from obert_lib.config import ConfigError
from obert_lib.finetuning.adversarial import EmbeddingPerturbation, fgm_loss, pgd_loss, project
from obert_lib.finetuning.heads import MultiSampleDropoutClassifier, TokenTaggingHead
from obert_lib.finetuning.lexical import lexical_labels, lexical_tag_names
from obert_lib.finetuning.tricks import freeze_bottom, noisytune_, rdrop_loss
from obert_lib.model import OBertConfig, OBertForSequenceClassification

IDS = torch.tensor([[2, 7, 8, 9, 3, 0], [2, 10, 11, 3, 0, 0]])
MASK = (IDS != 0).long()
LABELS = torch.tensor([0, 2])


def tiny_obert(seed: int = 0, dropout: float = 0.0) -> OBertForSequenceClassification:
    torch.manual_seed(seed)
    config = OBertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        num_labels=3,
    )
    return OBertForSequenceClassification(config)


def tiny_hf_bert(seed: int = 0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=3,
    )
    return BertForSequenceClassification(config)


def batch_loss(model):
    return lambda: model(input_ids=IDS, attention_mask=MASK, labels=LABELS).loss


class Toy(nn.Module):
    """Word embeddings only; the loss is a hand-written function of their output e [1, 1, 2]."""

    def __init__(self, row=(3.0, 4.0)):
        super().__init__()
        self.emb = nn.Embedding(2, 2)
        with torch.no_grad():
            self.emb.weight.copy_(torch.tensor([row, (0.0, 0.0)]))

    def get_input_embeddings(self):
        return self.emb


# ---- FGM / PGD ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("epsilon", [1.0, 0.25])
def test_fgm_adds_epsilon_times_the_normalised_gradient_to_the_embedding_output(epsilon):
    model = tiny_obert().eval()
    emb = model.get_input_embeddings()
    weight_before = emb.weight.detach().clone()
    seen = []
    with EmbeddingPerturbation(model) as pert:
        recorder = emb.register_forward_hook(lambda m, i, out: seen.append(out.detach().clone()))
        total, info = fgm_loss(batch_loss(model), pert, epsilon)
        recorder.remove()
    assert len(seen) == 2 and info.forwards == 2 and not info.skipped and pert.attacks == 1 and pert.skips == 0
    r = seen[1] - seen[0]  # what the hook added to the output [B, T, H]
    assert torch.linalg.vector_norm(r).item() == pytest.approx(epsilon, abs=1e-5)
    assert info.delta_norm == pytest.approx(epsilon, abs=1e-5)
    # r = ε·g/‖g‖ with g = ∂loss_clean/∂e over the whole batch, computed independently through inputs_embeds
    e = emb(IDS).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(model(inputs_embeds=e, attention_mask=MASK, labels=LABELS).loss, e)
    assert torch.allclose(r, epsilon * g / torch.linalg.vector_norm(g), atol=1e-6)
    assert info.grad_norm == pytest.approx(torch.linalg.vector_norm(g).item(), rel=1e-5)
    # the total is loss_clean + loss on e + r, and nothing touched the weight or any .grad
    loss_adv = model(inputs_embeds=e.detach() + pert.last_delta, attention_mask=MASK, labels=LABELS).loss
    assert info.loss_adv == pytest.approx(loss_adv.item(), rel=1e-6)
    assert total.item() == pytest.approx(info.loss_clean + info.loss_adv, rel=1e-6)
    assert torch.equal(emb.weight, weight_before)
    assert all(p.grad is None for p in model.parameters())


def test_one_backward_on_the_fgm_total_gives_clean_plus_adversarial_gradients():
    model = tiny_obert().eval()
    with EmbeddingPerturbation(model) as pert:
        total, _ = fgm_loss(batch_loss(model), pert, 1.0)
    total.backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    batch_loss(model)().backward()  # clean
    e = model.get_input_embeddings()(IDS) + pert.last_delta  # adversarial, r a constant
    model(inputs_embeds=e, attention_mask=MASK, labels=LABELS).loss.backward()
    want = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert got.keys() == want.keys() and "bert.embeddings.word_embeddings.weight" in got
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-6), name


def test_fgm_works_with_frozen_embeddings():
    model = tiny_obert().eval()
    freeze_bottom(model, 1)
    with EmbeddingPerturbation(model) as pert:
        total, info = fgm_loss(batch_loss(model), pert, 1.0)
    assert not info.skipped and torch.linalg.vector_norm(pert.last_delta).item() == pytest.approx(1.0, abs=1e-5)
    total.backward()
    assert model.get_input_embeddings().weight.grad is None and model.classifier.weight.grad is not None


def test_the_loss_scale_changes_only_the_gradient_magnitude_not_r():
    model = tiny_obert().eval()
    deltas = []
    for scale in (1.0, 2.0**16):
        with EmbeddingPerturbation(model) as pert:
            _, info = fgm_loss(batch_loss(model), pert, 1.0, loss_scale=scale)
        deltas.append((pert.last_delta, info.grad_norm))
    assert torch.allclose(deltas[0][0], deltas[1][0], atol=1e-6)
    assert deltas[1][1] == pytest.approx(deltas[0][1] * 2.0**16, rel=1e-5)


def _pgd_expected(e, w, steps, alpha, epsilon):
    """PGD by hand in floats for loss = 0.5·Σ w·(e + r)²: g_k = w·(e + r_k)."""
    r, out = [0.0, 0.0], []
    for _ in range(steps):
        g = [w[i] * (e[i] + r[i]) for i in range(2)]
        n = math.hypot(*g)
        r = [r[i] + alpha * g[i] / n for i in range(2)]
        norm = math.hypot(*r)
        if norm > epsilon:
            r = [x * epsilon / norm for x in r]
        out.append(r)
    return out


@pytest.mark.parametrize("alpha", [0.3, 0.6])  # 0.6: r_2 leaves the ε ball and is projected back
def test_pgd_steps_follow_the_formula_and_stay_in_the_epsilon_ball(alpha):
    toy, w = Toy(), torch.tensor([1.0, 2.0])
    ids = torch.tensor([[0]])
    deltas = []

    def forward():
        deltas.append(None if pert.delta is None else pert.delta.clone())
        return 0.5 * (w * toy.emb(ids) ** 2).sum()

    with EmbeddingPerturbation(toy) as pert:
        total, info = pgd_loss(forward, pert, steps=3, alpha=alpha, epsilon=1.0)
    expected = _pgd_expected([3.0, 4.0], [1.0, 2.0], 3, alpha, 1.0)
    assert deltas[0] is None and info.forwards == 4 and len(deltas) == 4
    # forward 0 is clean, forwards 1..K-1 ascend at r_1..r_{K-1}, the final one runs at r_K
    for got, want in zip(deltas[1:], expected):
        assert got.flatten().tolist() == pytest.approx(want, abs=1e-6)
    assert info.delta_norm <= 1.0 + 1e-6
    if alpha == 0.6:
        assert info.delta_norm == pytest.approx(1.0, abs=1e-6)
    r3 = torch.tensor(expected[-1])
    clean = 0.5 * (w * torch.tensor([3.0, 4.0]) ** 2).sum()
    assert total.item() == pytest.approx((clean + 0.5 * (w * (torch.tensor([3.0, 4.0]) + r3) ** 2).sum()).item())
    assert torch.equal(toy.emb.weight, torch.tensor([[3.0, 4.0], [0.0, 0.0]]))


def test_pgd_on_a_tiny_model_stays_in_the_ball_and_keeps_weights():
    model = tiny_obert().eval()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    calls = []
    with EmbeddingPerturbation(model) as pert:
        total, info = pgd_loss(lambda: calls.append(1) or batch_loss(model)(), pert, steps=3, alpha=0.3, epsilon=1.0)
    assert len(calls) == 4 and info.forwards == 4 and not info.skipped
    assert 0 < torch.linalg.vector_norm(pert.last_delta).item() <= 1.0 + 1e-6
    assert total.item() == pytest.approx(info.loss_clean + info.loss_adv, rel=1e-6)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())


def test_project_scales_back_only_outside_the_ball():
    assert project(torch.tensor([3.0, 4.0]), 1.0).tolist() == pytest.approx([0.6, 0.8])
    assert project(torch.tensor([0.3, 0.4]), 1.0).tolist() == pytest.approx([0.3, 0.4])


@pytest.mark.parametrize("scale", [0.0, float("nan"), float("inf")])
@pytest.mark.parametrize("attack", ["fgm", "pgd"])
def test_a_zero_or_nonfinite_gradient_skips_and_returns_the_clean_loss(scale, attack):
    toy, ids = Toy(), torch.tensor([[0]])
    calls = []

    def forward():
        calls.append((toy.emb(ids) * scale).sum() + 1.0)
        return calls[-1]

    with EmbeddingPerturbation(toy) as pert:
        if attack == "fgm":
            total, info = fgm_loss(forward, pert, 1.0)
        else:
            total, info = pgd_loss(forward, pert, 3, 0.3, 1.0)
    assert info.skipped and info.loss_adv is None and info.delta_norm == 0.0 and info.forwards == 1
    assert len(calls) == 1 and pert.skips == 1 and pert.attacks == 0 and pert.last_delta is None
    assert total is calls[0]  # the clean loss itself, for the usual backward


def test_pgd_skips_when_a_later_step_gradient_is_not_finite():
    toy, ids = Toy(), torch.tensor([[0]])

    def forward():  # fine at r = 0, NaN once perturbed
        e = toy.emb(ids)
        return (e**2).sum() if pert.delta is None else (e * float("nan")).sum()

    with EmbeddingPerturbation(toy) as pert:
        total, info = pgd_loss(forward, pert, 3, 0.3, 1.0)
    assert info.skipped and info.forwards == 2 and total.item() == 25.0 and pert.skips == 1


def test_perturbation_must_be_entered_and_the_hook_is_removed_on_exit():
    toy = Toy()
    pert = EmbeddingPerturbation(toy)
    with pytest.raises(RuntimeError, match="not active"):
        fgm_loss(lambda: toy.emb(torch.tensor([[0]])).sum(), pert)
    with pert:
        assert len(toy.emb._forward_hooks) == 1
    assert len(toy.emb._forward_hooks) == 0
    with pytest.raises(ValueError, match="epsilon"):
        fgm_loss(lambda: torch.tensor(0.0), pert, epsilon=0.0)


# ---- R-Drop ------------------------------------------------------------------------------------------


def test_rdrop_equals_the_formula_on_fixed_logits():
    # row 0: p1 = (1/2, 1/2), p2 = (3/4, 1/4); row 1: the same logits in both passes (KL 0). Labels 0, 1.
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[math.log(3.0), 0.0], [1.0, 0.0]])
    labels = torch.tensor([0, 1])
    ce_row1 = math.log(1 + math.e)  # -log(1 / (1 + e))
    ce1 = (math.log(2) + ce_row1) / 2
    ce2 = (-math.log(0.75) + ce_row1) / 2
    kl12 = (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)) / 2  # summed over classes, / B
    kl21 = (0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)) / 2
    alpha = 2.0
    want = 0.5 * (ce1 + ce2) + alpha * 0.5 * (kl12 + kl21)
    assert want == pytest.approx(0.5 * (1.0032 + 0.8005) + 2.0 * 0.5 * (0.0719 + 0.0654), abs=1e-3)
    assert rdrop_loss(a, b, labels, alpha).item() == pytest.approx(want, rel=1e-6)
    assert rdrop_loss(a, a, labels, 5.0).item() == pytest.approx(ce1, rel=1e-6)


# ---- NoisyTune ---------------------------------------------------------------------------------------


class WithScalar(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(64, 32)
        self.scale = nn.Parameter(torch.tensor([0.5]))
        self.norm = nn.LayerNorm(32)  # weight all ones: std 0, so no noise


def test_noisytune_noise_is_bounded_by_half_lambda_std_and_seeded():
    model = WithScalar()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    rng = torch.get_rng_state()
    changed = noisytune_(model, lam=0.15, seed=7)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is untouched
    assert changed == ["linear.weight", "linear.bias", "norm.weight", "norm.bias"]
    assert torch.equal(model.scale, before["scale"])  # 1-element tensor skipped
    assert torch.equal(model.norm.weight, before["norm.weight"])  # std 0
    for name in ("linear.weight", "linear.bias"):
        delta = (dict(model.named_parameters())[name] - before[name]).abs()
        bound = 0.15 / 2 * before[name].std().item()
        assert 0 < delta.max().item() <= bound * (1 + 1e-5)
        assert delta.max().item() > 0.9 * bound  # uniform over the whole interval, not a smaller one
    again = WithScalar()
    noisytune_(again, lam=0.15, seed=7)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))
    other = WithScalar()
    noisytune_(other, lam=0.15, seed=8)
    assert not torch.equal(other.linear.weight, model.linear.weight)


# ---- freezing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [tiny_obert, tiny_hf_bert])
def test_freeze_bottom_keeps_frozen_weights_bit_identical_after_a_step(make):
    model = make().train()
    frozen = freeze_bottom(model, 1)
    names = [n for n, _ in model.named_parameters()]
    assert frozen == [n for n in names if n.startswith(("bert.embeddings.", "bert.encoder.layer.0."))]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    batch_loss(model)().backward()
    opt.step()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], before[n]) for n in frozen)
    trainable = [n for n in names if n not in frozen]
    assert trainable and all(not torch.equal(after[n], before[n]) for n in trainable if "layer.1." in n)
    assert not torch.equal(after["classifier.weight"], before["classifier.weight"])


def test_freeze_bottom_options_and_errors():
    model = tiny_hf_bert()
    layers_only = freeze_bottom(model, 2, embeddings=False)
    assert layers_only and all(n.startswith(("bert.encoder.layer.0.", "bert.encoder.layer.1.")) for n in layers_only)
    assert freeze_bottom(tiny_obert(), 0) == [n for n, _ in tiny_obert().named_parameters() if ".embeddings." in n]
    with pytest.raises(ConfigError, match="3 is more than the model's 2 encoder layers"):
        freeze_bottom(tiny_obert(), 3)
    with pytest.raises(ConfigError, match="must be an integer >= 0"):
        freeze_bottom(tiny_obert(), -1)
    with pytest.raises(ConfigError, match="OBERT or BERT layout"):
        freeze_bottom(nn.Linear(2, 2), 1)


# ---- heads -------------------------------------------------------------------------------------------


def test_multi_sample_dropout_eval_is_the_plain_classifier_and_training_averages_k_losses():
    torch.manual_seed(0)
    head = MultiSampleDropoutClassifier(8, 3, k=5, p=0.5)
    pooled, labels = torch.randn(4, 8), torch.tensor([0, 1, 2, 1])
    head.eval()
    logits, loss = head(pooled, labels)
    plain = F.linear(pooled, head.classifier.weight, head.classifier.bias)
    assert torch.equal(logits, plain) and torch.equal(head(pooled, labels)[0], logits)
    assert loss.item() == pytest.approx(F.cross_entropy(plain, labels).item())
    head.train()
    samples = []
    hook = head.classifier.register_forward_hook(lambda m, i, out: samples.append(out.detach()))
    logits, loss = head(pooled, labels)
    hook.remove()
    (s,) = samples
    assert s.shape == (5, 4, 3)
    assert loss.item() == pytest.approx(sum(F.cross_entropy(s[i], labels).item() for i in range(5)) / 5, rel=1e-6)
    assert torch.allclose(logits, s.mean(0))
    assert len({tuple(s[i].flatten().tolist()) for i in range(5)}) == 5  # five different masks
    cfg = OBertConfig(hidden_size=16, num_attention_heads=2, hidden_dropout_prob=0.2, num_labels=3)
    from_cfg = MultiSampleDropoutClassifier.from_config(cfg)
    assert from_cfg.dropout.p == 0.2 and from_cfg.classifier.out_features == 3 and from_cfg.k == 5
    linear = nn.Linear(8, 3)
    assert MultiSampleDropoutClassifier.from_linear(linear).classifier is linear


def test_token_tagging_head_ignores_minus_100():
    torch.manual_seed(0)
    head = TokenTaggingHead(8, 2, p=0.0)
    hidden = torch.randn(2, 3, 8)
    labels = torch.tensor([[-100, 0, 1], [1, -100, -100]])
    logits, loss = head(hidden, labels)
    assert logits.shape == (2, 3, 2)
    picked = [F.cross_entropy(logits[b, t][None], labels[b, t][None]) for b, t in ((0, 1), (0, 2), (1, 0))]
    assert loss.item() == pytest.approx(sum(x.item() for x in picked) / 3, rel=1e-6)
    _, none = head(hidden, torch.full((2, 3), -100))
    assert none.item() == 0.0 and none.requires_grad


# ---- lexical labels ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from obert_lib.corpus.tokenizer import load_vocab_tokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"我爱北京天安门。模型很好", "bert", "##s"]
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return load_vocab_tokenizer(path)


def test_word_boundary_labels_for_hand_written_sentences(tokenizer):
    texts = ["我爱北京天安门。", "BERTs模型很好"]  # 我|爱|北京|天安门|。 and BERTs|模型|很|好
    labels = lexical_labels(tokenizer, texts, max_length=16)
    enc = tokenizer(texts, truncation=True, max_length=16, padding=True)
    assert labels.shape == torch.tensor(enc["input_ids"]).shape == (2, 10)
    assert tokenizer.convert_ids_to_tokens(enc["input_ids"][1])[:7] == [
        "[CLS]", "bert", "##s", "模", "型", "很", "好"
    ]  # fmt: skip
    assert labels.tolist() == [
        [-100, 0, 0, 0, 1, 0, 1, 1, 0, -100],
        [-100, 0, 1, 0, 1, 0, 0, -100, -100, -100],
    ]
    truncated = lexical_labels(tokenizer, texts, max_length=5)
    assert truncated.tolist() == [[-100, 0, 0, 0, -100], [-100, 0, 1, 0, -100]]
    pair = lexical_labels(tokenizer, ["我爱北京"], max_length=16, pairs=["天安门"])
    assert pair.tolist() == [[-100, 0, 0, 0, 1, -100, 0, 1, 1, -100]]


def test_pos_labels_are_the_segmenter_tags(tokenizer):
    names = lexical_tag_names("pos")
    labels = lexical_labels(tokenizer, ["我爱北京天安门。"], max_length=16, kind="pos")[0].tolist()
    tags = [None if x == -100 else names[x] for x in labels]
    assert tags == [None, "r", "v", "ns", "ns", "ns", "ns", "ns", "x", None]
    assert lexical_tag_names("boundary") == ["B", "I"]
    with pytest.raises(ValueError, match="lexical kind: 'ner' is unknown"):
        lexical_labels(tokenizer, ["我"], 8, kind="ner")
