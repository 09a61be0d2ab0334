"""SIGINT/SIGTERM during a pretraining run: stop at once while nothing is being written, else after the step.

Before the first step (loading, DeepSpeed start-up) and between stages nothing needs finishing, so a signal
ends the run at once (StopRun). During training it is deferred: the step finishes, a resume point is
written, the run ends. A deferred stop not honoured within `grace_s` (a hung step or collective) is forced:
the signal is raised again (StopRun at the next Python instruction), and if even that does not end the
run within FORCE_S more, `on_abort` records the stop and the process exits with EXIT_INTERRUPTED.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

EXIT_INTERRUPTED = 3  # `obert pretrain` exit status of a stopped run (resume with --resume)
EXIT_DIVERGED = 4  # `obert pretrain` exit status of a run the divergence guard stopped (guards.TrainingDiverged)
FORCE_S = 30.0
log = logging.getLogger(__name__)


class StopRun(BaseException):
    """The run stops now (not an Exception, so no library's `except Exception` swallows it)."""

    def __init__(self, signum: int, reason: str):
        super().__init__(f"stopped by signal {signum} {reason}")
        self.signum, self.reason = signum, reason


class StopRequest:
    """Installs SIGINT/SIGTERM handlers (main thread only) for a `with` block; see the module docstring."""

    def __init__(self, grace_s: float = 120.0, on_abort=None):
        self.signal: int | None = None
        self.grace_s, self.on_abort = grace_s, on_abort
        self.previous: dict = {}
        self._deferred = False
        self._honoured = threading.Event()
        self._timer: threading.Timer | None = None
        self._forced = False  # the watchdog raised the signal again

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> bool:
        self.honour()
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False

    def _handle(self, signum, frame):
        if self.signal is not None:  # a second signal (or the watchdog's): stop now, the last resume point stays
            why = f"and not honoured within {self.grace_s:.0f} s" if self._forced else f"and then by signal {signum}"
            raise StopRun(self.signal, f"{why}: stopped at once; the last resume point stays as it was")
        self.signal = signum
        if not self._deferred:
            raise StopRun(signum, "while nothing was being trained or written: stopped at once")
        log.warning(
            "signal %d: stopping after this step (a resume point is written); signal again to stop at once", signum
        )
        self._timer = threading.Timer(self.grace_s, self._overdue)
        self._timer.daemon = True
        self._timer.start()

    def _overdue(self) -> None:
        """The deferred stop was not honoured within grace_s: raise it again, then, FORCE_S later, exit."""
        if self._honoured.is_set():
            return
        log.error(
            "the stop requested by signal %s was not honoured within %.0f s (a hung step?); stopping at once",
            self.signal,
            self.grace_s,
        )
        self._forced = True
        os.kill(os.getpid(), self.signal)
        if self._honoured.wait(FORCE_S):
            return
        message = (
            f"stopped by signal {self.signal}: not honoured within {self.grace_s + FORCE_S:.0f} s, the "
            "process exited at once; the last resume point stays as it was"
        )
        try:
            if self.on_abort is not None:
                self.on_abort(message)
        finally:
            os._exit(EXIT_INTERRUPTED)

    def defer(self, on: bool) -> None:
        """While on, a signal waits for the step to end (the training loop checks `signal`); off: it stops at once."""
        self._deferred = on

    def check(self) -> None:
        """Raise StopRun for a signal that arrived in a deferred block and was not acted on there."""
        if self.signal is not None:
            raise StopRun(self.signal, "between steps: stopped")

    def honour(self) -> None:
        """The stop is being acted on (a resume point is being written): the watchdog stands down."""
        self._honoured.set()
        if self._timer is not None:
            self._timer.cancel()

    def agree(self, device) -> None:
        """Make the stop decision collective: if any rank was signalled, all ranks stop after this step."""
        import torch
        import torch.distributed as dist

        if dist.is_initialized() and dist.get_world_size() > 1:
            flag = torch.tensor([0 if self.signal is None else int(self.signal)], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            self.signal = int(flag.item()) or None
