"""The private names of other libraries that obert_lib still uses, each kept because it measurably pays.

The rule (issue 14): a private name stays only where an end-to-end measurement shows it saves more than 5% of
what a user runs; everything else goes through public interfaces. PRIVATE_NAMES records, per name, the library
version it was checked against and the measured gain (docs/performance.md, "Private APIs kept (issue 14)");
tests/test_compat.py fails loudly when a name disappears from the installed library.
"""

from __future__ import annotations

import functools
import sys

PRIVATE_NAMES = {
    "loguru._better_exceptions.ExceptionFormatter._get_lib_dirs": {
        "library": "loguru",
        "checked_with": "0.7.3",
        "used_by": "cache_loguru_lib_dirs",
        # obert preprocess on the sample corpus (1 worker, 2-core machine): median corpus.run 2.55 s with the
        # cache, 2.83 s without (5 interleaved runs each, 2026-12-04, on commit d15c6d4): 10% of the run.
        "gain": "10% of obert preprocess on the sample corpus (2.55 s vs 2.83 s)",
    },
}


def cache_loguru_lib_dirs() -> None:
    """Have loguru find its library folders once per process (and sys.path) rather than once per log sink.

    loguru's ExceptionFormatter expands every sysconfig install scheme for each logger.add, and datatrove
    adds three sinks per task (add_task_logger two, close_task_logger one), and a run has a task per input
    file per stage plus one per MinHash bucket (the cost: docs/performance.md, "Private APIs kept"). The
    folders depend only on sysconfig and sys.path, the cache key. A loguru without this private method is
    left as it is (tests/test_compat.py says so first).
    """
    try:
        from loguru._better_exceptions import ExceptionFormatter
    except ImportError:
        return
    find = getattr(ExceptionFormatter, "_get_lib_dirs", None)
    if find is None or hasattr(find, "cache_info"):  # not this loguru, or cached already
        return
    by_path = functools.lru_cache(maxsize=8)(lambda path: tuple(find()))

    def lib_dirs() -> list[str]:
        return list(by_path(tuple(sys.path)))

    lib_dirs.cache_info = by_path.cache_info
    ExceptionFormatter._get_lib_dirs = staticmethod(lib_dirs)
    lib_dirs()  # found now, before any worker forks from this process
