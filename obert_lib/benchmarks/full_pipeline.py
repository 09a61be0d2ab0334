"""`obert bench preprocess`'s full-pipeline rows: corpus.run end to end, every stage, as `obert preprocess` runs it,
against datatrove's stock pipeline of the same stages, each run in a fresh interpreter.

The stock pipeline (stock_full) is what a datatrove user writes from its examples for the same stages:

| our stage | datatrove stock |
| --- | --- |
| clean (read, clean, write) | JsonlReader -> JsonlWriter (no cleaning step: the reader/writer equivalent) |
| exact dedup | ExactDedupSignature, ExactFindDedups, ExactDedupFilter (ExactDedupConfig defaults, key: the text) |
| MinHash | MinhashDedupSignature, Buckets, Cluster, Filter (MinhashConfig defaults but sha1, see stock_full) |
| paragraph dedup, annotate, shards | ParquetWriter (no step: the reader/writer equivalent) |

The MinHash defaults are 14 buckets x 8 hashes over 5-grams. MinhashDedupSignature's default word tokenizer
(English) and its Chinese one both need spaCy, which is not installed here; the stock rows hand it
dedup.CharacterShingles (one token per character), so that its 5-grams are character 5-grams as ours are.
Each stage writes its output and the next stage reads it, as in datatrove's examples/fineweb.py.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FullRun:
    """One timed full pipeline: wall seconds, each stage's seconds, and the documents it dropped by reason."""

    seconds: float
    stages: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)


def ours_full(inputs: list[Path], out: Path, workers: int, vocab: str | None) -> FullRun:
    """corpus.run end to end (worker start, every stage, stats): FewCLUE's short texts need 5 CJK characters, not 20."""
    from ..corpus import pipeline

    cfg = {
        "inputs": [str(p) for p in inputs],
        "output_dir": str(out),
        "knowledge_base": None,
        "tokenizer": {"vocab_file": vocab},
        "quality": {"min_cjk_chars": 5},
    }
    start = time.perf_counter()
    result = pipeline.run(cfg, {"workers": workers, "progress": False})
    seconds = time.perf_counter() - start
    return FullRun(seconds, result.stats["stage_seconds"], dict(result.stats["documents_dropped"]))


def document_text(doc) -> bytes:
    """The stock exact-dedup key: the document's text as it is, UTF-8."""
    return doc.text.encode("utf-8")


def stock_full(inputs: list[Path], out: Path, workers: int) -> FullRun:
    """datatrove's stock pipeline of the same stages (module docstring), one executor per stage, timed end to end."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.exact_dedup import (
        ExactDedupConfig,
        ExactDedupFilter,
        ExactDedupSignature,
        ExactFindDedups,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
    from datatrove.utils.hashing import HashConfig

    from ..corpus.dedup import CharacterShingles

    out.mkdir(parents=True, exist_ok=True)
    paths_file = out / "inputs.txt"
    paths_file.write_text("".join(f"{str(p.resolve()).lstrip('/')}\n" for p in inputs))
    # datatrove 0.10.1's default shingle hash, xxhash, raises in MinhashDedupSignature.get_shingles (it is handed a
    # str); sha1 is its other one
    work, tasks, minhash = out / "work", len(inputs), MinhashConfig(hash_config=HashConfig(hash_fc="sha1"))
    exact = ExactDedupConfig(content_getter=document_text)  # the one setting without a default
    stages = {
        "clean": (
            [
                JsonlReader("/", paths_file=str(paths_file)),
                JsonlWriter(str(work / "read")),
                ExactDedupSignature(str(work / "exact_sigs"), config=exact),
            ],
            tasks,
        ),
        "exact-find": ([ExactFindDedups(str(work / "exact_sigs"), str(work / "exact_dups"), config=exact)], 1),
        "exact-filter": (
            [
                JsonlReader(str(work / "read")),
                ExactDedupFilter(str(work / "exact_dups"), config=exact),
                JsonlWriter(str(work / "deduped")),
                MinhashDedupSignature(str(work / "minhash_sigs"), config=minhash, language=CharacterShingles()),
            ],
            tasks,
        ),
        "minhash-buckets": (
            [MinhashDedupBuckets(str(work / "minhash_sigs"), str(work / "minhash_buckets"), config=minhash)],
            minhash.num_buckets,
        ),
        "minhash-cluster": (
            [MinhashDedupCluster(str(work / "minhash_buckets"), str(work / "minhash_remove"), config=minhash)],
            1,
        ),
        "shards": (
            [
                JsonlReader(str(work / "deduped")),
                MinhashDedupFilter(str(work / "minhash_remove")),
                ParquetWriter(str(out / "shards")),
            ],
            tasks,
        ),
    }
    start = time.perf_counter()
    seconds = {}
    for name, (steps, n_tasks) in stages.items():
        t0 = time.perf_counter()
        LocalPipelineExecutor(
            steps, tasks=n_tasks, workers=workers, logging_dir=str(out / "logs" / name), skip_completed=False
        ).run()
        seconds[name] = round(time.perf_counter() - t0, 3)
    return FullRun(time.perf_counter() - start, seconds, _stock_dropped(out / "logs"))


def _stock_dropped(logs: Path) -> dict[str, int]:
    """Documents the stock dedup filters dropped, from their stats: exact_duplicate and near_duplicate."""
    import json

    dropped = {"exact_duplicate": 0, "near_duplicate": 0}
    for stage, reason in (("exact-filter", "exact_duplicate"), ("shards", "near_duplicate")):
        for step in json.loads((logs / stage / "stats.json").read_text()):
            if "dropped" in step.get("stats", {}) and "dedup" in step.get("name", "").lower():
                stat = step["stats"]["dropped"]
                dropped[reason] = int(stat["total"] if isinstance(stat, dict) else stat)
    return dropped


LOG_TAIL_LINES = 40  # of a failed run's standard error, shown before its error: datatrove's last task log lines


def _with_stderr_to(log: str, fn, *args):
    """fn(*args) with this process's standard error (fd 2, where datatrove's task logs go) appended to `log`."""
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 2)
    return fn(*args)


def fresh(fn, *args, log: Path):
    """fn(*args) in a new interpreter (spawn), so that no run inherits another's loaded tables or warm caches.

    The run's standard error goes to the file `log`: datatrove logs every task of its 1-worker and stock runs
    to the console, thousands of lines over a benchmark. When the run fails, the end of `log` is printed
    before its error is raised here.
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(_with_stderr_to, str(log), fn, *args).result()
        except BaseException:
            if log.is_file():
                tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
                print(f"--- the end of {log} ---", *tail, sep="\n", file=sys.stderr)
            raise


def stderr_log(out: Path) -> Path:
    """Where a fresh run writing into the folder `out` keeps its standard error: beside that folder."""
    return out.parent / f"{out.name}.stderr.log"


def measure(inputs: list[Path], tmp: Path, vocab: str | None, repeats: int) -> dict[tuple[str, int], list[FullRun]]:
    """`repeats` rounds of ours and stock with 1 and 2 workers, interleaved: {(side, workers): [FullRun, ...]}."""
    runs: dict[tuple[str, int], list[FullRun]] = {(s, w): [] for s in ("ours", "stock") for w in (1, 2)}
    for i in range(repeats):
        for workers in (1, 2):
            for side, fn, extra in (("ours", ours_full, (vocab,)), ("stock", stock_full, ())):
                out = tmp / f"full-{side}-{workers}-{i}"
                runs[side, workers].append(fresh(fn, inputs, out, workers, *extra, log=stderr_log(out)))
    return runs


def median_run(runs: list[FullRun]) -> FullRun:
    """The run of median wall time (the lower middle one of an even count)."""
    return sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]
