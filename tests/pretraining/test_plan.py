import pytest

from obert_lib.config import ConfigError
from obert_lib.pretraining import PretrainConfig, SpeedConfig, StageConfig, deepspeed_config, load_plan, validate


def test_batch_arithmetic_checked_before_work_with_fix():
    cfg = PretrainConfig(
        stages=[StageConfig(global_batch=16, micro_batch=8), StageConfig(name="b", global_batch=20, micro_batch=8)]
    )
    with pytest.raises(
        ConfigError,
        match=r"stages\[1\]\.global_batch: 20 is not micro_batch \(8\) x accumulation x "
        r"data_parallel_size \(1\); use 16 or 24",
    ):
        validate(cfg, SpeedConfig(), cuda_available=False)
    assert validate(
        PretrainConfig(stages=[StageConfig(global_batch=32, micro_batch=4)]), SpeedConfig(data_parallel_size=2), False
    ) == [4]


def test_seq_len_precision_and_names():
    with pytest.raises(ConfigError, match=r"stages\[0\]\.seq_len: 256 exceeds model.max_positions \(128\)"):
        validate(load_plan("tiny", **{"stages.0.seq_len": 256}), SpeedConfig(), False)
    with pytest.raises(ConfigError, match="speed.precision: fp16 needs a CUDA GPU"):
        validate(load_plan("tiny"), SpeedConfig(precision="fp16"), False)
    with pytest.raises(ConfigError, match="names .* repeat"):
        validate(load_plan("tiny", **{"stages.1.name": "seq64"}), SpeedConfig(), False)
    with pytest.raises(ConfigError, match="warmup_steps"):
        StageConfig(steps=5, warmup_steps=5)
    with pytest.raises(ConfigError, match="plan: 'nope' is neither a preset"):
        load_plan("nope")


def test_deepspeed_config_is_consistent():
    st = StageConfig(global_batch=32, micro_batch=4, lr=1e-3, steps=10)
    ds = deepspeed_config(st, SpeedConfig(zero_stage=3, precision="fp16"), accumulation=4)
    assert ds["train_batch_size"] == 32 == ds["train_micro_batch_size_per_gpu"] * ds["gradient_accumulation_steps"] * 2
    assert ds["zero_optimization"]["stage"] == 3 and ds["fp16"]["enabled"]
    assert ds["scheduler"]["params"]["warmup_max_lr"] == 1e-3 and "optimizer" not in ds  # ours is a client optimiser


def test_bf16_launch_to_gpu_nodes_validates_on_a_head_node_without_cuda(monkeypatch):
    """gpus / hostfile set cuda_available=True for the remote ranks; the capability check needs a local GPU."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fp32 = validate(load_plan("tiny"), SpeedConfig(), cuda_available=False)
    assert validate(load_plan("tiny"), SpeedConfig(precision="bf16"), cuda_available=True) == fp32


def test_bf16_on_a_pre_ampere_gpu_is_refused_with_the_fix(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda: (7, 0))
    with pytest.raises(ConfigError, match=r"bf16 needs an Ampere or newer GPU, this one has compute capability 7\.0"):
        validate(load_plan("tiny"), SpeedConfig(precision="bf16"), cuda_available=True)
