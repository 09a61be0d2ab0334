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
