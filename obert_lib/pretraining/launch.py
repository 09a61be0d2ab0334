"""Start, watch, stop and re-attach to a pretraining run from a notebook cell.

`launch(plan)` runs the same entry point as `obert pretrain --plan PLAN --output DIR [--resume]` in a
subprocess: a single process (CPU or one GPU), or the DeepSpeed launcher around it for several GPUs or
a hostfile. The notebook only reads what the run writes into the plan's output_dir, so a run outlives
the kernel and `attach(output_dir)` picks it up again:

    run.json       status (running/finished/interrupted/failed/diverged), pid, global_step, total_steps, stage
    metrics.csv    one row per optimiser step (global_step, stage, stage_name, loss, tokens_per_s, ...)
    train.log      the subprocess's stdout and stderr, appended by every launch
    launch.json    the launcher's pid, command and start time (written here)
    launch_plan.yaml  the resolved plan the subprocess was started with (written here)

A kernel interrupt while following sends SIGINT to the training processes: each finishes its current
optimiser step, writes a resume point under checkpoints/resume/ and exits; `launch(plan, resume=True)`
continues from there.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from .. import config as cfgmod
from .plan import PretrainConfig, SpeedConfig, load_plan, validate

RUN_FILE, METRICS_FILE, LOG_FILE = "run.json", "metrics.csv", "train.log"
LAUNCH_FILE, PLAN_FILE = "launch.json", "launch_plan.yaml"
TERMINAL = ("finished", "interrupted", "failed", "diverged")
ACTIVE = ("starting", "running")
# torch.distributed settings of this process (a notebook that ran pretraining.run in-process holds MASTER_PORT)
_DIST_ENV = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE")
_PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+")  # a tqdm bar redrawn with '\r' in the log
_PROCESSES: dict[str, subprocess.Popen] = {}  # launched from this Python process, by resolved output_dir


class RunningError(RuntimeError):
    """The output directory already holds a live run."""


class RunFailedError(RuntimeError):
    """launch(wait=True) saw the run fail; `.handle` is its RunHandle (status, log, metrics)."""

    def __init__(self, message: str, handle: "RunHandle"):
        super().__init__(message)
        self.handle = handle


@dataclass(frozen=True)
class RunState:
    """What run.json says, checked against the processes: `status` is one of
    starting | running | finished | interrupted | failed | diverged | not started."""

    status: str
    global_step: int = 0
    total_steps: int = 0
    stage: int = 0
    message: str = ""
    pid: int | None = None
    updated: str | None = None
    log_tail: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def __str__(self) -> str:
        text = f"{self.status}: step {self.global_step}/{self.total_steps}"
        if self.stage:
            text += f", stage {self.stage}"
        if self.message:
            text += f" ({self.message})"
        if self.log_tail:
            text += "\nlast lines of train.log:\n" + "\n".join(f"  {line}" for line in self.log_tail)
        return text


# ---------------------------------------------------------------------------------------------- helpers


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _file_id(path: Path) -> list[int] | None:
    """(inode, mtime in ns): changes whenever the trainer replaces the file (temp file + rename)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_ino, st.st_mtime_ns]


def _alive(pid: int | None, create_time: float | None = None) -> bool:
    """Whether `pid` runs (not a zombie) and, when given, started at `create_time` (so a reused pid is not it)."""
    import psutil

    if not pid:
        return False
    try:
        proc = psutil.Process(int(pid))
        if create_time is not None and abs(proc.create_time() - float(create_time)) > 1.0:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _log_lines(text: str, keep_bars: bool) -> list[str]:
    """Complete log lines; of a tqdm bar redrawn with '\\r' only its last state, or nothing unless keep_bars."""
    out = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p.strip()]
        if not parts:
            continue
        last = parts[-1].rstrip()
        if keep_bars or not _PROGRESS_BAR.search(last):
            out.append(last)
    return out


def _tail(path: Path, n: int = 15) -> tuple[str, ...]:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 64_000))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ()
    return tuple(_log_lines(text, keep_bars=True)[-n:])


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (a display can show images), False in scripts and terminal IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _resolve_plan(plan: PretrainConfig | Mapping[str, Any] | str | Path) -> PretrainConfig:
    if isinstance(plan, PretrainConfig):
        return plan
    if isinstance(plan, Mapping):
        return cfgmod.load(PretrainConfig, plan)
    return load_plan(str(plan))


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


def _world_size(gpus: int | None, hostfile: str | Path | None) -> int:
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


def build_command(plan_file: str | Path, output_dir: str | Path, speed: SpeedConfig, resume: bool = False,
                  gpus: int | None = None, hostfile: str | Path | None = None) -> list[str]:
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
    root = str(Path(__file__).resolve().parents[2])  # obert_lib importable from any cwd, installed or not
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


class _MetricsReader:
    """metrics.csv read incrementally: only complete new lines are parsed on each call."""

    def __init__(self, path: Path):
        self.path = path
        self._reset()

    def _reset(self, inode: int | None = None) -> None:
        self.offset, self.header, self.frame, self.inode = 0, None, pd.DataFrame(), inode

    def read(self) -> pd.DataFrame:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._reset()
            return self.frame
        size = stat.st_size
        # replaced (a resume writes a new file without the rows after its resume point) or truncated: start over
        if stat.st_ino != self.inode or size < self.offset:
            self._reset(stat.st_ino)
        if size > self.offset:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read(size - self.offset)
            end = chunk.rfind(b"\n")
            if end >= 0:
                self.offset += end + 1
                lines = [line for line in chunk[: end + 1].decode("utf-8", "replace").splitlines() if line.strip()]
                if self.header is None and lines:
                    self.header = lines.pop(0)
                lines = [line for line in lines if line != self.header]
                if lines:
                    new = pd.read_csv(io.StringIO("\n".join([self.header, *lines])))
                    self.frame = new if self.frame.empty else pd.concat([self.frame, new], ignore_index=True)
        if self.frame.empty and self.header:
            return pd.DataFrame(columns=self.header.split(","))
        if "global_step" in self.frame:
            return self.frame.drop_duplicates("global_step", keep="last").reset_index(drop=True)
        return self.frame


def _progress_figure(metrics: pd.DataFrame):
    """Loss and tokens/s per optimiser step, one colour per stage (a pyplot-free Figure, for the live view)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.2))
    ax_loss, ax_speed = fig.subplots(1, 2)
    groups = metrics.groupby(["stage", "stage_name"]) if {"stage", "stage_name"} <= set(metrics) else [((1, "run"), metrics)]
    for (stage, name), part in groups:
        ax_loss.plot(part["global_step"], part["loss"], label=f"{stage}: {name}")
        if "tokens_per_s" in part:
            ax_speed.plot(part["global_step"], part["tokens_per_s"], label=f"{stage}: {name}")
    ax_loss.set(title="MLM 损失 loss", xlabel="step")
    ax_speed.set(title="吞吐 tokens/s", xlabel="step")
    ax_loss.legend(loc="upper right")
    fig.tight_layout()
    return fig


class _LiveView:
    """A figure in the cell's output, replaced in place (an IPython display handle) every `every_s` seconds."""

    def __init__(self, every_s: float = 3.0):
        from ..reports import setup_cjk_font

        setup_cjk_font()
        self.every_s, self.handle, self.last, self.rows = every_s, None, 0.0, -1

    def update(self, metrics: pd.DataFrame, force: bool = False) -> None:
        from IPython.display import Image, display

        if metrics.empty or "loss" not in metrics or len(metrics) == self.rows:
            return
        if not force and time.monotonic() - self.last < self.every_s:
            return
        buf = io.BytesIO()
        _progress_figure(metrics).savefig(buf, format="png", dpi=80)
        image = Image(data=buf.getvalue(), format="png")
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
        self.last, self.rows = time.monotonic(), len(metrics)


# ---------------------------------------------------------------------------------------------- handle


class RunHandle:
    """A pretraining run in an output directory: status, metrics, follow (progress + live plot), stop, wait."""

    def __init__(self, output_dir: str | Path, process: subprocess.Popen | None = None, live: bool = True,
                 poll_s: float = 1.0, log_offset: int | None = None):
        self.output_dir = Path(output_dir).resolve()
        self.process = process
        self.live, self.poll_s = live, poll_s
        self._metrics = _MetricsReader(self.output_dir / METRICS_FILE)
        self._log_offset = log_offset
        self._steps: list[int] | None = None

    def __repr__(self) -> str:
        return f"RunHandle({str(self.output_dir)!r}) -> {self.status()}"

    # -- files
    @property
    def log_path(self) -> Path:
        return self.output_dir / LOG_FILE

    def launch_info(self) -> dict:
        """launch.json: the launcher's pid, command, host and start time ({} if not launched by launch())."""
        return _read_json(self.output_dir / LAUNCH_FILE) or {}

    def metrics(self) -> pd.DataFrame:
        """metrics.csv as a DataFrame (one row per optimiser step so far; the last row wins for a repeated step)."""
        return self._metrics.read().copy()

    def log(self, n: int = 30) -> list[str]:
        """The last `n` lines of train.log."""
        return list(_tail(self.log_path, n))

    def checkpoints(self) -> list[Path]:
        """Completed stage checkpoints, in stage order."""
        stages = [p for p in (self.output_dir / "checkpoints").glob("stage-*")
                  if not p.name.endswith(".tmp") and (p / "config.json").is_file()]
        return sorted(stages, key=lambda p: int(p.name.split("-")[1]))

    def last_checkpoint(self) -> Path | None:
        """The newest checkpoint: a resume point under checkpoints/resume/ or a completed stage, whichever is later."""
        resume = [p for p in (self.output_dir / "checkpoints" / "resume").glob("step-*")
                  if p.is_dir() and not p.name.endswith(".tmp")]
        candidates = resume + self.checkpoints()
        return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None

    def _stage_steps(self) -> list[int]:
        """Steps of each stage, from the plan this run was launched (or started) with."""
        if self._steps is None:
            for name in (PLAN_FILE, "plan.json"):
                try:
                    plan = yaml.safe_load((self.output_dir / name).read_text(encoding="utf-8")) or {}
                    self._steps = [int(s.get("steps", 0)) for s in plan.get("stages", [])]
                    break
                except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError):
                    continue
        return self._steps or []

    # -- processes
    def _launcher_alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        info = self.launch_info()
        if info.get("pid") and info.get("host", socket.gethostname()) == socket.gethostname():
            return _alive(info["pid"], info.get("create_time"))
        return False

    def _trainer_alive(self, run: dict) -> bool:
        """run.json's pid is alive; for a rank 0 on another host, run.json was updated within 10 minutes."""
        host = run.get("host")
        if host and host != socket.gethostname():
            try:
                return time.time() - (self.output_dir / RUN_FILE).stat().st_mtime < 600
            except OSError:
                return False
        return _alive(run.get("pid"))

    def _any_alive(self) -> bool:
        run = _read_json(self.output_dir / RUN_FILE) or {}
        return self._launcher_alive() or (run.get("status") == "running" and self._trainer_alive(run))

    def status(self) -> RunState:
        """The run's state from run.json, checked against its processes ('failed' + log tail if they died)."""
        run = _read_json(self.output_dir / RUN_FILE)
        if run is not None and self.launch_info().get("previous_run_json") == _file_id(self.output_dir / RUN_FILE):
            run = None  # still the file of an earlier run: this launch's trainer has not written its own yet
        launcher_alive = self._launcher_alive()
        total = sum(self._stage_steps())
        if run is not None:
            status, message = run.get("status", "running"), run.get("message", "")
            fields = dict(global_step=int(run.get("global_step", 0)), total_steps=int(run.get("total_steps") or total),
                          stage=int(run.get("stage", 0)), pid=run.get("pid"), updated=run.get("updated"))
            if status == "running" and not launcher_alive and not self._trainer_alive(run):
                run = _read_json(self.output_dir / RUN_FILE) or run  # it may have finished just before exiting
                status, message = run.get("status", "running"), run.get("message", "")
                fields["global_step"] = int(run.get("global_step", fields["global_step"]))
            if status == "running" and not launcher_alive and not self._trainer_alive(run):
                rc = self.process.returncode if self.process is not None else None
                status = "failed"
                message = (f"the training process (pid {run.get('pid')}) ended without finishing"
                           + (f", exit code {rc}" if rc is not None else ""))
            tail = _tail(self.log_path) if status in ("failed", "diverged") else ()
            return RunState(status, message=message, log_tail=tail, **fields)
        metrics = self.metrics()
        step = int(metrics["global_step"].max()) if len(metrics) and "global_step" in metrics else 0
        if launcher_alive:
            return RunState("starting", step, total, message="the trainer has not written run.json yet")
        if self.process is None and not self.launch_info():
            return RunState("not started", step, total)
        rc = self.process.returncode if self.process is not None else None
        if rc == 0 or (rc is None and self._stage_steps() and len(self.checkpoints()) == len(self._stage_steps())):
            return RunState("finished", step, total, message="no run.json; the process ended normally")
        return RunState("failed", step, total, message=f"the process ended (exit code {rc}) before writing run.json",
                        log_tail=_tail(self.log_path))

    def _trainer_pids(self) -> list[int]:
        """Local training processes (`python -m obert_lib.cli`), not the DeepSpeed launchers around them."""
        import psutil

        found: list[psutil.Process] = []
        root_pid = self.process.pid if self.process is not None else self.launch_info().get("pid")
        if root_pid and self._launcher_alive():
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
        run = _read_json(self.output_dir / RUN_FILE) or {}
        local = run.get("host", socket.gethostname()) == socket.gethostname()
        if run.get("status") == "running" and local and run.get("pid") not in pids and _alive(run.get("pid")):
            pids.append(int(run["pid"]))
        return pids

    def _send(self, sig: int) -> None:
        """`sig` to the local training processes; to the launcher's process group when there are none here
        (multi-node: the DeepSpeed runner then stops the remote ranks with SIGTERM)."""
        pids = self._trainer_pids() if sig != signal.SIGKILL else []
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if pids:
            return
        pid = self.process.pid if self.process is not None else self.launch_info().get("pid")
        if pid and self._launcher_alive():
            try:
                if os.getpgid(pid) == pid:  # start_new_session: the launcher leads its own group
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._any_alive():
                return True
            time.sleep(min(0.2, self.poll_s))
        return not self._any_alive()

    def stop(self, timeout: float = 120.0, kill_after: float = 30.0) -> RunState:
        """Stop cleanly: SIGINT (finish the step, write a resume point, exit); after `timeout` s SIGTERM (the
        trainer aborts, keeping the last resume point); after `kill_after` s more SIGKILL to the process group."""
        if not self._any_alive():
            return self.status()
        self._send(signal.SIGINT)
        if not self._wait_gone(timeout):
            print(f"[launch] the run did not stop within {timeout:.0f}s; sending SIGTERM", flush=True)
            self._send(signal.SIGTERM)
            if not self._wait_gone(kill_after):
                print("[launch] sending SIGKILL; the last checkpoint stays as it was", flush=True)
                self._send(signal.SIGKILL)
                self._wait_gone(10.0)
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        return self.status()

    def wait(self, timeout: float | None = None) -> RunState:
        """Block (quietly) until the run ends; returns its final state. TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.status()
            if state.done or state.status == "not started":
                return self._reap(state)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.output_dir}: still {state}")
            time.sleep(self.poll_s)

    def _reap(self, state: RunState) -> RunState:
        """Once run.json is final, let our launcher exit (a DeepSpeed launcher waits for every rank)."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
            state = self.status()
        return state

    def _new_log_lines(self) -> list[str]:
        try:
            size = self.log_path.stat().st_size
        except FileNotFoundError:
            return []
        if self._log_offset is None or size < self._log_offset:
            self._log_offset = size
            return []
        if size == self._log_offset:
            return []
        with open(self.log_path, "rb") as fh:
            fh.seek(self._log_offset)
            chunk = fh.read(size - self._log_offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self._log_offset += end + 1
        return _log_lines(chunk[:end].decode("utf-8", "replace"), keep_bars=False)

    def follow(self, live: bool | None = None, stop_on_interrupt: bool = True, redraw_s: float = 3.0) -> RunState:
        """Block until the run ends, showing a progress bar over global steps, new train.log lines and (in a
        notebook, when `live`) a loss and tokens/s plot redrawn in place. A kernel interrupt (KeyboardInterrupt)
        stops the run cleanly (see stop()) and says where its last checkpoint is and how to resume."""
        from tqdm.auto import tqdm

        live = self.live if live is None else live
        view = _LiveView(redraw_s) if live and _in_notebook() else None
        state = self.status()
        bar = tqdm(total=state.total_steps or None, initial=state.global_step, unit="step",
                   desc=f"pretrain {self.output_dir.name}", dynamic_ncols=True)
        try:
            while True:
                for line in self._new_log_lines():
                    bar.write(line)
                state = self.status()
                metrics = self.metrics()
                step = max(state.global_step, int(metrics["global_step"].max()) if len(metrics) else 0)
                if state.total_steps and bar.total != state.total_steps:
                    bar.total = state.total_steps
                if step != bar.n:
                    bar.n = step
                    if len(metrics) and "loss" in metrics:
                        row = metrics.iloc[-1]
                        postfix = {"stage": row.get("stage_name", ""), "loss": f"{row['loss']:.3f}"}
                        if "tokens_per_s" in row:
                            postfix["tok/s"] = f"{row['tokens_per_s']:.0f}"
                        bar.set_postfix(postfix, refresh=False)
                    bar.refresh()
                if view is not None:
                    view.update(metrics, force=state.done)
                if state.done or state.status == "not started":
                    state = self._reap(state)
                    for line in self._new_log_lines():
                        bar.write(line)
                    break
                time.sleep(self.poll_s)
        except KeyboardInterrupt:
            if not stop_on_interrupt:
                raise
            bar.close()
            print("[launch] interrupted: stopping the run (it finishes the current step and writes a resume point; "
                  "interrupt again to abort at once) ...", flush=True)
            try:
                state = self.stop()
            except KeyboardInterrupt:  # a second interrupt: the trainer aborts, its last resume point stays
                print("[launch] second interrupt: aborting the run now", flush=True)
                self._send(signal.SIGTERM)
                self._wait_gone(30.0)
                state = self.status()
            if view is not None:
                view.update(self.metrics(), force=True)
        finally:
            bar.close()
        self._report(state)
        return state

    def _report(self, state: RunState) -> None:
        print(f"[launch] {self.output_dir}: {state}", flush=True)
        if state.status == "finished":
            return
        from .trainer import resume_point

        ckpt = self.last_checkpoint()
        print(f"[launch] last checkpoint: {ckpt}" if ckpt else "[launch] no checkpoint was written", flush=True)
        if resume_point(self.output_dir) is not None:
            info = self.launch_info()
            cmd = [*info.get("cmd", []), *([] if "--resume" in info.get("cmd", []) else ["--resume"])]
            shell = f"cd {shlex.quote(info['cwd'])} && {shlex.join(cmd)}" if info.get("cwd") and len(cmd) > 1 else \
                f"obert pretrain --plan {self.output_dir / PLAN_FILE} --output {self.output_dir} --resume"
            print(f"[launch] continue with pretraining.launch(plan, resume=True), or in a shell: {shell}", flush=True)


# ---------------------------------------------------------------------------------------------- entry points


def _active_run(out: Path) -> str | None:
    """Why `out` holds a live run, or None."""
    own = _PROCESSES.get(str(out))
    if own is not None and own.poll() is None:
        return f"launched from this Python process, pid {own.pid}"
    handle = RunHandle(out)
    run = _read_json(out / RUN_FILE)
    if run and run.get("status") == "running" and handle._trainer_alive(run):
        return f"run.json says running and its process {run.get('pid')} is alive"
    if handle._launcher_alive():
        return f"its launcher (pid {handle.launch_info().get('pid')}) is alive"
    from .run_lock import holder

    lock = holder(out)
    if lock is not None:  # e.g. an `obert pretrain` started in a shell
        return f"a run holds its run.lock: pid {lock.get('pid')} on {lock.get('host')}, started {lock.get('started')}"
    return None


def launch(plan: PretrainConfig | Mapping[str, Any] | str | Path, speed: SpeedConfig | Mapping[str, Any] | None = None, *,
           resume: bool = False, gpus: int | None = None, hostfile: str | Path | None = None, wait: bool = True,
           live: bool = True, poll_s: float = 1.0) -> RunHandle:
    """Start `obert pretrain` on `plan` in a subprocess writing into plan.output_dir; returns its RunHandle.

    plan: a PretrainConfig, a dict, a preset name or a YAML path. speed: SpeedConfig or dict (speed-only).
    One process (CPU, or one GPU) unless gpus > 1 or a hostfile is given: then the DeepSpeed launcher
    starts gpus (per host, with a hostfile) or the hostfile's slots processes, and speed.data_parallel_size
    is set to that count. resume=True continues the run in output_dir from its latest resume point.
    wait=True follows the run (progress bar, log lines, live plot when `live`) until it ends and raises
    RunFailedError if it failed; a kernel interrupt stops it cleanly. wait=False returns at once.
    Refuses (RunningError) when output_dir holds a live run: follow that one with attach(output_dir).
    """
    cfg = _resolve_plan(plan)
    speed_cfg = cfgmod.load(SpeedConfig, speed)
    world = _world_size(gpus, hostfile)
    if speed_cfg.data_parallel_size != world:
        if speed_cfg.data_parallel_size != 1:
            raise cfgmod.ConfigError(f"speed.data_parallel_size: {speed_cfg.data_parallel_size} but launch starts {world} "
                                     f"process(es) (gpus={gpus}, hostfile={hostfile}); leave it out or make them equal")
        speed_cfg = dataclasses.replace(speed_cfg, data_parallel_size=world)
    import torch

    validate(cfg, speed_cfg, torch.cuda.is_available() or hostfile is not None or gpus is not None)
    out = Path(cfg.output_dir).resolve()
    reason = _active_run(out)
    if reason:
        raise RunningError(f"{out} already holds a running pretraining run ({reason}); follow it with "
                           f"pretraining.attach({str(out)!r}), or stop it with "
                           f"pretraining.attach({str(out)!r}, wait=False).stop() before starting another")
    from .trainer import resume_point

    if resume and resume_point(out) is None:
        raise FileNotFoundError(f"resume: no resume point under {out}/checkpoints/resume; launch without resume=True")
    out.mkdir(parents=True, exist_ok=True)
    plan_file = out / PLAN_FILE
    plan_file.write_text(yaml.safe_dump(cfgmod.to_dict(cfg), allow_unicode=True, sort_keys=False), encoding="utf-8")
    cmd = build_command(plan_file, cfg.output_dir, speed_cfg, resume, gpus, hostfile)
    previous = _file_id(out / RUN_FILE)  # an earlier run's run.json, until the new trainer replaces it
    with open(out / LOG_FILE, "ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%dT%H:%M:%S')} launch: {shlex.join(cmd)}\n".encode())
        log.flush()
        offset = log.tell()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=os.getcwd(),
                                env=_child_env(), start_new_session=True)
    _PROCESSES[str(out)] = proc
    try:
        import psutil

        create_time = psutil.Process(proc.pid).create_time()
    except Exception:  # noqa: BLE001 - the process may already be gone; liveness then falls back to the pid
        create_time = None
    _write_json_atomic(out / LAUNCH_FILE, {"pid": proc.pid, "create_time": create_time, "host": socket.gethostname(),
                                           "cmd": cmd, "cwd": os.getcwd(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                           "previous_run_json": previous, "resume": resume, "world_size": world,
                                           "plan_file": str(plan_file), "log_offset": offset})
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
    if not (out / RUN_FILE).is_file() and not (out / LAUNCH_FILE).is_file():
        raise FileNotFoundError(f"{out} holds no run (no {RUN_FILE} or {LAUNCH_FILE}); start one with pretraining.launch(plan)")
    own = _PROCESSES.get(str(out))
    handle = RunHandle(out, process=own, live=live, poll_s=poll_s)
    if wait and handle._any_alive():
        for line in handle.log(10):
            print(line)
        handle._log_offset = None  # from the end of the log on
        handle.follow()
    return handle


# ---------------------------------------------------------------------------------------------- plan plot


def plot_plan(plan: PretrainConfig | Mapping[str, Any] | str | Path):
    """Sequence length, global batch and mask-strategy shares against the global step, stages shaded."""
    import matplotlib.pyplot as plt

    from ..masking.strategies import STRATEGIES
    from ..reports import setup_cjk_font

    cfg = _resolve_plan(plan)
    setup_cjk_font()
    fig, (ax_len, ax_batch, ax_mix) = plt.subplots(3, 1, figsize=(10, 6.5), sharex=True,
                                                    gridspec_kw={"height_ratios": [1, 1, 1.4]})
    xs, seq, batch, shares = [], [], [], []  # segment edges: (start, end) global steps with constant settings
    start, total = 0, sum(stage.steps for stage in cfg.stages)
    for i, stage in enumerate(cfg.stages):
        changes = sorted({0, *(e.from_step for e in stage.mask.schedule if 0 < e.from_step < stage.steps)})
        for a, b in zip(changes, [*changes[1:], stage.steps]):
            xs += [start + a, start + b]
            seq += [stage.seq_len] * 2
            batch += [stage.global_batch] * 2
            shares += [stage.mask.mixture_at(a)] * 2
        for ax in (ax_len, ax_batch, ax_mix):
            ax.axvspan(start, start + stage.steps, color="0.92" if i % 2 == 0 else "0.84", zorder=0)
        label = f"{i + 1}: {stage.name}" if stage.steps >= 0.15 * total else f"{i + 1}"  # narrow stage: its number
        ax_len.text(start + stage.steps / 2, 1.02, label, transform=ax_len.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=9)
        start += stage.steps
    ax_len.plot(xs, seq, color="C0")
    ax_len.set(ylabel="序列长度 seq len", ylim=(0, max(seq) * 1.15))
    ax_batch.plot(xs, batch, color="C1")
    ax_batch.set(ylabel="全局批量 batch", ylim=(0, max(batch) * 1.15))
    names = [s for s in STRATEGIES if any(s in m for m in shares)]
    ax_mix.stackplot(xs, [[m.get(s, 0.0) for m in shares] for s in names], labels=names, alpha=0.85)
    ax_mix.set(ylabel="掩码策略占比 mask mix", xlabel="global step", ylim=(0, 1), xlim=(0, start))
    ax_mix.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    stages = "   ".join(f"{i + 1}: {stage.name} ({stage.steps:,} steps)" for i, stage in enumerate(cfg.stages))
    fig.suptitle(f"分阶段预训练计划 staged pretraining plan\n{stages}", y=1.0, fontsize=10)
    fig.tight_layout()
    return fig
