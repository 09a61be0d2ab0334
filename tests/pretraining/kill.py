"""Kill a `obert pretrain` subprocess with SIGKILL once its resume point reaches a step (the exact-resume tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

LAUNCHER_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT", "MASTER_ADDR")


def run_and_kill(args: list[str], out: Path, global_step: int, timeout_s: float = 300) -> None:
    """Start `args` (an `obert pretrain` command writing into `out`) and SIGKILL it once its latest resume point
    is at `global_step` or later; fails when the run ends first."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_ENV}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = out / "checkpoints" / "resume" / "latest.json"
    deadline = time.time() + timeout_s
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and json.loads(latest.read_text())["global_step"] >= global_step:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
