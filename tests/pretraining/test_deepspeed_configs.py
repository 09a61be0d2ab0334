import json
from pathlib import Path

import pytest

from obert_lib.pretraining.plan import BATCH_KEYS, DEEPSPEED_DIR, SpeedConfig, zero_stage

CONFIGS = sorted(DEEPSPEED_DIR.glob("*.json"))
# What a speed-only file may hold: precision, ZeRO and communication, logging. Never batch sizes, optimiser
# or scheduler (those come from the plan's stages).
SPEED_KEYS = {
    "fp16",
    "bf16",
    "zero_optimization",
    "wall_clock_breakdown",
    "communication_data_type",
    "prescale_gradients",
    "gradient_predivide_factor",
    "steps_per_print",
    "activation_checkpointing",
    "flops_profiler",
    "comms_logger",
    "zero_allow_untested_optimizer",
}
V100_FP16 = {
    "enabled": True,
    "loss_scale": 0,
    "initial_scale_power": 16,
    "loss_scale_window": 1000,
    "hysteresis": 2,
    "min_loss_scale": 1,
}


def test_the_expected_configs_exist():
    names = {p.name for p in CONFIGS}
    assert {
        "v100x1_fp16_zero2.json",
        "v100x8_fp16_zero2.json",
        "v100x8_fp16_zero3.json",
        "v100_multinode_fp16_zero2.json",
        "v100_multinode_fp16_zero3.json",
        "v100_fp16_zero0.json",
        "cpu_zero2.json",
    } <= names
    readme = (DEEPSPEED_DIR / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in names)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_holds_only_speed_keys(path: Path):
    from deepspeed.runtime.config import DeepSpeedConfig

    extra = json.loads(path.read_text(encoding="utf-8"))
    assert not BATCH_KEYS & set(extra), "batch sizes come from the plan"
    assert set(extra) <= SPEED_KEYS, f"{path.name}: non-speed keys {sorted(set(extra) - SPEED_KEYS)}"
    if path.name.startswith("v100"):
        assert extra["fp16"] == V100_FP16 and "bf16" not in extra  # V100 has no bf16
    # DeepSpeed's own parser accepts it once the plan's batch keys are added (unknown ZeRO keys are rejected)
    ds = DeepSpeedConfig(
        {**extra, "train_batch_size": 8, "train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": 1}
    )
    assert ds.zero_optimization_stage == zero_stage(SpeedConfig(deepspeed_config=str(path)))
    stage = int(path.stem.rsplit("zero", 1)[1])
    assert ds.zero_optimization_stage == stage  # the file name says the stage
