"""Local corpus workers may fork (CorpusRuntime.start_method: fork): tqdm's lock held by a parent thread must not
hang them."""

import os
import threading

import pytest


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_forked_worker_gets_a_fresh_tqdm_thread_lock():
    from tqdm import tqdm
    from tqdm.std import TqdmDefaultWriteLock

    import obert_lib.corpus.workers  # noqa: F401  registers the at-fork handler

    tqdm.get_lock()
    held, release = threading.Event(), threading.Event()

    def monitor_like():  # tqdm's monitor thread holds the lock for a moment every 10 s
        with TqdmDefaultWriteLock.th_lock:
            held.set()
            release.wait(10)

    thread = threading.Thread(target=monitor_like)
    thread.start()
    held.wait(5)
    pid = os.fork()
    if pid == 0:  # the child: without the at-fork handler this would wait forever
        with tqdm.get_lock():
            pass
        for _ in tqdm(range(2), disable=True):
            pass
        os._exit(0)
    release.set()
    thread.join()
    deadline_pid, status = 0, None
    for _ in range(100):  # up to 10 s
        deadline_pid, status = os.waitpid(pid, os.WNOHANG)
        if deadline_pid:
            break
        threading.Event().wait(0.1)
    if not deadline_pid:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert deadline_pid and os.waitstatus_to_exitcode(status) == 0, "the forked child hung on tqdm's lock"
