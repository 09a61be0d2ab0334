import math

import pytest

from obert_lib import config as cfgmod
from obert_lib.config import ConfigError
from obert_lib.pretraining.plan import (
    DEEPSPEED_DIR,
    PretrainConfig,
    SpeedConfig,
    StageConfig,
    load_plan,
    scheduler_config,
    validate,
    zero_stage,
)

CURRICULUM_SPEED = SpeedConfig(
    data_parallel_size=64,
    precision="fp16",
    zero_stage=2,
    deepspeed_config=str(DEEPSPEED_DIR / "v100_multinode_fp16_zero2.json"),
)
MOTIAN_SPEED = SpeedConfig(
    data_parallel_size=64, precision="fp16", zero_stage=0, deepspeed_config=str(DEEPSPEED_DIR / "v100_fp16_zero0.json")
)


def test_obert_curriculum_loads_and_validates_on_64_gpus():
    plan = load_plan("obert-curriculum")
    assert plan.model.preset == "100M" and plan.model.max_positions == 512
    assert [s.seq_len for s in plan.stages] == [64, 128, 256, 512]
    assert [s.global_batch for s in plan.stages] == [1024, 2048, 4096, 5120]
    # steps = ceil(tokens / (global_batch x seq_len))
    assert [s.steps for s in plan.stages] == [61036, 45777, 15259, 3052]
    assert sum(s.tokens for s in plan.stages) == 40_000_000_000
    assert validate(plan, CURRICULUM_SPEED, cuda_available=True) == [1, 1, 1, 2]
    for s, a in zip(plan.stages, [1, 1, 1, 2]):
        assert s.global_batch == s.micro_batch * a * 64
    # granularity rises: words -> phrases -> clauses
    assert plan.stages[0].mask.mixture_at(0) == {"word": 1.0}
    assert set(plan.stages[1].mask.mixture_at(0)) == {"word", "phrase"}
    assert "clause" in plan.stages[2].mask.mixture_at(0)
    assert plan.stages[3].mask.mixture_at(3000)["clause"] == pytest.approx(0.4)
    assert all(s.optimizer == "adamw" and s.warm_start and 0 < s.warmup_steps < s.steps for s in plan.stages)
    with pytest.raises(ConfigError, match=r"stages\[0\]\.global_batch: 1024 is not micro_batch \(16\)"):
        validate(plan, SpeedConfig(data_parallel_size=48), cuda_available=True)


def test_motian_two_stage_loads_and_validates_on_64_gpus_with_zero0():
    plan = load_plan("motian-two-stage")
    assert (plan.model.layer_norm, plan.model.position, plan.model.preset) == ("pre", "relative", "100M")
    assert [(s.seq_len, s.global_batch, s.steps, s.optimizer) for s in plan.stages] == [
        (128, 65536, 7038, "lamb"),
        (512, 32768, 1563, "lamb"),
    ]
    assert zero_stage(MOTIAN_SPEED) == 0
    assert validate(plan, MOTIAN_SPEED, cuda_available=True) == [8, 16]
    # LAMB under ZeRO-2 (the default speed, or a ZeRO-2 file) is refused before any work
    for speed in (
        SpeedConfig(data_parallel_size=64),
        SpeedConfig(data_parallel_size=64, zero_stage=0, deepspeed_config=CURRICULUM_SPEED.deepspeed_config),
    ):
        with pytest.raises(
            ConfigError,
            match=r"stages\[0\]\.optimizer: lamb .* ZeRO stage 2 .*speed\.zero_stage.*"
            r"set speed\.zero_stage=0 .* or use optimizer adamw",
        ):
            validate(plan, speed, cuda_available=True)


def test_tiny_preset_still_validates_on_cpu():
    plan = load_plan("tiny")
    assert validate(plan, SpeedConfig(), cuda_available=False) == [2, 2]
    assert [s.steps for s in plan.stages] == [200, 100] and all(s.tokens is None for s in plan.stages)


def test_tokens_or_steps():
    st = StageConfig(seq_len=64, global_batch=16, micro_batch=8, tokens=10_000)
    assert st.steps == 10  # ceil(10000 / 1024) = ceil(9.77)
    assert st.stage_tokens == 10 * 16 * 64
    assert StageConfig().steps == 20  # neither given: the default
    # a resolved plan (plan.json) holds both, consistently, and loads again
    again = cfgmod.load(PretrainConfig, cfgmod.to_dict(PretrainConfig(stages=[st])))
    assert again.stages[0].steps == 10 and again.stages[0].tokens == 10_000
    with pytest.raises(
        ConfigError,
        match=r"stages\[0\]\.steps: 5 and tokens \(10000, .*= 10 steps\) are both given; "
        r"give exactly one of steps or tokens",
    ):
        cfgmod.load(PretrainConfig, {"stages": [{"steps": 5, "tokens": 10_000, "global_batch": 16, "micro_batch": 8}]})
    with pytest.raises(ConfigError, match=r"stages\[0\]\.warmup_steps: 20 must be within \[0, steps=10\)"):
        cfgmod.load(
            PretrainConfig, {"stages": [{"tokens": 10_000, "global_batch": 16, "micro_batch": 8, "warmup_steps": 20}]}
        )
    with pytest.raises(ConfigError, match="tokens: 0 must be >= 1"):
        StageConfig(tokens=0)


def test_new_validation_errors_name_key_and_fix():
    with pytest.raises(
        ConfigError,
        match=r"stages\[1\]\.seq_len: 256 exceeds model\.max_positions \(128\); "
        r"lower stages\[1\]\.seq_len to <= 128 or raise model\.max_positions to >= 256",
    ):
        validate(load_plan("tiny", **{"stages.1.seq_len": 256}), SpeedConfig(), False)
    schedule = [{"from_step": 0, "mixture": {"word": 1}}, {"from_step": 100, "mixture": {"phrase": 1}}]
    with pytest.raises(
        ConfigError,
        match=r"stages\[1\]\.mask\.schedule\[1\]\.from_step: 100 is not below the stage's "
        r"stages\[1\]\.steps \(100\).*lower from_step below 100 or remove the entry",
    ):
        validate(load_plan("tiny", **{"stages.1.mask": {"schedule": schedule}}), SpeedConfig(), False)
    plan = load_plan("tiny")
    plan.stages[0].warmup_steps = 200  # changed after loading: validate checks again, naming the stage
    with pytest.raises(
        ConfigError,
        match=r"stages\[0\]\.warmup_steps: 200 must be within \[0, stages\[0\]\.steps=200\) "
        r"for lr_schedule warmup_linear; lower warmup_steps or give more steps/tokens",
    ):
        validate(plan, SpeedConfig(), False)
    with pytest.raises(
        ConfigError, match=r"stages\[0\]\.optimizer: 'sgd' is not allowed; use one of \['adamw', 'lamb'\]"
    ):
        load_plan("tiny", **{"stages.0.optimizer": "sgd"})
    with pytest.raises(ConfigError, match=r"stages\[0\]\.lr_schedule: 'step' is not allowed; use one of"):
        load_plan("tiny", **{"stages.0.lr_schedule": "step"})
    with pytest.raises(
        ConfigError,
        match=r"speed\.deepspeed_config: nope\.json does not exist; pass one of \[.*"
        r"'v100_fp16_zero0\.json'",
    ):
        validate(load_plan("tiny"), SpeedConfig(deepspeed_config="nope.json"), False)


def test_scheduler_config_builds_each_deepspeed_scheduler():
    import torch
    from deepspeed.runtime import lr_schedules

    def lrs(stage):
        sched = scheduler_config(stage)
        param = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([param], lr=stage.lr)
        s = getattr(lr_schedules, sched["type"])(opt, **sched["params"])
        out = []
        for _ in range(stage.steps):  # as DeepSpeed: read by the optimiser step, then the scheduler steps
            out.append(opt.param_groups[0]["lr"])
            s.step()
        return out

    base = dict(lr=1.0, steps=10, warmup_steps=4)
    linear = lrs(StageConfig(**base, lr_schedule="warmup_linear"))
    assert scheduler_config(StageConfig(**base))["type"] == "WarmupDecayLR"
    assert linear == pytest.approx([0, 0, 0.25, 0.5, 0.75, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6])
    constant = lrs(StageConfig(**base, lr_schedule="warmup_constant"))
    assert constant == pytest.approx([0, 0, 0.25, 0.5, 0.75, 1, 1, 1, 1, 1])
    cosine = lrs(StageConfig(**base, lr_schedule="warmup_cosine"))
    # WarmupCosineLR: after warm-up, iteration i has progress (i - 4 + 1) / (10 - 4) and ratio
    # 1e-4 + (1 - 1e-4) (1 + cos(pi progress)) / 2 (it starts the decay one step past the peak)
    decay = [1e-4 + (1 - 1e-4) * (1 + math.cos(math.pi * (i - 3) / 6)) / 2 for i in range(4, 9)]
    assert cosine == pytest.approx([0, 0, 0.25, 0.5, 0.75] + decay)
    # warmup 0 is allowed in a plan; DeepSpeed rejects 0, so the scheduler gets 1 (it warms up over max(2, n))
    assert scheduler_config(StageConfig(steps=10, warmup_steps=0))["params"]["warmup_num_steps"] == 1
