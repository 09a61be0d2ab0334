"""Resume points of a pretraining run: written atomically, read only from inside the run folder.

A resume point is `<output_dir>/checkpoints/resume/step-<global step>/`: DeepSpeed's engine state
(weights, optimiser, schedule), state.json (stage, step) and rng-rank<r>.json, the RNG states as JSON
(torch's and CUDA's as base64 bytes, the collator's numpy generator, Python's `random` and numpy's global
state), so reading one never executes code. `latest.json` names the newest point by folder name; a name
that leads outside checkpoints/resume is refused. DeepSpeed's own checkpoint load unpickles its files:
resume only runs you trust.
"""

from __future__ import annotations

import base64
import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from ..config import UserError
from .run_dir import RunDir, write_json_atomic

_POINT_NAME = re.compile(r"^step-\d+$")


def _bytes(tensor: torch.Tensor) -> str:
    return base64.b64encode(tensor.cpu().numpy().tobytes()).decode("ascii")


def _tensor(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def rng_states(collator) -> dict:
    """This process's RNG states as JSON-ready data."""
    version, state, gauss = random.getstate()
    numpy_global = np.random.get_state(legacy=False)
    numpy_global["state"] = {"key": numpy_global["state"]["key"].tolist(), "pos": int(numpy_global["state"]["pos"])}
    return {
        "format": 1,
        "torch": _bytes(torch.get_rng_state()),
        "cuda": _bytes(torch.cuda.get_rng_state()) if torch.cuda.is_available() else None,
        "collator": collator.rng.bit_generator.state,
        "python": [version, list(state), gauss],
        "numpy": numpy_global,
    }


def read_rng_states(point: Path, rank: int) -> dict:
    """The RNG states of `rank` in resume point `point`, read without executing code (UserError if unreadable)."""
    path = point / f"rng-rank{rank}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"resume: {path} is not readable JSON ({exc}); resume from an intact run folder") from None
    legacy = point / f"rng-rank{rank}.pt"  # written by earlier versions: tensors and plain data only
    if legacy.is_file():
        try:
            state = torch.load(legacy, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - weights_only refuses anything but tensors and plain data
            raise UserError(
                f"resume: {legacy} holds more than tensors and plain data, so it is not loaded "
                f"({type(exc).__name__}); resume only runs you trust, from their own folder"
            ) from None
        return {"format": 0, **state}
    raise UserError(f"resume: {path} is missing from the resume point {point}; resume from an intact run folder")


def set_rng_states(states: dict, collator) -> None:
    """Restore what rng_states() recorded (format 1) or what an earlier version's .pt held (format 0)."""
    if states.get("format") == 0:
        torch.set_rng_state(states["torch"])
        if states.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(states["cuda"])
        collator.rng.bit_generator.state = states["collator"]
        return
    torch.set_rng_state(_tensor(states["torch"]))
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(_tensor(states["cuda"]))
    collator.rng.bit_generator.state = states["collator"]
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    numpy_global = dict(states["numpy"])
    numpy_global["state"] = {
        "key": np.array(numpy_global["state"]["key"], dtype=np.uint32),
        "pos": numpy_global["state"]["pos"],
    }
    np.random.set_state(numpy_global)


def save_resume(engine, run_dir: RunDir, state: dict, collator, rank: int) -> Path:
    """A resume point: DeepSpeed engine state + data position + RNG states, atomically.

    Written into step-<global>.tmp, renamed, then `latest` (a JSON pointer) replaced; older points are removed.
    """
    import torch.distributed as dist

    root = run_dir.resume
    final = root / f"step-{state['global_step']}"
    tmp = final.with_name(final.name + ".tmp")
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    if dist.is_initialized():
        dist.barrier()
    engine.save_checkpoint(str(tmp / "deepspeed"), tag="resume")
    write_json_atomic(tmp / f"rng-rank{rank}.json", rng_states(collator))
    if dist.is_initialized():
        dist.barrier()
    if rank == 0:
        write_json_atomic(tmp / "state.json", state)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        write_json_atomic(root / "latest.json", {"path": final.name, **state})
        for old in root.glob("step-*"):
            if old != final and not old.name.endswith(".tmp"):
                shutil.rmtree(old, ignore_errors=True)
    if dist.is_initialized():
        dist.barrier()
    return final


def resume_point(output_dir: str | Path) -> dict | None:
    """The latest resume point of a run ({stage, stage_step, global_step, micro_batches, path}) or None.

    latest.json names a folder under checkpoints/resume; anything else (a path elsewhere, `..`, a link out
    of the run folder) is a UserError: resume reads only inside its own run folder.
    """
    root = RunDir(output_dir).resume
    latest = root / "latest.json"
    if not latest.is_file():
        return None
    try:
        state = json.loads(latest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"resume: {latest} is not readable JSON ({exc}); start without --resume") from None
    name = state.get("path", "") if isinstance(state, dict) else None
    if not isinstance(name, str) or (name and not _POINT_NAME.match(name)):
        raise UserError(
            f"resume: {latest} points at {name!r}, not a step-N folder of {root}; resume reads only "
            "inside its own run folder: restore latest.json or start without --resume"
        )
    for key in ("stage", "stage_step", "global_step"):
        if not isinstance(state.get(key), int) or isinstance(state.get(key), bool) or state[key] < 0:
            raise UserError(f"resume: {latest} has no valid {key!r}; restore latest.json or start without --resume")
    if name:
        path = (root / name).resolve()
        if not path.is_relative_to(root.resolve()) or not path.is_dir():
            raise UserError(
                f"resume: {latest} points at {root / name}, which is not a folder inside {root}; "
                "resume reads only inside its own run folder: restore it or start without --resume"
            )
    state["path"] = str(root / name)
    return state


def mark_stage_done(run_dir: RunDir, stage: int, global_step: int, finished: bool) -> None:
    """After a stage checkpoint: latest.json points at the start of stage `stage` (0-based) or says `finished`;
    the finished stage's mid-stage points are removed (rank 0)."""
    root = run_dir.resume
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        root / "latest.json",
        {"path": "", "stage": stage, "stage_step": 0, "global_step": global_step, "finished": finished},
    )
    for old in root.glob("step-*"):  # mid-stage points of a finished stage are not needed any more
        shutil.rmtree(old, ignore_errors=True)


def check_resume(out: Path, cfg, speed) -> dict:
    """The resume point of the run in `out`, checked against the plan and speed settings it is resumed with."""
    from .. import config as cfgmod
    from .plan import SpeedConfig, zero_stage

    point = resume_point(out)
    if point is None:
        raise FileNotFoundError(f"resume: no resume point under {out}/checkpoints/resume; start without --resume")
    if point.get("finished"):
        raise cfgmod.ConfigError(
            f"resume: the run in {out} finished every stage; nothing to resume. Start a new "
            "output_dir (or run without resume to train again from scratch)"
        )

    def comparable(plan: dict) -> dict:  # the same plan whether paths were given relative or absolute
        return {**plan, "output_dir": None, "corpus_dir": str(Path(plan["corpus_dir"]).resolve())}

    run_dir = RunDir(out)
    saved = json.loads(run_dir.plan_json.read_text(encoding="utf-8"))
    # settings added since the run started (e.g. aux_tasks) read as their defaults, as the run trained them
    saved = {**cfgmod.to_dict(type(cfg)()), **saved}
    if comparable(saved) != comparable(cfgmod.to_dict(cfg)):
        raise cfgmod.ConfigError(
            f"resume: the plan differs from the one {out} was started with ({out}/plan.json); "
            "resume with that plan, or start a new output_dir"
        )
    saved_speed = cfgmod.load(SpeedConfig, json.loads(run_dir.speed_json.read_text(encoding="utf-8")))
    for key, before, now in (
        ("data_parallel_size", saved_speed.data_parallel_size, speed.data_parallel_size),
        ("zero_stage", zero_stage(saved_speed), zero_stage(speed)),
    ):
        if before != now:  # the data split per rank and the optimiser-state layout depend on these
            raise cfgmod.ConfigError(
                f"speed.{key}: the run was started with {before}, now {now}; resume with speed.{key}={before}"
            )
    return point
