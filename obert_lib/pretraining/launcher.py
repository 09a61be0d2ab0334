"""Start, or re-attach to, a pretraining run from a notebook cell: `launch(plan)` and `attach(output_dir)`.

launch() runs `obert pretrain --plan PLAN --output DIR [--resume]` in a subprocess (processes.py) and returns
a RunHandle (handle.py) that reads the run's output folder (run_dir.py); besides what the trainer writes
there it adds train.log (the subprocess's output, appended by every launch), launch.json (the launcher's
pid, command and start time) and launch_plan.yaml (the resolved plan the subprocess was started with).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import socket
import time
from pathlib import Path
from typing import Any, Mapping

import yaml

from .. import config as cfgmod
from . import processes
from .handle import RunFailedError, RunHandle, RunningError
from .plan import PretrainConfig, SpeedConfig, validate
from .plots import resolve_plan
from .resume import resume_point
from .run_dir import RunDir, file_id, read_json, write_json_atomic
from .run_lock import holder


def _active_run(out: Path) -> str | None:
    """Why `out` holds a live run, or None."""
    own = processes.launched_here(out)
    if own is not None and own.poll() is None:
        return f"launched from this Python process, pid {own.pid}"
    handle = RunHandle(out)
    run = read_json(handle.run_dir.run_json)
    if run and run.get("status") == "running" and handle.trainer_alive(run):
        return f"run.json says running and its process {run.get('pid')} is alive"
    if handle.launcher_alive():
        return f"its launcher (pid {handle.launch_info().get('pid')}) is alive"
    lock = holder(out)
    if lock is not None:  # e.g. an `obert pretrain` started in a shell
        return f"a run holds its run.lock: pid {lock.get('pid')} on {lock.get('host')}, started {lock.get('started')}"
    return None


def launch(
    plan: PretrainConfig | Mapping[str, Any] | str | Path,
    speed: SpeedConfig | Mapping[str, Any] | None = None,
    *,
    resume: bool = False,
    gpus: int | None = None,
    hostfile: str | Path | None = None,
    wait: bool = True,
    live: bool = True,
    poll_s: float = 1.0,
) -> RunHandle:
    """Start `obert pretrain` on `plan` in a subprocess writing into plan.output_dir; returns its RunHandle.

    plan: a PretrainConfig, a dict, a preset name or a YAML path. speed: SpeedConfig or dict (speed-only).
    One process (CPU, or one GPU) unless gpus > 1 or a hostfile is given: then the DeepSpeed launcher
    starts gpus (per host, with a hostfile) or the hostfile's slots processes, and speed.data_parallel_size
    is set to that count. resume=True continues the run in output_dir from its latest resume point.
    wait=True follows the run (progress bar, log lines, live plot when `live`) until it ends and raises
    RunFailedError if it failed; a kernel interrupt stops it cleanly. wait=False returns at once.
    Refuses (RunningError) when output_dir holds a live run: follow that one with attach(output_dir).
    """
    cfg = resolve_plan(plan)
    speed_cfg = cfgmod.load(SpeedConfig, speed)
    world = processes.world_size(gpus, hostfile)
    if speed_cfg.data_parallel_size != world:
        if speed_cfg.data_parallel_size != 1:
            raise cfgmod.ConfigError(
                f"speed.data_parallel_size: {speed_cfg.data_parallel_size} but launch starts "
                f"{world} process(es) (gpus={gpus}, hostfile={hostfile}); leave it out or make "
                "them equal"
            )
        speed_cfg = dataclasses.replace(speed_cfg, data_parallel_size=world)
    import torch

    validate(cfg, speed_cfg, torch.cuda.is_available() or hostfile is not None or gpus is not None)
    out = Path(cfg.output_dir).resolve()
    reason = _active_run(out)
    if reason:
        raise RunningError(
            f"{out} already holds a running pretraining run ({reason}); follow it with "
            f"pretraining.attach({str(out)!r}), or stop it with "
            f"pretraining.attach({str(out)!r}, wait=False).stop() before starting another"
        )
    if resume and resume_point(out) is None:
        raise FileNotFoundError(f"resume: no resume point under {out}/checkpoints/resume; launch without resume=True")
    out.mkdir(parents=True, exist_ok=True)
    run_dir = RunDir(out)
    run_dir.launch_plan.write_text(
        yaml.safe_dump(cfgmod.to_dict(cfg), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    cmd = processes.build_command(run_dir.launch_plan, cfg.output_dir, speed_cfg, resume, gpus, hostfile)
    previous = file_id(run_dir.run_json)  # an earlier run's run.json, until the new trainer replaces it
    with open(run_dir.train_log, "ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%dT%H:%M:%S')} launch: {shlex.join(cmd)}\n".encode())
        log.flush()
        offset = log.tell()
        proc = processes.start(cmd, out, log)
    write_json_atomic(
        run_dir.launch_json,
        {
            "pid": proc.pid,
            "create_time": processes.create_time(proc.pid),
            "host": socket.gethostname(),
            "cmd": cmd,
            "cwd": os.getcwd(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "previous_run_json": previous,
            "resume": resume,
            "world_size": world,
            "plan_file": str(run_dir.launch_plan),
            "log_offset": offset,
        },
    )
    handle = RunHandle(out, process=proc, live=live, poll_s=poll_s, log_offset=offset)
    if wait:
        state = handle.follow()
        if state.status == "failed":
            raise RunFailedError(f"pretraining in {out} failed: {state}", handle)
    return handle


def attach(output_dir: str | Path, live: bool = True, wait: bool = True, poll_s: float = 1.0) -> RunHandle:
    """Re-attach to the run in `output_dir` (e.g. after a kernel restart): follow it until it ends when it is
    still going and `wait`; a run that already ended gives a handle that shows its final state."""
    out = Path(output_dir).resolve()
    run_dir = RunDir(out)
    if not run_dir.run_json.is_file() and not run_dir.launch_json.is_file():
        raise FileNotFoundError(
            f"{out} holds no run (no {run_dir.run_json.name} or {run_dir.launch_json.name}); "
            "start one with pretraining.launch(plan)"
        )
    handle = RunHandle(out, process=processes.launched_here(out), live=live, poll_s=poll_s)
    if wait and handle.is_alive():
        for line in handle.log(10):
            print(line)
        handle.follow()  # the handle's log reader starts at the log's end: the lines above are not repeated
    return handle
