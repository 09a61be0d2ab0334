"""Stale build locks of DeepSpeed's JIT-compiled ops, found and removed before DeepSpeed starts.

deepspeed.initialize loads ops through torch.utils.cpp_extension.load (on CPU always the shared-memory
comm op `deepspeed_shm_comm`; on CUDA e.g. `fused_adam`), which builds each under
`<torch extensions dir>/<op>/lock`. That lock is a bare file the builder creates and removes; a builder
killed mid-build (kill -9, OOM) leaves it behind and every later load waits on it forever, silently. The
builder keeps the file open while it builds, so a lock that no process on this host has open is stale.
On a network filesystem a build on another host sharing the folder is invisible here, so there a lock
counts as stale only once it is older than NETWORK_STALE_S. While a live builder holds a lock, this waits
and says for what (every REPORT_S seconds).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

NETWORK_STALE_S = 900.0
REPORT_S = 30.0
SETTLE_S = 0.5  # a holder between closing and removing the lock has finished by then
NETWORK_FS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "lustre",
    "gpfs",
    "beegfs",
    "ceph",
    "cephfs",
    "glusterfs",
    "fuse.glusterfs",
    "fuse.sshfs",
    "fuse.s3fs",
    "afs",
    "panfs",
    "wekafs",
}


def extensions_dir() -> Path:
    """Where torch.utils.cpp_extension builds ops: TORCH_EXTENSIONS_DIR, else <cache>/<py tag>_<accelerator tag>."""
    import torch
    from torch.utils.cpp_extension import get_default_build_root

    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        return Path(os.environ["TORCH_EXTENSIONS_DIR"])
    if torch.version.hip is not None:
        accelerator = f"rocm{torch.version.hip.replace('.', '')}"
    elif torch.version.cuda is not None:
        accelerator = f"cu{torch.version.cuda.replace('.', '')}"
    else:
        accelerator = "cpu"
    python = f"py{sys.version_info.major}{sys.version_info.minor}{getattr(sys, 'abiflags', '')}"
    return Path(get_default_build_root()) / f"{python}_{accelerator}"


def _holders(lock: Path) -> list[str]:
    """Processes on this host that have `lock` open ('pid N: command')."""
    import psutil

    target = os.path.realpath(lock)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(f.path == target for f in proc.open_files()):
                found.append(f"pid {proc.pid}: {' '.join(proc.info['cmdline'] or [])[:200]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _on_network_fs(path: Path) -> bool:
    import psutil

    real, best, fstype = os.path.realpath(path), "", ""
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint.rstrip("/") + "/"
        if (real + "/").startswith(mount) and len(mount) > len(best):
            best, fstype = mount, part.fstype
    return fstype.lower() in NETWORK_FS


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _clear(lock: Path, network: bool, poll_s: float, report_s: float) -> bool:
    """Wait while a live builder holds `lock`; remove it once stale. True when this removed it."""
    started, last_report = time.monotonic(), None
    while True:
        inode = _inode(lock)
        if inode is None:
            return False
        holders = _holders(lock)
        age = time.time() - lock.stat().st_mtime if lock.exists() else 0.0
        if not holders and (not network or age > NETWORK_STALE_S):
            time.sleep(SETTLE_S)
            if _inode(lock) == inode and not _holders(lock):
                try:
                    lock.unlink()
                except FileNotFoundError:
                    return False
                log.warning(
                    "removed the stale build lock %s (%.0f s old, no process has it open: a build of DeepSpeed "
                    "op %r was killed); DeepSpeed builds or loads the op again",
                    lock,
                    age,
                    lock.parent.name,
                )
                return True
            continue
        if last_report is None or time.monotonic() - last_report >= report_s:
            last_report = time.monotonic()
            why = (
                ("held by " + "; ".join(holders))
                if holders
                else (
                    f"no process on this host has it open, but it is on a network filesystem "
                    f"(a build on another host?); "
                    f"it counts as stale {NETWORK_STALE_S - age:.0f} s from now, or delete it if no host is building"
                )
            )
            log.warning(
                "waiting %.0f s so far for the build lock of DeepSpeed op %r, %s (%s)",
                time.monotonic() - started,
                lock.parent.name,
                lock,
                why,
            )
        time.sleep(poll_s)


def clear_stale_build_locks(
    root: str | Path | None = None, poll_s: float = 0.5, report_s: float = REPORT_S
) -> list[Path]:
    """Remove every stale `<root>/<op>/lock` (root: extensions_dir()), waiting for live builds; the removed locks."""
    root = Path(root) if root is not None else extensions_dir()
    locks = sorted(root.glob("*/lock")) if root.is_dir() else []
    if not locks:
        return []
    network = _on_network_fs(root)
    return [lock for lock in locks if _clear(lock, network, poll_s, report_s)]
