"""A corpus run killed with SIGKILL and rerun gives exactly the output of an uninterrupted run."""
import json
import signal
import subprocess
import sys
import time

from obert_lib import corpus
from obert_lib.paths import sample_path

CODE = "import sys, json; from obert_lib import corpus; corpus.run(json.loads(sys.argv[1]), {'progress': False})"


def _inputs(tmp_path, n=6):
    docs = sample_path("corpus.jsonl").read_text(encoding="utf-8").splitlines()
    paths = []
    for i in range(n):
        p = tmp_path / f"part{i}.jsonl"
        p.write_text("".join(json.dumps({**json.loads(d), "id": f"{json.loads(d)['id']}-{i}"}, ensure_ascii=False) + "\n"
                             for d in docs[i::n]), encoding="utf-8")
        paths.append(str(p))
    return paths


def _rows(result):
    table = corpus.load_shards(result.output_dir).to_pylist()
    return sorted(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in table)


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path):
    inputs = _inputs(tmp_path)
    cfg = {"inputs": inputs, "output_dir": str(tmp_path / "killed")}
    proc = subprocess.Popen([sys.executable, "-c", CODE, json.dumps(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    completions = tmp_path / "killed" / "_work" / "logs" / "clean" / "completions"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if completions.is_dir() and len(list(completions.iterdir())) >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
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
