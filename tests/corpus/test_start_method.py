"""workers.resolve_start_method: start_method "auto" forks only where forking is safe, else uses the forkserver."""

import subprocess
import sys
import threading

import pytest

from obert_lib import config as cfgmod
from obert_lib.config import ConfigError
from obert_lib.corpus.config import CorpusRuntime
from obert_lib.corpus.workers import openmp_runtime_loaded, resolve_start_method

LINUX = sys.platform.startswith("linux")


def _maps(*paths: str) -> str:
    """Lines as /proc/self/maps prints them, one per library path."""
    return "".join(f"7f00{i:04x}000-7f00{i:04x}fff r-xp 00000000 08:01 {i} {p}\n" for i, p in enumerate(paths))


def test_openmp_runtimes_are_found_in_maps():
    assert openmp_runtime_loaded(_maps("/venv/lib/python3.11/site-packages/torch/lib/libgomp.so.1"))
    assert openmp_runtime_loaded(_maps("/opt/intel/lib/libiomp5.so"))
    assert openmp_runtime_loaded(_maps("/usr/lib/llvm-17/lib/libomp.so.5"))
    assert openmp_runtime_loaded(
        _maps("/venv/lib/python3.11/site-packages/scikit_learn.libs/libgomp-a34b3233.so.1.0.0")
    )
    # Arrow's compute library and other names that merely contain "omp" are not OpenMP runtimes
    assert not openmp_runtime_loaded(
        _maps(
            "/venv/lib/python3.11/site-packages/pyarrow/libarrow_compute.so.2600",
            "/usr/lib/x86_64-linux-gnu/libcompress.so.1",
            "/venv/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_-ff651d7f.so",
        )
    )
    assert not openmp_runtime_loaded("")


def test_explicit_start_methods_are_kept():
    for method in ("fork", "forkserver", "spawn"):
        assert resolve_start_method(method) == method


def test_auto_uses_the_forkserver_while_another_python_thread_runs():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        assert resolve_start_method("auto") == "forkserver"
    finally:
        stop.set()
        thread.join()


def _auto_in_fresh_interpreter(before: str) -> str:
    code = f"{before}\nfrom obert_lib.corpus.workers import resolve_start_method\nprint(resolve_start_method('auto'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not LINUX, reason="auto forks only on Linux")
def test_auto_forks_a_plain_process_with_the_pipeline_loaded():
    # numpy's OpenBLAS and Arrow start threads in C: they reset them in the child, so they do not count
    assert _auto_in_fresh_interpreter("import obert_lib.corpus.worker_preload, numpy, pyarrow") == "fork"


@pytest.mark.skipif(not LINUX, reason="auto forks only on Linux")
def test_auto_uses_the_forkserver_after_torch_ran_its_openmp_pool():
    before = "import torch\ntorch.set_num_threads(2)\ntorch.ones(1 << 16).sum()"
    assert _auto_in_fresh_interpreter(before) == "forkserver"


def test_runtime_accepts_auto_and_names_the_choices():
    assert CorpusRuntime().start_method == "auto"
    with pytest.raises(ConfigError, match=r"start_method.*fork"):
        cfgmod.load(CorpusRuntime, {"start_method": "threads"})


@pytest.mark.skipif(not LINUX, reason="auto forks only on Linux")
def test_obert_preprocess_with_forked_workers_writes_what_the_forkserver_writes(tmp_path):
    """Two workers through `obert preprocess` in a fresh interpreter: auto forks them, and the shards and stats
    equal those of forkserver workers."""
    import json

    from obert_lib.corpus import load_shards
    from tests.corpus.sentences import DISTINCT_SENTENCES

    half = len(DISTINCT_SENTENCES) // 2
    inputs = []
    for i in range(2):
        path = tmp_path / f"in-{i}.jsonl"
        rows = [{"id": f"{i}-{j}", "text": t} for j, t in enumerate(DISTINCT_SENTENCES[i * half : (i + 1) * half])]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        inputs.append(str(path))
    printed = {}
    for method in ("auto", "forkserver"):
        args = ["preprocess", "--input", *inputs, "--output", str(tmp_path / method)]
        args += ["--set", "knowledge_base=null", "--set", "tokenizer.vocab_size=200"]
        args += ["--runtime", "workers=2", "--runtime", f"start_method={method}"]
        code = f"import sys\nfrom obert_lib import cli\nsys.exit(cli.main({args!r}))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        printed[method] = out.stdout + out.stderr
    assert "[corpus] 2 workers, started by fork" in printed["auto"]
    assert "[corpus] 2 workers, started by forkserver" in printed["forkserver"]
    shards = {m: load_shards(tmp_path / m).to_pylist() for m in ("auto", "forkserver")}
    assert len(shards["auto"]) == 2 * half and shards["auto"] == shards["forkserver"]
    stats = {m: json.loads((tmp_path / m / "stats.json").read_text()) for m in ("auto", "forkserver")}
    for key in ("documents_in", "documents_kept", "documents_dropped", "paragraphs_out", "tokens_out"):
        assert stats["auto"][key] == stats["forkserver"][key]
