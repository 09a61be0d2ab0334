"""pipeline.prepare_workers: workers start with the pipeline and jieba's tables already loaded.

Each check runs in a fresh interpreter: the test process has long since imported everything.
"""
import json
import subprocess
import sys

# One expression (a pool worker evaluates it too): what a process has loaded, and its BLAS thread setting.
STATE = ("{'preloaded': 'obert_lib.corpus.worker_preload' in __import__('sys').modules,"
         " 'segmenter_built': __import__('obert_lib.corpus.segmenter', fromlist=['_'])"
         ".default_segmenter.cache_info().currsize == 1,"
         " 'idf_loaded': __import__('obert_lib.corpus.paragraph_annotator', fromlist=['_'])"
         "._keyword_table_loaded.cache_info().currsize == 1,"
         " 't2s_loaded': __import__('obert_lib.corpus.normalize', fromlist=['_'])._t2s_converter.cache_info().currsize == 1,"
         " 'openblas_threads': __import__('os').environ.get('OPENBLAS_NUM_THREADS'),"
         " 'step_deps_checked': __import__('datatrove.utils._import_utils', fromlist=['_'])"
         "._is_distribution_available.cache_info().currsize >= 2}")
NOTHING = {"preloaded": False, "segmenter_built": False, "idf_loaded": False, "t2s_loaded": False, "openblas_threads": None,
           "step_deps_checked": False}
LOADED = {"preloaded": True, "segmenter_built": True, "idf_loaded": True, "t2s_loaded": True, "openblas_threads": None,
          "step_deps_checked": True}


def _run(code: str):
    out = subprocess.run([sys.executable, "-c", f"import json\nSTATE = {STATE!r}\n{code}"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_one_worker_loads_the_tables_in_this_process():
    before, after = _run("from obert_lib.corpus.pipeline import prepare_workers\n"
                         "before = eval(STATE)\nprepare_workers(1, 'forkserver')\nprint(json.dumps([before, eval(STATE)]))")
    assert before == NOTHING
    assert after == LOADED


def test_forkserver_workers_fork_with_the_tables_and_one_blas_thread():
    got = _run("""
import multiprocess
from obert_lib.corpus.pipeline import prepare_workers
prepare_workers(2, "forkserver", wait=True)
with multiprocess.get_context("forkserver").Pool(2) as pool:  # the context datatrove's LocalPipelineExecutor uses
    workers = pool.map(eval, [STATE] * 2)
print(json.dumps({"parent": eval(STATE), "workers": workers}))
""")
    # the parent loads nothing and keeps its environment; the workers inherit what the server preloaded
    assert got["parent"] == NOTHING
    assert got["workers"] == [{**LOADED, "openblas_threads": "1"}] * 2  # datatrove's step checks done too


def test_spawned_workers_load_nothing_ahead():
    got = _run("""
import multiprocess
from obert_lib.corpus.pipeline import prepare_workers
prepare_workers(2, "spawn")
with multiprocess.get_context("spawn").Pool(1) as pool:
    worker = pool.apply(eval, (STATE,))
print(json.dumps([eval(STATE), worker]))
""")
    assert got == [NOTHING, NOTHING]


def test_loguru_finds_its_library_folders_once_per_process():
    """cache_loguru_lib_dirs: the same folders as loguru's own search, found once; logger.add no longer repeats it."""
    got = _run("""
import time
from loguru import logger
from loguru._better_exceptions import ExceptionFormatter
own = ExceptionFormatter._get_lib_dirs()
from obert_lib.corpus.pipeline import cache_loguru_lib_dirs
cache_loguru_lib_dirs()
cache_loguru_lib_dirs()  # a second call changes nothing
for _ in range(3):
    logger.add(lambda message: None)
info = ExceptionFormatter._get_lib_dirs.cache_info()
print(json.dumps({"same": ExceptionFormatter._get_lib_dirs() == own, "misses": info.misses, "hits": info.hits}))""")
    assert got == {"same": True, "misses": 1, "hits": 3}  # found by the first call, reused by the three sinks
