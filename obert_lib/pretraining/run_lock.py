"""One pretraining run per output folder: `<output_dir>/run.lock`, held for the run's life.

The lock is an exclusive `flock` on the file, which the kernel releases when the holder exits however it
ends (kill -9 included), so a lock left by a dead run is stale by construction and is taken over; the file
names the holder (pid, host, start, command) for the error a second run gets. Under the DeepSpeed
launcher only rank 0 takes it. Where the filesystem refuses flock, the pid in the file decides instead.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from ..config import UserError
from ..paths import check_output_dir
from .processes import alive
from .run_dir import RunDir

log = logging.getLogger(__name__)


class LiveRunError(UserError):
    """The output folder holds a live pretraining run (another process holds its run.lock)."""


def _record(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 65536, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _describe(holder: dict) -> str:
    text = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
    return text + (f": {holder['command']}" if holder.get("command") else "")


def _live_error(out: Path, holder: dict) -> LiveRunError:
    pid = holder.get("pid", "PID")
    return LiveRunError(
        f"output folder {out} is in use by a live pretraining run ({_describe(holder)}); "
        f"wait for it to end, stop it (kill -INT {pid}: it writes a resume point and exits), or choose "
        f"another output folder (--output / output_dir)"
    )


def _flock(fd: int) -> bool | None:
    """True: locked; False: another process holds it; None: this filesystem does not support flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise


def _pid_alive(holder: dict) -> bool:
    """Whether the holder recorded in the file still runs (on another host: assume so)."""
    if not holder.get("pid") or holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        return False
    if holder.get("host", socket.gethostname()) != socket.gethostname():
        return True
    return alive(holder["pid"])


class RunLock:
    """The lock of one output folder: `with RunLock(out):` or acquire()/release(); LiveRunError when taken."""

    def __init__(self, output_dir: str | Path):
        self.output_dir = Path(output_dir)
        self.path = RunDir(self.output_dir).lock
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        check_output_dir(self.output_dir, "output_dir")  # a file, or a path inside one, is a one-line error
        self.output_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            locked = _flock(fd)
            previous = _record(fd)
            if locked is False or (locked is None and _pid_alive(previous)):
                raise _live_error(self.output_dir.resolve(), previous)
        except BaseException:
            os.close(fd)
            raise
        if previous.get("pid"):
            log.warning(
                "%s: taking over the lock of a run that ended without releasing it (%s)", self.path, _describe(previous)
            )
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode("utf-8"), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)  # an empty file: released cleanly, nothing to take over
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        except OSError:
            pass
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False


def holder(output_dir: str | Path) -> dict | None:
    """Who holds the lock of `output_dir` ({pid, host, started, command}), or None when nobody does."""
    path = RunDir(output_dir).lock
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        locked = _flock(fd)
        record = _record(fd)
        if locked:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        if locked is None:
            return record if _pid_alive(record) else None
        return record or {"pid": "?"}
    finally:
        os.close(fd)
