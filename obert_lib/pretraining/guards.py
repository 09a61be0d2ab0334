"""Stop a pretraining run at the known fp16 failure: loss-scale collapse and non-finite loss.

fp16 (V100: no bf16) keeps gradients representable by multiplying the loss by a dynamic scale
(DeepSpeed: "loss_scale": 0, start 2**initial_scale_power). An overflowing step is skipped and the scale
halved (after `hysteresis` overflows); `loss_scale_window` clean steps double it again. A diverging model
overflows at every scale, so the scale falls to DeepSpeed's floor, `min_loss_scale` (default 1), and
stays there: ZeRO 1-3 then raise a bare `Exception("Current loss scale already at minimum ...")`; the
unfused fp16 optimiser (ZeRO 0) silently skips every step. fp32 and bf16 have no scale and nothing skips
an update, so a NaN loss there means NaN gradients are about to reach the weights.

The trainer calls, per optimiser step (after the gradient-accumulation micro-batches),

    guard = TrainingGuard()                                   # one per stage
    try:
        ... engine.backward(loss); engine.step() ...
    except Exception as exc:                                  # ZeRO's own floor exception
        if (diverged := guard.from_deepspeed_error(step, exc)) is not None:
            raise diverged from exc
        raise
    guard.check(step, mean_loss, loss_scale(engine))

and on `TrainingDiverged` stops without saving this stage, so the last completed stage checkpoint (written
atomically by `_save_stage`) stays the newest one and `latest_checkpoint` returns it.
"""

from __future__ import annotations

import math
from collections import deque

import torch

FIXES = (
    "use bf16 instead of fp16 on Ampere or newer GPUs (A100/H100: speed.precision=bf16; bf16 has fp32's "
    "exponent range and needs no loss scaling); lower stages[i].lr; lengthen stages[i].warmup_steps; keep "
    "LayerNorm in fp32 (upcast its input: the fp16 variance overflows); use LAMB's gradient normalisation "
    "(stages[i].optimizer=lamb with ZeRO stage 0) or a tighter stages[i].gradient_clipping; Pre-LN "
    "(model.layer_norm=pre) trains stably at higher learning rates (Xiong et al. 2020). Restart from the last "
    "completed stage checkpoint (pretraining.latest_checkpoint)"
)

# DeepSpeed's DynamicLossScaler.update_scale (ZeRO 1-3) raises this at the floor; 0.19.8 wording.
_DEEPSPEED_FLOOR_MESSAGE = "Current loss scale already at minimum"


class TrainingDiverged(RuntimeError):
    """The run diverged; the message names the step, the recent loss / loss-scale history and the fixes."""

    def __init__(self, message: str, step: int, history: list[tuple[int, float, float | None]]):
        super().__init__(message)
        self.step = step
        self.history = history


class TrainingGuard:
    """Raises TrainingDiverged on a non-finite loss or a loss scale stuck at its floor.

    min_loss_scale: the floor, 1.0 because DeepSpeed's fp16 `min_loss_scale` defaults to 1 (and the
        env/deepspeed configs set 1). Reaching it from 2**16 takes 16 halvings, each after `hysteresis`
        overflowing steps; at scale 1 the gradients are not scaled at all, so fp16 flushes every gradient
        below 6e-8 to zero and any further overflow is a true inf/NaN gradient. A scale at the floor for
        `patience` consecutive steps therefore means every step overflows (skipped) or trains on
        underflowed gradients; it only leaves the floor after loss_scale_window (1000) clean steps, so a
        healthy run never sits there.
    patience: consecutive steps at (or below) the floor that raise.
    max_nonfinite: consecutive non-finite losses tolerated while a loss scale is active (fp16: DeepSpeed
        skips those steps, the weights stay as they were). Without a loss scale (fp32/bf16, loss_scale None)
        the first non-finite loss raises: nothing skips that update.
    history: how many recent (step, loss, scale) entries the message shows.
    """

    def __init__(self, min_loss_scale: float = 1.0, patience: int = 20, max_nonfinite: int = 3, history: int = 10):
        if patience < 1 or max_nonfinite < 0 or history < 1:
            raise ValueError("patience and history must be >= 1, max_nonfinite >= 0")
        self.min_loss_scale = float(min_loss_scale)
        self.patience = patience
        self.max_nonfinite = max_nonfinite
        self.history: deque[tuple[int, float, float | None]] = deque(maxlen=history)
        self.nonfinite = 0  # consecutive non-finite losses
        self.at_floor = 0  # consecutive steps with the scale at the floor

    def check(self, step: int, loss, loss_scale: float | None = None) -> None:
        """Record one optimiser step's loss (float or 0-dim tensor) and loss scale (None: no scaling)."""
        loss = float(loss)
        scale = None if loss_scale is None else float(loss_scale)
        self.history.append((step, loss, scale))
        if math.isfinite(loss):
            self.nonfinite = 0
        else:
            self.nonfinite += 1
            if scale is None:
                self._raise(step, f"loss is {loss} and no loss scaling skips this update (fp32/bf16)")
            if self.nonfinite > self.max_nonfinite:
                self._raise(
                    step, f"{self.nonfinite} consecutive non-finite losses (max_nonfinite={self.max_nonfinite})"
                )
        if scale is not None and scale <= self.min_loss_scale:
            self.at_floor += 1
            if self.at_floor >= self.patience:
                self._raise(
                    step,
                    f"fp16 loss scale at its floor ({self.min_loss_scale:g}) for {self.at_floor} "
                    f"consecutive steps: every step overflows",
                )
        else:
            self.at_floor = 0

    def from_deepspeed_error(self, step: int, exc: BaseException) -> TrainingDiverged | None:
        """TrainingDiverged for DeepSpeed's own loss-scale-floor exception (ZeRO 1-3), else None."""
        if _DEEPSPEED_FLOOR_MESSAGE not in str(exc):
            return None
        return self._diverged(step, f"DeepSpeed stopped at the fp16 loss-scale floor ({exc})")

    def _diverged(self, step: int, reason: str) -> TrainingDiverged:
        rows = ", ".join(
            f"{s}: loss {loss:.4g} scale {'-' if sc is None else f'{sc:g}'}" for s, loss, sc in self.history
        )
        return TrainingDiverged(
            f"training diverged at step {step}: {reason}. Recent steps (step: loss, loss scale): "
            f"{rows or 'none recorded'}. Fix: {FIXES}",
            step,
            list(self.history),
        )

    def _raise(self, step: int, reason: str):
        raise self._diverged(step, reason)


def loss_scale(engine) -> float | None:
    """The current fp16 loss scale of a DeepSpeed engine; None for fp32/bf16 (no scaling).

    DeepSpeed 0.19.8 keeps it in: ZeRO 1-3 optimisers (DeepSpeedZeroOptimizer, ..._Stage3) `loss_scaler
    .cur_scale`, promoted as the `cur_scale` / `loss_scale` properties; FP16_Optimizer and
    FP16_UnfusedOptimizer (ZeRO 0) `loss_scale_config.cur_scale`, promoted as `loss_scale`; a
    torch.amp.GradScaler at `torch_autocast_gradscaler` when the "torch_autocast" config is used.
    """
    opt = getattr(engine, "optimizer", None)
    if opt is None:
        return None
    scaler = getattr(opt, "torch_autocast_gradscaler", None)
    if scaler is not None:
        return float(scaler.get_scale())
    fp16 = getattr(engine, "fp16_enabled", None)
    if callable(fp16) and not fp16():
        return None  # bf16/fp32: ZeRO still holds a static scaler at 1.0, which is no scaling
    for value in (
        getattr(opt, "loss_scale", None),
        getattr(getattr(opt, "loss_scale_config", None), "cur_scale", None),
        getattr(opt, "cur_scale", None),
        getattr(getattr(opt, "loss_scaler", None), "cur_scale", None),
    ):
        if isinstance(value, torch.Tensor) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return float(value)
    return None
