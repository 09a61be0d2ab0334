"""The process layer of launch(): the command, the subprocess, whether a process lives, signals to the trainers.

`build_command` runs the same entry point as `obert pretrain --plan PLAN --output DIR [--resume]`: one
process (CPU or one GPU), or the DeepSpeed launcher around it for several GPUs or a hostfile.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from .. import config as cfgmod
from .plan import SpeedConfig

# torch.distributed settings of this process (a notebook that ran pretraining.run in-process holds MASTER_PORT)
_DIST_ENV = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE")
_PROCESSES: dict[str, subprocess.Popen] = {}  # launched from this Python process, by resolved output_dir


def alive(pid: int | None, create_time: float | None = None) -> bool:
    """Whether `pid` runs (not a zombie) and, when given, started at `create_time` (so a reused pid is not it)."""
    import psutil

    if not pid:
        return False
    try:
        proc = psutil.Process(int(pid))
        if create_time is not None and abs(proc.create_time() - float(create_time)) > 1.0:  # 1 s: clock rounding
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def create_time(pid: int) -> float | None:
    """When `pid` started (seconds since the epoch), None when it is already gone."""
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - the process may already be gone; liveness then falls back to the pid
        return None


def _parse_hostfile(path: str | Path) -> dict[str, int]:
    """DeepSpeed's hostfile format: 'host slots=N' per line, '#' comments."""
    hosts: dict[str, int] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"^(\S+)\s+slots=(\d+)", line)
        if not match:
            raise cfgmod.ConfigError(f"hostfile {path}: bad line {line!r}; write 'HOST slots=N'")
        hosts[match.group(1)] = int(match.group(2))
    if not hosts:
        raise cfgmod.ConfigError(f"hostfile {path}: no 'HOST slots=N' lines")
    return hosts


def world_size(gpus: int | None, hostfile: str | Path | None) -> int:
    """Processes the launch starts: the hostfile's slots (or gpus per host), else gpus, else 1."""
    if gpus is not None and gpus < 1:
        raise cfgmod.ConfigError(f"gpus: {gpus} must be >= 1 (or None for a single process)")
    if hostfile is not None:
        return sum(gpus or slots for slots in _parse_hostfile(hostfile).values())
    return gpus or 1


def _speed_args(speed: SpeedConfig) -> list[str]:
    """`--speed key=value` for each setting that differs from the default (values read back as YAML)."""
    default = cfgmod.to_dict(SpeedConfig())
    args = []
    for key, value in cfgmod.to_dict(speed).items():
        if key in default and value == default[key]:
            continue
        text = value if isinstance(value, str) and yaml.safe_load(value) == value else json.dumps(value)
        args += ["--speed", f"{key}={text}"]
    return args


def build_command(
    plan_file: str | Path,
    output_dir: str | Path,
    speed: SpeedConfig,
    resume: bool = False,
    gpus: int | None = None,
    hostfile: str | Path | None = None,
) -> list[str]:
    """The command launch() runs: `python -m obert_lib.cli pretrain ...`, under `deepspeed` for several processes."""
    entry = ["pretrain", "--plan", str(plan_file), "--output", str(output_dir), *_speed_args(speed)]
    if resume:
        entry.append("--resume")
    if hostfile is None and (gpus or 1) <= 1:
        return [sys.executable, "-u", "-m", "obert_lib.cli", *entry]
    script = Path(sys.executable).parent / "deepspeed"
    head = [str(script)] if script.is_file() else [sys.executable, "-m", "deepspeed.launcher.runner"]
    if hostfile is not None:
        head += ["--hostfile", str(Path(hostfile).resolve())]
    if gpus:
        head += ["--num_gpus", str(gpus)]
    return [*head, "--no_local_rank", "--module", "obert_lib.cli", *entry]


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DIST_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    import torch

    if "DS_ACCELERATOR" not in env and not torch.cuda.is_available():  # say it: no "Setting accelerator to CPU"
        env["DS_ACCELERATOR"] = "cpu"  # warning from every child; a GPU machine keeps DeepSpeed's detection
    root = str(Path(__file__).resolve().parents[2])  # obert_lib importable from any cwd, installed or not
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def start(cmd: list[str], output_dir: Path, log) -> subprocess.Popen:
    """`cmd` in its own session (a process group to signal), stdout and stderr into `log`, registered here."""
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=os.getcwd(),
        env=_child_env(),
        start_new_session=True,
    )
    _PROCESSES[str(output_dir)] = proc
    return proc


def launched_here(output_dir: Path) -> subprocess.Popen | None:
    """The process launched from this Python process into `output_dir`, if any (it may have ended)."""
    return _PROCESSES.get(str(output_dir))


def trainer_pids(root_pid: int | None, run: dict, local: bool) -> list[int]:
    """Local training processes (`python -m obert_lib.cli`) under `root_pid`, not the DeepSpeed launchers around
    them; plus run.json's pid when that run is `local` and still running."""
    import psutil

    found: list[psutil.Process] = []
    if root_pid:
        try:
            root = psutil.Process(root_pid)
            found = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            found = []
    pids = []
    for proc in found:
        try:
            cmd = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(a == "-m" and b == "obert_lib.cli" for a, b in zip(cmd, cmd[1:])):
            pids.append(proc.pid)
    if run.get("status") == "running" and local and run.get("pid") not in pids and alive(run.get("pid")):
        pids.append(int(run["pid"]))
    return pids


def send(sig: int, trainers: list[int], launcher_pid: int | None) -> None:
    """`sig` to the training processes; to the launcher's process group when there are none here (multi-node:
    the DeepSpeed runner then stops the remote ranks with SIGTERM). SIGKILL always goes to the group."""
    pids = trainers if sig != signal.SIGKILL else []
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    if pids or not launcher_pid:
        return
    try:
        if os.getpgid(launcher_pid) == launcher_pid:  # start_new_session: the launcher leads its own group
            os.killpg(launcher_pid, sig)
        else:
            os.kill(launcher_pid, sig)
    except ProcessLookupError:
        pass
