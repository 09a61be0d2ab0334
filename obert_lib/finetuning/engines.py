"""Where the optimiser step happens: plain PyTorch or DeepSpeed (ZeRO 0/2), behind one small interface.

The DeepSpeed path reuses the pretraining stack's setup (single-process env, AdamW parameter groups without
decay on biases and LayerNorm). Both take exactly one backward per optimiser step: the adversarial tricks fold
their extra forward passes into that one loss (finetuning.adversarial), which is what keeps them working under
ZeRO, where weights are partitioned and gradients freed between backward calls.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..pretraining.engine import single_process_env
from ..pretraining.optim import param_groups
from .config import TrainConfig


class TorchEngine:
    """AdamW on the trainable parameters, gradient clipping, one step per backward."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, train: TrainConfig):
        self.module = model
        self.clip = train.gradient_clipping
        trainable = [p for p in model.parameters() if p.requires_grad]
        groups = [g for g in param_groups(model, train.weight_decay) if any(p.requires_grad for p in g["params"])]
        for g in groups:
            g["params"] = [p for p in g["params"] if p.requires_grad]
        self.optimizer = torch.optim.AdamW(groups or trainable, lr=train.lr)

    def train(self, mode: bool = True) -> None:
        self.module.train(mode)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> None:
        if self.clip:
            torch.nn.utils.clip_grad_norm_([p for p in self.module.parameters() if p.requires_grad], self.clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict()}, folder / "state.pt")

    def load(self, folder: Path) -> None:
        state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


class DeepSpeedEngine:
    """deepspeed.initialize with our AdamW as the client optimiser; ZeRO stage and precision from the config."""

    name = "deepspeed"

    def __init__(self, model: torch.nn.Module, train: TrainConfig):
        import deepspeed

        single_process_env()
        groups = [g for g in param_groups(model, train.weight_decay) if any(p.requires_grad for p in g["params"])]
        for g in groups:
            g["params"] = [p for p in g["params"] if p.requires_grad]
        optimizer = torch.optim.AdamW(groups, lr=train.lr)
        config = {
            "train_batch_size": train.batch_size,
            "train_micro_batch_size_per_gpu": train.batch_size,
            "gradient_accumulation_steps": 1,
            "gradient_clipping": train.gradient_clipping,
            "zero_optimization": {"stage": train.zero_stage},
            "steps_per_print": 10**9,
            "wall_clock_breakdown": False,
        }
        if train.precision == "fp16":  # dynamic loss scaling from 2^16 (DeepSpeed's defaults otherwise)
            config["fp16"] = {"enabled": True, "loss_scale": 0, "initial_scale_power": 16}
        elif train.precision == "bf16":
            config["bf16"] = {"enabled": True}
        self.engine, self.optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
        self.module = self.engine.module

    def train(self, mode: bool = True) -> None:
        self.engine.train(mode)

    def backward(self, loss: torch.Tensor) -> None:
        self.engine.backward(loss)

    def step(self) -> None:
        self.engine.step()

    def save(self, folder: Path) -> None:
        self.engine.save_checkpoint(str(folder / "deepspeed"), tag="resume")

    def load(self, folder: Path) -> None:
        path, _ = self.engine.load_checkpoint(str(folder / "deepspeed"), tag="resume")
        if path is None:
            raise FileNotFoundError(f"{folder / 'deepspeed'} holds no DeepSpeed resume point")


def build_engine(model: torch.nn.Module, train: TrainConfig):
    """The engine named by train.engine; fp16/bf16 need a GPU and say so."""
    from ..config import ConfigError

    if train.precision != "fp32" and not torch.cuda.is_available():
        raise ConfigError(f"train.precision: {train.precision} needs a GPU; use fp32 on CPU")
    if train.precision != "fp32" and train.engine == "torch":
        raise ConfigError("train.precision: fp16/bf16 run through DeepSpeed here; set train.engine: deepspeed")
    if torch.cuda.is_available():
        model.cuda()
    return DeepSpeedEngine(model, train) if train.engine == "deepspeed" else TorchEngine(model, train)
