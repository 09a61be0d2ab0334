"""A corpus run killed with SIGKILL and rerun gives exactly the output of an uninterrupted run."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from obert_lib import corpus
from obert_lib.paths import sample_path

CODE = "import sys, json; from obert_lib import corpus; corpus.run(json.loads(sys.argv[1]), {'progress': False})"


def _inputs(tmp_path, n=6):
    docs = sample_path("corpus.jsonl").read_text(encoding="utf-8").splitlines()
    paths = []
    for i in range(n):
        p = tmp_path / f"part{i}.jsonl"
        p.write_text(
            "".join(
                json.dumps({**json.loads(d), "id": f"{json.loads(d)['id']}-{i}"}, ensure_ascii=False) + "\n"
                for d in docs[i::n]
            ),
            encoding="utf-8",
        )
        paths.append(str(p))
    return paths


def _children(pid: int) -> list[int]:
    """Child pids of a process (Linux /proc)."""
    return [int(c) for f in Path(f"/proc/{pid}/task").glob("*/children") for c in f.read_text().split()]


def _alive(pid: int) -> bool:
    """Running, or stopped; not gone and not a zombie waiting for init to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _rows(result):
    table = corpus.load_shards(result.output_dir).to_pylist()
    return sorted(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in table)


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path):
    inputs = _inputs(tmp_path)
    cfg = {"inputs": inputs, "output_dir": str(tmp_path / "killed")}
    proc = subprocess.Popen(
        [sys.executable, "-c", CODE, json.dumps(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    completions = tmp_path / "killed" / "_work" / "logs" / "clean" / "completions"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if completions.is_dir() and len(list(completions.iterdir())) >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    children = _children(proc.pid)
    assert children  # datatrove's Manager server at least (and the worker server)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # its helper processes end with it rather than live on, idle, holding memory
    deadline = time.time() + 30
    while time.time() < deadline and [c for c in children if _alive(c)]:
        time.sleep(0.05)
    assert [c for c in children if _alive(c)] == []
    resumed = corpus.run(cfg, {"progress": False})
    fresh = corpus.run({**cfg, "output_dir": str(tmp_path / "fresh")}, {"progress": False})
    assert _rows(resumed) == _rows(fresh)
    drop = lambda s: {k: v for k, v in s.items() if k not in ("seconds", "stage_seconds")}  # noqa: E731
    assert drop(resumed.stats) == drop(fresh.stats)
    assert resumed.stats["documents_in"] == 220


def test_changed_input_is_not_served_from_a_previous_run(tmp_path):
    src = tmp_path / "in.jsonl"
    text = "北京是中华人民共和国的首都，也是全国的政治中心和文化中心，历史悠久，名胜古迹众多。"
    src.write_text(json.dumps({"id": "a", "text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
    cfg = {"inputs": [str(src)], "output_dir": str(tmp_path / "out"), "knowledge_base": None}
    assert corpus.run(cfg, {"progress": False}).stats["documents_in"] == 1
    time.sleep(0.01)
    with open(src, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "b", "text": text.replace("北京", "上海")}, ensure_ascii=False) + "\n")
    again = corpus.run(cfg, {"progress": False})
    assert again.stats["documents_in"] == 2


def test_the_parent_death_hook_lasts_only_while_a_stage_runs():
    """forked_children_die_with_parent leaves no after-fork hook behind in the caller's process."""
    from multiprocess import util

    from obert_lib.corpus.workers import _die_with_parent, forked_children_die_with_parent

    def hooks():
        return [key for key in list(util._afterfork_registry.keys()) if key[2] is _die_with_parent]

    assert hooks() == []
    with forked_children_die_with_parent():
        assert len(hooks()) == 1
    assert hooks() == []
