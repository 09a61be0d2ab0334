"""workers.prepare_workers: workers start with the pipeline and jieba's tables already loaded.

Each check runs in a fresh interpreter: the test process has long since imported everything.
"""

import json
import subprocess
import sys

# One expression (a pool worker evaluates it too): what a process has loaded, and its BLAS thread setting.
STATE = (
    "{'preloaded': 'obert_lib.corpus.worker_preload' in __import__('sys').modules,"
    " 'segmenter_built': __import__('obert_lib.corpus.segmenter', fromlist=['_'])"
    ".default_segmenter.cache_info().currsize == 1,"
    " 'idf_loaded': __import__('obert_lib.corpus.paragraph_annotator', fromlist=['_'])"
    "._keyword_table_loaded.cache_info().currsize == 1,"
    " 't2s_loaded': __import__('obert_lib.corpus.normalize', fromlist=['_'])._t2s_converter.cache_info().currsize == 1,"
    " 'openblas_threads': __import__('os').environ.get('OPENBLAS_NUM_THREADS')}"
)
NOTHING = {
    "preloaded": False,
    "segmenter_built": False,
    "idf_loaded": False,
    "t2s_loaded": False,
    "openblas_threads": None,
}
LOADED = {
    "preloaded": True,
    "segmenter_built": True,
    "idf_loaded": True,
    "t2s_loaded": True,
    "openblas_threads": None,
}


def _run(code: str):
    out = subprocess.run(
        [sys.executable, "-c", f"import json\nSTATE = {STATE!r}\n{code}"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_one_worker_loads_the_tables_in_this_process():
    before, after = _run(
        "from obert_lib.corpus.workers import prepare_workers\n"
        "before = eval(STATE)\nprepare_workers(1, 'forkserver')\nprint(json.dumps([before, eval(STATE)]))"
    )
    assert before == NOTHING
    assert after == LOADED


def test_forkserver_workers_fork_with_the_tables_and_one_blas_thread():
    got = _run("""
import multiprocess
from obert_lib.corpus.workers import prepare_workers
prepare_workers(2, "forkserver", wait=True)
with multiprocess.get_context("forkserver").Pool(2) as pool:  # the context datatrove's LocalPipelineExecutor uses
    workers = pool.map(eval, [STATE] * 2)
print(json.dumps({"parent": eval(STATE), "workers": workers}))
""")
    # the parent loads nothing and keeps its environment; the workers inherit what the server preloaded
    assert got["parent"] == NOTHING
    assert got["workers"] == [{**LOADED, "openblas_threads": "1"}] * 2


def test_spawned_workers_load_nothing_ahead():
    got = _run("""
import multiprocess
from obert_lib.corpus.workers import prepare_workers
prepare_workers(2, "spawn")
with multiprocess.get_context("spawn").Pool(1) as pool:
    worker = pool.apply(eval, (STATE,))
print(json.dumps([eval(STATE), worker]))
""")
    assert got == [NOTHING, NOTHING]


def test_loguru_finds_its_library_folders_once_per_process():
    """compat.cache_loguru_lib_dirs: logger.add no longer expands sysconfig's install schemes, and an exception
    logged afterwards is formatted as before (the same library folders are left out of its traceback)."""
    got = _run("""
import io, sysconfig
from loguru import logger
calls = []
get_scheme_names = sysconfig.get_scheme_names
sysconfig.get_scheme_names = lambda: (calls.append(1), get_scheme_names())[1]

def logged_exception():
    out = io.StringIO()
    sink = logger.add(out, format="{message}", backtrace=True, diagnose=False)
    try:
        __import__("json").loads("{")
    except ValueError:
        logger.exception("failed")
    logger.remove(sink)
    return [line for line in out.getvalue().splitlines() if "<string>" not in line]  # the caller's line differs

before = logged_exception()
searches_before = len(calls)
from obert_lib.corpus.workers import cache_loguru_lib_dirs
cache_loguru_lib_dirs()
cache_loguru_lib_dirs()  # a second call changes nothing
calls.clear()
for _ in range(3):
    logger.remove(logger.add(lambda message: None))
searches_after = len(calls)
print(json.dumps({"same": logged_exception() == before, "before": searches_before > 0, "after": searches_after}))""")
    assert got == {"same": True, "before": True, "after": 0}  # a search per sink before, none once cached


def test_the_default_steps_read_no_distribution_metadata(tmp_path):
    """Importing the pipeline, making the steps of every stage of a JSONL run and unpickling them (as a pool worker
    does) parses no installed distribution's metadata: datatrove's dependency checks of JsonlWriter and HashConfig
    did, 0.1 to 0.5 s each per process."""
    (tmp_path / "in.jsonl").write_text('{"text": "中文"}\n', encoding="utf-8")
    cfg = {"inputs": [str(tmp_path / "in.jsonl")], "output_dir": str(tmp_path / "out")}
    got = _run(f"""
import importlib.metadata as md, dill
import datatrove.io  # fsspec, which it imports, lists the installed entry points: datatrove's import, not ours
calls = []
distributions = md.distributions
md.distributions = lambda *a, **k: (calls.append(1), distributions(*a, **k))[1]
from obert_lib.config import load
from obert_lib.corpus import pipeline
from obert_lib.corpus.config import CorpusConfig, CorpusRuntime
plan = pipeline.plan_run(load(CorpusConfig, {cfg!r}), CorpusRuntime())
assert plan.cfg.keep_removed  # its removed/ writers are among the steps
steps = [step for stage in pipeline.STAGES for step in stage.steps(plan)]
dill.loads(dill.dumps(steps))  # as datatrove hands steps to its pool workers (multiprocess pickles with dill)
print(json.dumps({{"steps": len(steps), "metadata_scans": len(calls)}}))""")
    assert got["steps"] > 5
    assert got["metadata_scans"] == 0
