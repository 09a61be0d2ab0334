import pytest

from obert_lib.pretraining.throughput import PEAK_FLOPS, mfu, model_flops_per_token, peak_flops


def test_flops_per_token_by_hand():
    # BERT-base at 512: 6 x 110e6 = 660,000,000; 12 x 12 x 768 x 512 = 56,623,104; sum 716,623,104
    assert model_flops_per_token(110_000_000, 12, 768, 512) == 716_623_104
    # tiny: 6 x 1000 + 12 x 2 x 64 x 64 = 6000 + 98,304 = 104,304
    assert model_flops_per_token(1000, 2, 64, 64) == 104_304


def test_mfu_by_hand():
    # 10,000 tokens/s x 716,623,104 FLOPs = 7.16623104e12 FLOP/s; / 125e12 (V100 fp16) = 0.05732984832
    assert mfu(10_000, 716_623_104, 125e12) == pytest.approx(0.05732984832, rel=1e-12)
    # a job of 8 GPUs: 8 x the tokens over 8 x the peak is the same utilisation
    assert mfu(80_000, 716_623_104, 125e12, devices=8) == pytest.approx(0.05732984832, rel=1e-12)
    with pytest.raises(ValueError):
        mfu(1.0, 1.0, 0.0)


def test_peak_flops_table_and_lookup():
    assert peak_flops("Tesla V100-SXM2-32GB", "fp16") == 125e12
    assert peak_flops("Tesla V100-SXM2-32GB", "fp32") == 15.7e12
    assert peak_flops("Tesla V100-SXM2-32GB", "bf16") is None  # V100 has no bf16
    assert peak_flops("Tesla V100-PCIE-32GB", "fp16") == 112e12
    assert peak_flops("NVIDIA A100-SXM4-80GB", "bf16") == 312e12
    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16") == 989e12  # the SXM part
    assert peak_flops("NVIDIA H100 PCIe", "bf16") == 756e12
    assert peak_flops("NVIDIA H200", "bf16") == 989e12 == PEAK_FLOPS["H100-SXM"]["bf16"]
    assert peak_flops("cpu", "fp32") is None and peak_flops("NVIDIA GeForce RTX 4090", "bf16") is None
    with pytest.raises(ValueError, match="precision 'int8' is unknown"):
        peak_flops("NVIDIA H200", "int8")
