"""Corpus worker processes: loading what they need once before they start, and ending them with their parent.

A stage's tasks run in datatrove executors: local (a pool of processes), Ray or Slurm. resolve_start_method
turns start_method "auto" into fork or forkserver; prepare_workers loads the pipeline and jieba's tables
before the local workers start; forked_children_die_with_parent ends the
helper processes a stage forks when the run is killed; the local executor logs to files unless progress is on.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
import threading
from pathlib import Path

from tqdm import std as tqdm_std

from ..compat import cache_loguru_lib_dirs
from .config import CorpusRuntime


def _quiet_local_executor_class():
    from datatrove.executor import LocalPipelineExecutor

    class QuietLocalPipelineExecutor(LocalPipelineExecutor):
        """datatrove's local executor whose tasks log to their files only (stderr gets errors).

        datatrove uses `local_rank` only to choose the console log level (INFO for 0, ERROR otherwise).
        """

        def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
            from loguru import logger

            try:
                return super()._run_for_rank(rank, 1, node_rank)
            finally:
                if self.workers > 1:  # a pool process: drop the console handler datatrove re-adds after each task
                    logger.remove()

    return QuietLocalPipelineExecutor


def _fresh_tqdm_lock_after_fork() -> None:
    """In a forked worker, give tqdm a fresh lock (tqdm.set_lock): a parent thread (tqdm's monitor) may have held
    the inherited one at the fork, and nothing in this process would ever release it.

    The fresh lock is a thread lock only: bars drawn in a worker no longer wait for the parent's (corpus workers
    draw none; datatrove's readers create disabled ones, which take the lock).
    """
    tqdm_std.tqdm.set_lock(threading.RLock())


os.register_at_fork(after_in_child=_fresh_tqdm_lock_after_fork)


def prepare_fork_workers(start_method: str) -> None:
    """Before a pool forks: create tqdm's locks in the parent, so that workers share them instead of each
    creating a multiprocessing semaphore that is never released (resource_tracker's "leaked semaphore")."""
    if start_method == "fork":
        tqdm_std.tqdm.get_lock()


# A shared library of an OpenMP runtime: GNU (libgomp, which torch loads), Intel (libiomp5), LLVM (libomp).
# A forked child that enters an OpenMP region its parent already ran waits forever for the parent's pool.
OPENMP_LIBRARY = re.compile(r"/lib(?:g|i)?omp[0-9]*(?:-[0-9a-f]+)?\.so")


def openmp_runtime_loaded(maps: str) -> bool:
    """Whether the text of /proc/<pid>/maps `maps` maps an OpenMP runtime library (OPENMP_LIBRARY)."""
    return OPENMP_LIBRARY.search(maps) is not None


def fork_is_safe() -> bool:
    """Whether forking this process for workers is safe: Linux (its /proc tells what is loaded), no Python
    thread but this one (a thread holding a lock at the fork leaves it held in the child forever) and no
    OpenMP runtime loaded. Threads that libraries start in C (OpenBLAS, Arrow, jemalloc) are not counted:
    those libraries reset them in the child (pthread_atfork)."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            return not openmp_runtime_loaded(fh.read())
    except OSError:
        return False


def resolve_start_method(start_method: str) -> str:
    """CorpusRuntime.start_method as the workers will start: "auto" is fork where fork_is_safe, else forkserver."""
    if start_method != "auto":
        return start_method
    return "fork" if fork_is_safe() else "forkserver"


WORKER_PRELOAD = "obert_lib.corpus.worker_preload"
SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # for the forkserver and its workers


def prepare_workers(workers: int, start_method: str, wait: bool = False) -> None:
    """Load what corpus workers need once, before any starts; call it first, so that it overlaps the parent's own
    preparation.

    One worker runs in this process and forked workers copy it: the pipeline modules and jieba's tables
    (worker_preload) are loaded here. With forkserver, the server starts now and imports worker_preload
    while this process goes on, and every worker of every stage forks from it; `wait` returns only once
    it has (the benchmark, whose clock must not time that loading for 2 workers as it does not for 1).
    spawn shares nothing.
    """
    cache_loguru_lib_dirs()
    if workers <= 1 or start_method == "fork":
        importlib.import_module(WORKER_PRELOAD)
        prepare_fork_workers(start_method)
    elif start_method == "forkserver":
        from multiprocess import forkserver  # datatrove's pools come from `multiprocess`, not multiprocessing

        forkserver.set_forkserver_preload(["__main__", WORKER_PRELOAD])  # "__main__" is the default preload; kept
        # Workers do no BLAS; numpy's OpenBLAS would otherwise start a thread per worker that spins after
        # each numpy call, taking CPU from the other workers (1.4% of the samples of a 1-worker run under perf).
        saved = {k: os.environ.get(k) for k in SINGLE_THREAD_ENV}
        os.environ.update(SINGLE_THREAD_ENV)
        try:
            forkserver.ensure_running()  # the server inherits this environment; no effect when it already runs
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key)
                else:
                    os.environ[key] = value
        if wait:  # the server forks only once its preload is done: one no-op worker shows that it is
            import multiprocess

            probe = multiprocess.get_context("forkserver").Process(target=os.getpid)
            probe.start()
            probe.join()


def stage_executor(runtime: CorpusRuntime, pipeline: list, logging_dir: Path, tasks: int, name: str, depends=None):
    """The configured datatrove executor for one stage (local ones log to files only unless runtime.progress)."""
    if runtime.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        cls = LocalPipelineExecutor if runtime.progress else _quiet_local_executor_class()
        prepare_fork_workers(runtime.start_method)
        return cls(
            pipeline,
            tasks=tasks,
            workers=min(runtime.workers, tasks),
            logging_dir=str(logging_dir),
            skip_completed=True,
            depends=depends,
            start_method=runtime.start_method,
        )
    if runtime.executor == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        return RayPipelineExecutor(
            pipeline,
            tasks=tasks,
            workers=runtime.workers,
            logging_dir=str(logging_dir),
            skip_completed=True,
            depends=depends,
        )
    from datatrove.executor import SlurmPipelineExecutor

    return SlurmPipelineExecutor(
        pipeline,
        tasks=tasks,
        time=runtime.slurm_time,
        partition=runtime.slurm_partition,
        cpus_per_task=runtime.slurm_cpus_per_task,
        mem_per_cpu_gb=runtime.slurm_mem_per_cpu_gb,
        workers=runtime.workers,
        job_name=f"obert-{name}",
        logging_dir=str(logging_dir),
        venv_path=runtime.slurm_venv_path,
        depends=depends,
        slurm_logs_folder=runtime.slurm_logs_folder or str(logging_dir / "slurm_logs"),
    )


class _ForkToken:
    """What multiprocess's after-fork hook of forked_children_die_with_parent holds: the pid of the forking process."""

    def __init__(self):
        self.parent = os.getpid()


def _die_with_parent(token: _ForkToken) -> None:
    """In a process multiprocess has just forked: have Linux send it SIGTERM when its parent dies (prctl
    PR_SET_PDEATHSIG), and leave at once if the parent died before this ran. Nothing happens without prctl."""
    import ctypes
    import signal

    expected, token.parent = token.parent, os.getpid()  # this process's own forks expect it as their parent
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    pr_set_pdeathsig = 1  # <linux/prctl.h>
    if prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0) == 0 and os.getppid() != expected:
        os._exit(0)


@contextlib.contextmanager
def forked_children_die_with_parent():
    """While inside: processes that multiprocess forks from this one end when this process ends, even by SIGKILL.

    datatrove's LocalPipelineExecutor.run starts a Manager server process by fork. Nothing tells that server
    when the run is killed, and it stayed alive, idle, holding 166 MB, one per killed run (seen after the
    SIGKILL test). Workers started by the forkserver already leave when their parent's pipes close.
    """
    from multiprocess import util

    token = _ForkToken()
    util.register_after_fork(token, _die_with_parent)  # held by weak reference: gone once `token` is
    try:
        yield
    finally:
        del token


def run_stage(executor, runtime: CorpusRuntime, logging_dir: Path) -> None:
    """Run one stage; a local one's forked helper processes end with this process (forked_children_die_with_parent)."""
    if runtime.executor == "local":
        with forked_children_die_with_parent():
            _run_local_stage(executor, runtime, logging_dir)
    else:
        executor.run()


def _run_local_stage(executor, runtime: CorpusRuntime, logging_dir: Path) -> None:
    """Run a local stage; without progress, datatrove's console summary goes to <logging_dir>/console.log."""
    if runtime.progress:
        executor.run()
        return
    from loguru import logger

    logging_dir.mkdir(parents=True, exist_ok=True)
    with open(logging_dir / "console.log", "a", encoding="utf-8") as fh, contextlib.redirect_stderr(fh):
        logger.remove()
        logger.add(fh, level="INFO")
        try:
            executor.run()
        finally:
            logger.remove()
            logger.add(sys.stderr)  # loguru's default handler back
