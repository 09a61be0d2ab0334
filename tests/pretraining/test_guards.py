import math
from types import SimpleNamespace

import pytest
import torch

from obert_lib.pretraining.guards import TrainingDiverged, TrainingGuard, loss_scale

NAN = float("nan")


def _run(guard, losses, scales):
    """Feed steps 1..n; return the step that raised (None when the run passed)."""
    for step, (loss, scale) in enumerate(zip(losses, scales), start=1):
        try:
            guard.check(step, loss, scale)
        except TrainingDiverged as exc:
            assert exc.step == step
            return step
    return None


def test_healthy_runs_pass():
    fp16 = [2.0**16] * 5 + [2.0**15] * 5 + [2.0**16] * 5  # an overflow halves the scale, it grows back
    assert _run(TrainingGuard(patience=3), [10 - 0.5 * i for i in range(15)], fp16) is None
    assert _run(TrainingGuard(patience=3), [10 - 0.5 * i for i in range(15)], [None] * 15) is None  # fp32/bf16
    assert _run(TrainingGuard(), [torch.tensor(3.0)] * 3, [None] * 3) is None  # 0-dim tensors are fine


def test_nonfinite_loss_raises_at_the_right_step():
    # fp32/bf16 (no scale): nothing skips the update, the first NaN raises
    assert _run(TrainingGuard(max_nonfinite=3), [3.0, 2.9, NAN, 2.8], [None] * 4) == 3
    assert _run(TrainingGuard(max_nonfinite=3), [3.0, math.inf], [None] * 2) == 2
    # fp16: DeepSpeed skips overflowing steps; up to max_nonfinite consecutive are tolerated
    scales = [1024.0] * 8
    assert _run(TrainingGuard(max_nonfinite=2), [3.0, NAN, NAN, 2.9, NAN, NAN, NAN, 2.8], scales) == 7
    assert _run(TrainingGuard(max_nonfinite=0), [3.0, NAN], scales) == 2
    with pytest.raises(TrainingDiverged) as info:
        _check_all(TrainingGuard(max_nonfinite=3), [3.0, 2.9, NAN], [None] * 3)
    msg = str(info.value)
    assert "training diverged at step 3" in msg and "loss is nan" in msg
    assert "1: loss 3 scale -, 2: loss 2.9 scale -, 3: loss nan scale -" in msg  # the history
    for fix in (
        "bf16",
        "lower stages[i].lr",
        "warmup_steps",
        "LayerNorm in fp32",
        "optimizer=lamb",
        "latest_checkpoint",
    ):
        assert fix in msg


def _check_all(guard, losses, scales):
    for step, (loss, scale) in enumerate(zip(losses, scales), start=1):
        guard.check(step, loss, scale)


def test_loss_scale_at_floor_for_patience_steps_raises():
    collapse = [8.0, 4.0, 2.0, 1.0, 1.0, 1.0, 1.0]
    assert _run(TrainingGuard(min_loss_scale=1.0, patience=3), [5.0] * 7, collapse) == 6  # 3rd step at the floor
    assert _run(TrainingGuard(min_loss_scale=1.0, patience=5), [5.0] * 7, collapse) is None
    assert _run(TrainingGuard(min_loss_scale=2.0, patience=3), [5.0] * 7, collapse) == 5  # floor 2: 2, 1, 1
    with pytest.raises(
        TrainingDiverged,
        match=r"step 6: fp16 loss scale at its floor \(1\) for 3 consecutive steps.*"
        r"4: loss 5 scale 1, 5: loss 5 scale 1, 6: loss 5 scale 1",
    ):
        _check_all(TrainingGuard(patience=3), [5.0] * 7, collapse)


def test_a_recovering_scale_resets_the_count():
    scales = [1.0, 1.0, 2.0, 1.0, 1.0, 4.0, 1.0, 1.0]
    assert _run(TrainingGuard(patience=3), [5.0] * 8, scales) is None
    assert _run(TrainingGuard(patience=3), [5.0] * 9, scales + [1.0]) == 9
    # a finite loss resets the non-finite count too
    assert _run(TrainingGuard(max_nonfinite=1), [NAN, 3.0, NAN, 3.0, NAN], [8.0] * 5) is None


def test_deepspeed_floor_exception_is_translated():
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler

    guard = TrainingGuard()
    guard.check(1, 4.0, 2.0)
    scaler = DynamicLossScaler(
        init_scale=1, scale_window=1000, min_scale=1, delayed_shift=1, consecutive_hysteresis=False
    )
    with pytest.raises(Exception) as info:  # ZeRO 1-3 raise this bare Exception at the floor
        scaler.update_scale(True)
    diverged = guard.from_deepspeed_error(2, info.value)
    assert isinstance(diverged, TrainingDiverged) and diverged.step == 2
    assert "step 2: DeepSpeed stopped at the fp16 loss-scale floor" in str(diverged) and "1: loss 4 scale 2" in str(
        diverged
    )
    assert guard.from_deepspeed_error(2, RuntimeError("CUDA out of memory")) is None


def test_loss_scale_reads_each_deepspeed_optimizer_kind():
    from deepspeed.runtime.fp16.loss_scaler import CreateLossScaler, LossScaleConfig

    args = {
        "init_scale": 2**16,
        "scale_window": 1000,
        "delayed_shift": 2,
        "consecutive_hysteresis": False,
        "min_scale": 1,
    }
    # ZeRO 1-3: the optimiser holds a DynamicLossScaler at .loss_scaler
    zero = SimpleNamespace(loss_scaler=CreateLossScaler(torch.float16, 0, True, args), torch_autocast_gradscaler=None)
    assert loss_scale(SimpleNamespace(fp16_enabled=lambda: True, optimizer=zero)) == 65536.0
    # ZeRO 0 (FP16_Optimizer / FP16_UnfusedOptimizer): a LossScaleConfig at .loss_scale_config
    cfg = LossScaleConfig(
        torch.float16,
        True,
        0,
        {
            "init_scale": 2**12,
            "scale_window": 1000,
            "min_scale": 1,
            "delayed_shift": 2,
            "consecutive_hysteresis": False,
        },
    )
    assert (
        loss_scale(SimpleNamespace(fp16_enabled=lambda: True, optimizer=SimpleNamespace(loss_scale_config=cfg)))
        == 4096.0
    )
    # bf16 under ZeRO keeps a static scaler at 1.0: that is no scaling
    bf16 = SimpleNamespace(
        loss_scaler=CreateLossScaler(torch.bfloat16, 1.0, False, None), torch_autocast_gradscaler=None
    )
    assert loss_scale(SimpleNamespace(fp16_enabled=lambda: False, optimizer=bf16)) is None
    # torch autocast's GradScaler
    amp = SimpleNamespace(torch_autocast_gradscaler=SimpleNamespace(get_scale=lambda: 512.0))
    assert loss_scale(SimpleNamespace(fp16_enabled=lambda: False, optimizer=amp)) == 512.0
    assert loss_scale(SimpleNamespace(fp16_enabled=lambda: True, optimizer=None)) is None
