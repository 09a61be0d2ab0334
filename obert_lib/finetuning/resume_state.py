"""Progress of a fine-tuning run and its resume point: exact resume after a kill.

A resume point is the engine's own checkpoint (weights and optimiser; DeepSpeed's under `deepspeed/`) plus
state.json: epoch, batch within the epoch, step, history, best metric, and the torch RNG states that drive
dropout. The batch order of an epoch is a permutation seeded by (seed, epoch), so nothing else is needed for a
resumed run to take the same steps as an uninterrupted one.
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..results import write_text_atomic


@dataclass
class ResumeState:
    epoch: int = 0  # epochs finished
    batch_in_epoch: int = 0  # batches of the current epoch already trained
    step: int = 0  # optimiser steps taken
    step_seconds: float = 0.0  # wall seconds inside training steps (evaluation excluded)
    epoch_losses: list[float] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    best_metric: float = -1.0
    best_epoch: int = 0
    since_best: int = 0  # evaluations since the best one
    improved: bool = False
    stopped: bool = False
    adversarial_skips: int = 0  # perturbations skipped (gradient norm 0, inf or NaN)

    def add(self, record: dict) -> None:
        self.step += 1
        self.epoch_losses.append(record["loss"])
        self.adversarial_skips += int(record.get("adversarial_skipped", 0))

    def end_epoch(self, metric: float) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        self.improved = metric > self.best_metric
        if self.improved:
            self.best_metric, self.best_epoch, self.since_best = metric, self.epoch, 0
        else:
            self.since_best += 1
        self.history.append(
            {"epoch": self.epoch, "step": self.step, "train_loss": float(np.mean(self.epoch_losses)),
             "eval_metric": metric, "best": self.improved}
        )  # fmt: skip
        self.epoch_losses = []


def _encode_state(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode()


def _decode_state(text: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy())


def save_resume(folder: Path, engine, state: ResumeState) -> Path:
    """Write the resume point through a temporary folder and a rename: a kill never leaves half of one."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    engine.save(tmp)
    rng = {"torch": _encode_state(torch.get_rng_state())}
    if torch.cuda.is_available():
        rng["cuda"] = [_encode_state(s) for s in torch.cuda.get_rng_state_all()]
    write_text_atomic(tmp / "state.json", json.dumps({"state": asdict(state), "rng": rng}))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def load_resume(folder: Path, engine) -> ResumeState:
    """Restore weights, optimiser and RNG from a resume point; returns the progress to continue from."""
    data = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    engine.load(folder)
    torch.set_rng_state(_decode_state(data["rng"]["torch"]))
    if "cuda" in data["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_decode_state(s) for s in data["rng"]["cuda"]])
    return ResumeState(**data["state"])
