"""RunHandle: a pretraining run seen through its output folder (run_dir.RunDir) and its processes.

The handle only reads what the run writes, so a run outlives the kernel that launched it and
pretraining.attach(output_dir) picks it up again. A kernel interrupt while following sends SIGINT to the
training processes: each finishes its current optimiser step, writes a resume point under
checkpoints/resume/ and exits; `launch(plan, resume=True)` continues from there.
"""

from __future__ import annotations

import shlex
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from . import processes
from .resume import resume_point
from .run_dir import LogReader, MetricsReader, RunDir, file_id

TERMINAL = ("finished", "interrupted", "failed", "diverged")
REMOTE_STALE_S = 600  # a rank 0 on another host counts as alive while run.json changed within 10 minutes


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


class RunHandle:
    """A pretraining run in an output directory: status, metrics, follow (progress + live plot), stop, wait."""

    def __init__(
        self,
        output_dir: str | Path,
        process: subprocess.Popen | None = None,
        live: bool = True,
        poll_s: float = 1.0,
        log_offset: int | None = None,
    ):
        self.output_dir = Path(output_dir).resolve()
        self.run_dir = RunDir(self.output_dir)
        self.process = process
        self.live, self.poll_s = live, poll_s
        self._metrics = MetricsReader(self.run_dir.metrics_csv)
        self._new_log = LogReader(self.run_dir.train_log, log_offset)  # offset None: from the log's end on
        self._steps: list[int] | None = None

    def __repr__(self) -> str:
        return f"RunHandle({str(self.output_dir)!r}) -> {self.status()}"

    # -- what the run wrote
    @property
    def log_path(self) -> Path:
        return self.run_dir.train_log

    def launch_info(self) -> dict:
        """launch.json: the launcher's pid, command, host and start time ({} if not launched by launch())."""
        return self.run_dir.launch_info()

    def metrics(self) -> pd.DataFrame:
        """metrics.csv as a DataFrame (one row per optimiser step so far; the last row wins for a repeated step)."""
        return self._metrics.read().copy()

    def log(self, n: int = 30) -> list[str]:
        """The last `n` lines of train.log."""
        return list(self.run_dir.log_tail(n))

    def checkpoints(self) -> list[Path]:
        """Completed stage checkpoints, in stage order."""
        return self.run_dir.stage_checkpoints()

    def last_checkpoint(self) -> Path | None:
        """The newest checkpoint: a resume point under checkpoints/resume/ or a completed stage, whichever is later."""
        candidates = self.run_dir.resume_points() + self.checkpoints()
        return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None

    def _stage_steps(self) -> list[int]:
        """Steps of each stage, from the plan this run was launched (or started) with."""
        if self._steps is None:
            for path in (self.run_dir.launch_plan, self.run_dir.plan_json):
                try:
                    plan = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
                    self._steps = [int(s.get("steps", 0)) for s in plan.get("stages", [])]
                    break
                except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError):
                    continue
        return self._steps or []

    # -- processes
    def launcher_alive(self) -> bool:
        """Whether the process launch() started (this Python's Popen, else launch.json's pid) still runs."""
        if self.process is not None:
            return self.process.poll() is None
        info = self.launch_info()
        if info.get("pid") and info.get("host", socket.gethostname()) == socket.gethostname():
            return processes.alive(info["pid"], info.get("create_time"))
        return False

    def trainer_alive(self, run: dict) -> bool:
        """run.json's pid is alive; for a rank 0 on another host, run.json was updated within REMOTE_STALE_S."""
        host = run.get("host")
        if host and host != socket.gethostname():
            try:
                return time.time() - self.run_dir.run_json.stat().st_mtime < REMOTE_STALE_S
            except OSError:
                return False
        return processes.alive(run.get("pid"))

    def is_alive(self) -> bool:
        """The launcher, or a trainer that run.json says is running, still runs."""
        run = self.run_dir.run_status() or {}
        return self.launcher_alive() or (run.get("status") == "running" and self.trainer_alive(run))

    def status(self) -> RunState:
        """The run's state from run.json, checked against its processes ('failed' + log tail if they died)."""
        run = self.run_dir.run_status()
        if run is not None and self.launch_info().get("previous_run_json") == file_id(self.run_dir.run_json):
            run = None  # still the file of an earlier run: this launch's trainer has not written its own yet
        launcher_alive = self.launcher_alive()
        total = sum(self._stage_steps())
        if run is not None:
            status, message = run.get("status", "running"), run.get("message", "")
            fields = dict(
                global_step=int(run.get("global_step", 0)),
                total_steps=int(run.get("total_steps") or total),
                stage=int(run.get("stage", 0)),
                pid=run.get("pid"),
                updated=run.get("updated"),
            )
            if status == "running" and not launcher_alive and not self.trainer_alive(run):
                run = self.run_dir.run_status() or run  # it may have finished just before exiting
                status, message = run.get("status", "running"), run.get("message", "")
                fields["global_step"] = int(run.get("global_step", fields["global_step"]))
            if status == "running" and not launcher_alive and not self.trainer_alive(run):
                rc = self.process.returncode if self.process is not None else None
                status = "failed"
                message = f"the training process (pid {run.get('pid')}) ended without finishing" + (
                    f", exit code {rc}" if rc is not None else ""
                )
            tail = self.run_dir.log_tail() if status in ("failed", "diverged") else ()
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
        return RunState(
            "failed",
            step,
            total,
            message=f"the process ended (exit code {rc}) before writing run.json",
            log_tail=self.run_dir.log_tail(),
        )

    def _send(self, sig: int) -> None:
        """`sig` to the local training processes, else to the launcher's process group (see processes.send)."""
        launcher_alive = self.launcher_alive()
        launcher = self.process.pid if self.process is not None else self.launch_info().get("pid")
        run = self.run_dir.run_status() or {}
        local = run.get("host", socket.gethostname()) == socket.gethostname()
        trainers = (
            processes.trainer_pids(launcher if launcher_alive else None, run, local) if sig != signal.SIGKILL else []
        )
        processes.send(sig, trainers, launcher if launcher_alive else None)

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_alive():
                return True
            time.sleep(min(0.2, self.poll_s))
        return not self.is_alive()

    def stop(self, timeout: float = 120.0, kill_after: float = 30.0) -> RunState:
        """Stop cleanly: SIGINT (finish the step, write a resume point, exit); after `timeout` s SIGTERM (the
        trainer aborts, keeping the last resume point); after `kill_after` s more SIGKILL to the process group."""
        if not self.is_alive():
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

    def follow(self, live: bool | None = None, stop_on_interrupt: bool = True, redraw_s: float = 3.0) -> RunState:
        """Block until the run ends, showing a progress bar over global steps, new train.log lines and (in a
        notebook, when `live`) a loss and tokens/s plot redrawn in place. A kernel interrupt (KeyboardInterrupt)
        stops the run cleanly (see stop()) and says where its last checkpoint is and how to resume."""
        from .live import FollowView

        state = self.status()
        view = FollowView(
            self.output_dir.name, state.total_steps, state.global_step, self.live if live is None else live, redraw_s
        )
        try:
            while True:
                view.write(self._new_log.new_lines())
                state = self.status()
                view.update(state.total_steps, state.global_step, self.metrics(), done=state.done)
                if state.done or state.status == "not started":
                    state = self._reap(state)
                    view.write(self._new_log.new_lines())
                    break
                time.sleep(self.poll_s)
        except KeyboardInterrupt:
            if not stop_on_interrupt:
                raise
            view.close()
            print(
                "[launch] interrupted: stopping the run (it finishes the current step and writes a resume point; "
                "interrupt again to abort at once) ...",
                flush=True,
            )
            try:
                state = self.stop()
            except KeyboardInterrupt:  # a second interrupt: the trainer aborts, its last resume point stays
                print("[launch] second interrupt: aborting the run now", flush=True)
                self._send(signal.SIGTERM)
                self._wait_gone(30.0)
                state = self.status()
            view.redraw(self.metrics(), force=True)
        finally:
            view.close()
        self._report(state)
        return state

    def _report(self, state: RunState) -> None:
        """After follow(): nothing for a finished run (run_summary(handle) says it in one line); for one that
        stopped early, that line, its last checkpoint and how to resume."""
        if state.status == "finished":
            return
        from .live import run_summary

        print(f"[launch] {run_summary(self)}", flush=True)
        ckpt = self.last_checkpoint()
        print(f"[launch] last checkpoint: {ckpt}" if ckpt else "[launch] no checkpoint was written", flush=True)
        if resume_point(self.output_dir) is not None:
            info = self.launch_info()
            cmd = [*info.get("cmd", []), *([] if "--resume" in info.get("cmd", []) else ["--resume"])]
            shell = (
                f"cd {shlex.quote(info['cwd'])} && {shlex.join(cmd)}"
                if info.get("cwd") and len(cmd) > 1
                else f"obert pretrain --plan {self.run_dir.launch_plan} --output {self.output_dir} --resume"
            )
            print(f"[launch] continue with pretraining.launch(plan, resume=True), or in a shell: {shell}", flush=True)
