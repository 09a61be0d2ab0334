"""Corpus stage: read -> normalise -> line rules -> quality rules -> dedup -> split -> annotate -> tokenise -> Parquet."""
from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import std as tqdm_std

from .. import config as cfgmod
from ..config import ConfigError, require
from ..paths import resolve_data_path
from ..results import hash_files
from . import guards
from .annotate import SPAN_TYPES
from .dedup import exact_dedup_key
from .tokenizer import load_saved_tokenizer, load_vocab_tokenizer, train_tokenizer
from .wordpiece import save_char_tables


def require_fraction(cfg: Any, key: str) -> None:
    """A ratio or threshold field of `cfg` must lie within [0, 1]."""
    value = getattr(cfg, key)
    require(0.0 <= value <= 1.0, key, f"must be within [0, 1] (got {value}); it is a fraction of the document")


@dataclass
class NormalizeConfig:
    strip_html: bool = True
    nfkc: bool = True  # full-width ASCII -> half-width; Chinese punctuation is kept full-width
    traditional_to_simplified: bool = True  # OpenCC t2s


@dataclass
class LineRulesConfig:
    remove_navigation: bool = True
    remove_boilerplate: bool = True
    remove_seo_spam: bool = True
    remove_spam: bool = True  # lines with spam keywords (filters.SPAM_KEYWORDS)
    scrub_private: bool = True  # URLs, e-mail addresses, phone numbers


@dataclass
class QualityConfig:
    # 20 CJK chars: below that a "document" is a reply like 顶/同问 or a bare title (sample corpus).
    min_cjk_chars: int = 20
    # Real Chinese prose is >70% ideographs; mojibake and symbol noise are <10%. 0.4 sits between.
    min_cjk_ratio: float = 0.4
    # The commonest character in normal Chinese (的) is ~4% of text; '哈哈哈…' is ~100%.
    max_top_char_fraction: float = 0.25
    # Gopher (Rae et al. 2021) drops documents with >30% duplicated lines.
    max_duplicate_line_fraction: float = 0.3
    # Ordinary Chinese prose is ~10-15% punctuation and a few % digits; keyword lists, symbol soup and
    # timetables are far above. 0.3 / 0.3 leave all sample and FewCLUE prose in.
    max_punctuation_ratio: float = 0.3
    max_digit_ratio: float = 0.3
    # Gopher drops documents whose duplicated 10-gram characters exceed 10% (for words); repeated
    # character 10-grams in Chinese are rarer than word 10-grams in English, so 0.3 only catches
    # copy-paste loops.
    max_duplicate_ngram_fraction: float = 0.3
    # A document where half the lines advertise is an ad; fewer spam lines (a spam reply under a real
    # answer) are removed one by one.
    max_spam_line_fraction: float = 0.5

    def __post_init__(self):
        require(self.min_cjk_chars >= 0, "min_cjk_chars",
                f"must be >= 0 (got {self.min_cjk_chars}); 0 turns the rule off")
        require(0.0 < self.max_top_char_fraction <= 1.0, "max_top_char_fraction",
                f"must be within (0, 1] (got {self.max_top_char_fraction}); 1 turns the rule off")
        for key in ("min_cjk_ratio", "max_duplicate_line_fraction", "max_punctuation_ratio", "max_digit_ratio",
                    "max_duplicate_ngram_fraction", "max_spam_line_fraction"):
            require_fraction(self, key)


@dataclass
class DedupConfig:
    exact: bool = True
    near: bool = True
    # datatrove MinHash: 128 hashes in 16 buckets of 8; two documents are duplicates when all 8 hashes of
    # any bucket agree: P = 1-(1-J^8)^16, which is 0.5 at Jaccard ~0.69 and 0.98 at 0.8.
    num_perm: int = 128
    bands: int = 16
    shingle_size: int = 5  # character 5-grams: ~2-3 Chinese words
    paragraphs: bool = True  # drop a paragraph already seen in an earlier kept document
    min_paragraph_chars: int = 20  # shorter paragraphs ("谢谢！") may repeat legitimately

    def __post_init__(self):
        require(self.bands >= 1, "bands", f"must be >= 1 (got {self.bands}); 16 bands of 8 hashes is the default")
        require(self.num_perm > 0 and self.num_perm % self.bands == 0, "bands",
                f"num_perm ({self.num_perm}) must be a positive multiple of bands ({self.bands}); "
                "e.g. num_perm=128, bands=16")
        require(self.shingle_size >= 1, "shingle_size", f"must be >= 1 (got {self.shingle_size})")
        require(self.min_paragraph_chars >= 0, "min_paragraph_chars", f"must be >= 0 (got {self.min_paragraph_chars})")


@dataclass
class TokenizerConfig:
    vocab_file: str | None = None  # a BERT vocab.txt ('shared:vocab/bert-base-chinese-vocab.txt'); null trains one
    vocab_size: int = 8000  # when training: enough for every character of a small corpus plus common pieces
    min_frequency: int = 1

    def __post_init__(self):
        require(self.vocab_size >= 100, "vocab_size", f"must be >= 100 (got {self.vocab_size})")
        require(self.min_frequency >= 1, "min_frequency", f"must be >= 1 (got {self.min_frequency})")


@dataclass
class CorpusConfig:
    """What changes the corpus (results); see CorpusRuntime for what changes only speed."""

    inputs: list[str] = field(default_factory=lambda: ["sample:corpus.jsonl"])
    output_dir: str = "runs/corpus"
    input_format: Literal["auto", "jsonl", "parquet", "text", "text_blocks"] = "auto"
    text_key: str = "text"
    id_key: str = "id"
    knowledge_base: str | None = "sample:kb.jsonl"
    user_dict: str | None = None  # jieba-format user dictionary (word [freq] [tag]) added to the segmenter
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    lines: LineRulesConfig = field(default_factory=LineRulesConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    # Longer documents are dropped (too_long) before normalisation: 1M characters is ~500 pages, far
    # beyond any encyclopedia article; a 10 MB single line is scraping debris.
    max_chars: int = 1_000_000
    min_paragraph_chars: int = 8  # paragraphs shorter than this are headings/fragments: not training text
    keywords_top_k: int = 3
    max_documents: int | None = None  # read at most this many documents per task (quick looks at big inputs)
    keep_removed: bool = True  # write dropped documents to removed/<reason>/ for inspection

    def __post_init__(self):
        require(len(self.inputs) > 0, "inputs", "give at least one input file or folder")
        require(bool(self.text_key) and bool(self.id_key), "text_key" if not self.text_key else "id_key",
                "must name a field (e.g. text_key: text)")
        require(self.max_chars > 0, "max_chars", f"must be > 0 (got {self.max_chars})")
        require(self.keywords_top_k >= 0, "keywords_top_k",
                f"must be >= 0 (got {self.keywords_top_k}; 0 marks no keywords)")
        require(self.min_paragraph_chars >= 1, "min_paragraph_chars", f"must be >= 1 (got {self.min_paragraph_chars})")
        require(self.max_documents is None or self.max_documents >= 1, "max_documents",
                f"must be >= 1 or null for all (got {self.max_documents})")


@dataclass
class CorpusRuntime:
    """Speed-only settings: executor, parallelism, progress display."""

    executor: Literal["local", "ray", "slurm"] = "local"
    workers: int = 1  # processes at once (local) or concurrent Ray tasks
    tasks: int | None = None  # input shards, at most one per input file (datatrove readers shard by file)
    progress: bool = True
    # Which implementation annotates and tokenises: "native" (the C extensions) or "rjieba" (the Python
    # reference rules over rjieba and the tokenizers backend). Both write identical shards (tested).
    annotator: Literal["native", "rjieba"] = "native"
    # How local worker processes start (multiprocessing start method). "forkserver" (datatrove's default):
    # workers fork from a server process that run() starts first and that imports the pipeline and
    # builds jieba's tables once (prepare_workers); without that preload each worker spent about 1.4 s on
    # them, a third of a 9 MB task. "fork" copies the parent itself and is only safe from a process without
    # other threads: the test suite, after its torch tests, hung a forked worker. A forked worker gets a
    # fresh tqdm lock (_fresh_tqdm_lock_after_fork). "spawn" shares nothing and pays the imports per worker.
    start_method: Literal["fork", "forkserver", "spawn"] = "forkserver"
    # Slurm only (see env/cluster/preprocess_slurm.yaml)
    slurm_partition: str | None = None
    slurm_time: str = "24:00:00"
    slurm_cpus_per_task: int = 1
    slurm_mem_per_cpu_gb: int = 2
    slurm_venv_path: str | None = None
    slurm_logs_folder: str | None = None

    def __post_init__(self):
        require(self.workers >= 1, "workers", f"must be >= 1 (got {self.workers}); e.g. workers=2 for two processes")
        require(self.tasks is None or self.tasks >= 1, "tasks",
                f"must be >= 1 or null for one per input file (got {self.tasks})")
        require(self.slurm_cpus_per_task >= 1, "slurm_cpus_per_task", f"must be >= 1 (got {self.slurm_cpus_per_task})")
        require(self.slurm_mem_per_cpu_gb >= 1, "slurm_mem_per_cpu_gb",
                f"must be >= 1 (got {self.slurm_mem_per_cpu_gb})")
        require(self.executor != "slurm" or bool(self.slurm_partition), "slurm_partition",
                "the slurm executor needs a partition (e.g. slurm_partition: gpu)")


@dataclass
class CorpusResult:
    output_dir: Path
    shards: list[Path]
    stats: dict[str, Any] | None  # None when the stages were submitted to Slurm and have not run yet
    removed: dict[str, list[dict[str, Any]]]
    lengths: Any = None  # DataFrame: chars_before, chars_after per kept document; chars_before of dropped ones


PRESETS_DIR = Path(__file__).parent / "presets"


def load_config(source: str | Path | dict | None = None, **overrides: Any) -> CorpusConfig:
    """A CorpusConfig from a preset name ('default', 'web'), a YAML path or a mapping, with dotted overrides."""
    if isinstance(source, str) and (PRESETS_DIR / f"{source}.yaml").is_file():
        source = PRESETS_DIR / f"{source}.yaml"
    elif source == "default":
        source = None
    return cfgmod.load(CorpusConfig, source, **overrides)


_EXT_FORMAT = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".txt": "text"}


def _input_files(cfg: CorpusConfig) -> list[Path]:
    """Every input file (folders expanded recursively), checked to exist before any work."""
    files: list[Path] = []
    for item in cfg.inputs:
        path = resolve_data_path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"inputs: {item} ({path}) does not exist; pass existing files or folders")
    if not files:
        raise FileNotFoundError(f"inputs: {cfg.inputs} hold no files")
    return [f.resolve() for f in files]


def _format_of(files: list[Path], declared: str) -> str:
    if declared != "auto":
        return declared
    formats = set()
    for f in files:
        suffixes = [s for s in f.suffixes if s not in (".gz", ".zst", ".zstd")]
        formats.add(_EXT_FORMAT.get(suffixes[-1] if suffixes else "", "jsonl"))
    if len(formats) > 1:
        raise ConfigError(f"input_format: inputs mix formats {sorted(formats)}; run them separately or set input_format")
    return formats.pop()


def _reader(fmt: str, paths_file: Path, cfg: CorpusConfig):
    from .readers import ObertJsonlReader, ObertParquetReader, ObertTextReader

    common = {"paths_file": str(paths_file), "limit": cfg.max_documents if cfg.max_documents is not None else -1}
    if fmt == "jsonl":
        return ObertJsonlReader("/", text_key=cfg.text_key, id_key=cfg.id_key, **common)
    if fmt == "parquet":
        return ObertParquetReader("/", text_key=cfg.text_key, id_key=cfg.id_key, **common)
    return ObertTextReader("/", blocks=fmt == "text_blocks", **common)


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
    """In a forked worker, give tqdm a fresh thread lock: the parent's monitor thread may have held it at the fork.

    Only the threading part is replaced (acquiring it here could block forever); tqdm's multiprocessing
    lock is a semaphore shared with the parent, which the parent releases.
    """
    lock_cls = tqdm_std.TqdmDefaultWriteLock
    lock_cls.th_lock = tqdm_std.TRLock()
    current = tqdm_std.tqdm.__dict__.get("_lock")
    if current is not None:
        current.locks = [lock for lock in (getattr(lock_cls, "mp_lock", None), lock_cls.th_lock) if lock is not None]


os.register_at_fork(after_in_child=_fresh_tqdm_lock_after_fork)


def prepare_fork_workers(start_method: str) -> None:
    """Before a pool forks: create tqdm's locks in the parent, so that workers share them instead of each
    creating a multiprocessing semaphore that is never released (resource_tracker's "leaked semaphore")."""
    if start_method == "fork":
        tqdm_std.tqdm.get_lock()


WORKER_PRELOAD = "obert_lib.corpus.worker_preload"
SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # for the forkserver and its workers


def cache_loguru_lib_dirs() -> None:
    """Have loguru find its library folders once per process (and sys.path) rather than once per log sink.

    loguru's ExceptionFormatter expands every sysconfig install scheme for each logger.add (10 ms on the
    2-core CI machine), and datatrove adds three sinks per task (add_task_logger two, close_task_logger
    one): 30 ms of every task's start. The folders depend only on sysconfig and sys.path, the cache key.
    A loguru without this private method is left as it is.
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


def prepare_workers(workers: int, start_method: str, wait: bool = False) -> None:
    """Load what corpus workers need once, before any starts; call it first, so that it overlaps the parent's own preparation.

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


def _executor(runtime: CorpusRuntime, pipeline: list, logging_dir: Path, tasks: int, name: str, depends=None):
    """The configured datatrove executor for one stage (local ones log to files only unless runtime.progress)."""
    if runtime.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        cls = LocalPipelineExecutor if runtime.progress else _quiet_local_executor_class()
        prepare_fork_workers(runtime.start_method)
        return cls(pipeline, tasks=tasks, workers=min(runtime.workers, tasks), logging_dir=str(logging_dir),
                   skip_completed=True, depends=depends, start_method=runtime.start_method)
    if runtime.executor == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        return RayPipelineExecutor(pipeline, tasks=tasks, workers=runtime.workers, logging_dir=str(logging_dir),
                                   skip_completed=True, depends=depends)
    from datatrove.executor import SlurmPipelineExecutor

    return SlurmPipelineExecutor(pipeline, tasks=tasks, time=runtime.slurm_time, partition=runtime.slurm_partition,
                                 cpus_per_task=runtime.slurm_cpus_per_task, mem_per_cpu_gb=runtime.slurm_mem_per_cpu_gb,
                                 workers=runtime.workers, job_name=f"obert-{name}", logging_dir=str(logging_dir),
                                 venv_path=runtime.slurm_venv_path, depends=depends,
                                 slurm_logs_folder=runtime.slurm_logs_folder or str(logging_dir / "slurm_logs"))


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


def _run_stage(executor, runtime: CorpusRuntime, logging_dir: Path) -> None:
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


def _step_stats(logging_dir: Path) -> dict[str, Counter]:
    """Summed counters of each step (by step name) over every task's stats file of one stage."""
    out: dict[str, Counter] = {}
    for f in sorted((logging_dir / "stats").glob("*.json")):
        for step in json.loads(f.read_text()):
            c = out.setdefault(step["name"], Counter())
            for label, value in step["stats"].items():
                c[label] += value["total"] if isinstance(value, dict) else value
    return out


def cleaning_steps(cfg: CorpusConfig, exclusion_writer=None) -> list:
    """The document cleaning steps after the reader, in order: reader drops, length guard, Normalize, LineRules,
    QualityFilter (the filters write their drops with `exclusion_writer`, a datatrove writer or None)."""
    from .steps import LengthGuardFilter, LineRules, Normalize, QualityFilter, ReaderDropFilter

    q = cfg.quality
    return [
        ReaderDropFilter(exclusion_writer=exclusion_writer),
        LengthGuardFilter(cfg.max_chars, exclusion_writer=exclusion_writer),
        Normalize(cfg.normalize.strip_html, cfg.normalize.nfkc, cfg.normalize.traditional_to_simplified),
        LineRules(cfg.lines.remove_navigation, cfg.lines.remove_boilerplate, cfg.lines.remove_seo_spam, cfg.lines.remove_spam,
                  cfg.lines.scrub_private, q.max_spam_line_fraction),
        QualityFilter(q.min_cjk_chars, q.min_cjk_ratio, q.max_top_char_fraction, q.max_duplicate_line_fraction,
                      q.max_punctuation_ratio, q.max_digit_ratio, q.max_duplicate_ngram_fraction,
                      exclusion_writer=exclusion_writer),
    ]


def run(cfg: CorpusConfig | dict | str | None = None, runtime: CorpusRuntime | dict | None = None) -> CorpusResult:
    """Run the corpus stage on datatrove; writes shards, tokenizer, config, stats and removed documents.

    Stages (each a datatrove executor, resumable: completed tasks are skipped on rerun):
    1 clean (read, drop unreadable, normalise, line rules, quality) + exact-dedup signatures,
    2 exact-find, 3 exact-filter (drop exact duplicates) + MinHash signatures, 4 MinHash buckets,
    5 MinHash clusters, 6 paragraphs (drop near duplicates, split) + paragraph signatures,
    7 paragraph-find, 8 annotate (drop repeated paragraphs, annotate, tokenise, write Parquet shards).
    A run that keeps no document, or no paragraph, writes stats.json and raises UserError saying why.
    """
    from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig, ExactDedupFilter, ExactFindDedups
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    from .stage_io import FirstCopyDedupSignature, RankJsonlReader
    from .steps import Annotate, CharMinhashSignature, ParagraphSplit, ShardWriter, cleaned_row, paragraph_dedup_key, removed_row

    cfg = cfgmod.load(CorpusConfig, cfg)
    runtime = cfgmod.load(CorpusRuntime, runtime)
    files = _input_files(cfg)
    guards.check_output_dir(Path(cfg.output_dir).resolve(), [resolve_data_path(item) for item in cfg.inputs])
    fmt = _format_of(files, cfg.input_format)
    kb_path = resolve_data_path(cfg.knowledge_base) if cfg.knowledge_base else None
    if kb_path and not kb_path.is_file():
        raise FileNotFoundError(f"knowledge_base: {kb_path} does not exist; give a KB JSONL or null")
    user_dict = resolve_data_path(cfg.user_dict) if cfg.user_dict else None
    if user_dict and not user_dict.is_file():
        raise FileNotFoundError(f"user_dict: {user_dict} does not exist; give a jieba user dictionary or null")
    vocab = resolve_data_path(cfg.tokenizer.vocab_file) if cfg.tokenizer.vocab_file else None
    if vocab and not vocab.is_file():
        raise FileNotFoundError(f"tokenizer.vocab_file: {vocab} does not exist; give a BERT vocab.txt or null to train one")
    if runtime.executor == "slurm" and vocab is None:
        raise ConfigError("tokenizer.vocab_file: the slurm executor needs a given vocab (training one needs the "
                          "deduplicated corpus first); pass a BERT vocab.txt")

    tasks = min(runtime.tasks or len(files), len(files))  # datatrove readers shard by file: extra tasks would idle
    if runtime.executor == "local":
        prepare_workers(min(runtime.workers, tasks), runtime.start_method)

    t0 = time.perf_counter()
    out = Path(cfg.output_dir).resolve()
    work = out / "_work"
    work.mkdir(parents=True, exist_ok=True)
    # Completed tasks are reused only for the same config and the same input files (path, size, mtime).
    fingerprint = json.dumps({"config": cfgmod.to_dict(cfg),
                              "inputs": [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]}, sort_keys=True)
    previous = work / "fingerprint.json"
    if previous.exists() and previous.read_text() != fingerprint:
        shutil.rmtree(work)
        for old in ("shards", "removed", "tokenizer"):
            shutil.rmtree(out / old, ignore_errors=True)
        work.mkdir()
    previous.write_text(fingerprint)
    cfgmod.save(cfg, out / "config.json")
    paths_file = work / "inputs.txt"
    paths_file.write_text("".join(f"{str(f).lstrip('/')}\n" for f in files), encoding="utf-8")

    def removed_writer(folder: str):
        if not cfg.keep_removed:
            return None
        return JsonlWriter(str(out / "removed"), output_filename=folder + "/${rank}.jsonl", adapter=removed_row,
                           compression=None)

    exact_cfg = ExactDedupConfig(content_getter=exact_dedup_key)
    d = cfg.dedup
    mh_cfg = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=d.bands, hashes_per_bucket=d.num_perm // d.bands,
                           n_grams=d.shingle_size)
    clean = [
        _reader(fmt, paths_file, cfg),
        *cleaning_steps(cfg, removed_writer("${filter_reason}")),
        JsonlWriter(str(work / "cleaned"), output_filename="${rank}.jsonl.gz", adapter=cleaned_row),
    ]
    if d.exact:
        clean.append(FirstCopyDedupSignature(str(work / "exact_sigs"), config=exact_cfg))
    stages = [("clean", clean, tasks)]
    if d.exact:
        stages.append(("exact-find", [ExactFindDedups(str(work / "exact_sigs"), str(work / "exact_dups"), config=exact_cfg)], 1))
    # every later stage reads with RankJsonlReader: task r the file of task r, which the dedup indexes name
    dedup_input = [RankJsonlReader(str(work / "cleaned"))]
    if d.exact:
        dedup_input.append(ExactDedupFilter(str(work / "exact_dups"), config=exact_cfg,
                                            exclusion_writer=removed_writer("exact_duplicate")))
    dedup_input.append(JsonlWriter(str(work / "deduped"), output_filename="${rank}.jsonl.gz", adapter=cleaned_row))
    if d.near:
        dedup_input.append(CharMinhashSignature(str(work / "minhash_sigs"), config=mh_cfg, shingle_size=d.shingle_size))
    stages.append(("exact-filter", dedup_input, tasks))
    if d.near:
        stages.append(("minhash-buckets", [MinhashDedupBuckets(str(work / "minhash_sigs"), str(work / "minhash_buckets"),
                                                                config=mh_cfg)], d.bands))
        stages.append(("minhash-cluster", [MinhashDedupCluster(str(work / "minhash_buckets"), str(work / "minhash_remove"),
                                                                config=mh_cfg)], 1))
    tokenizer_dir = out / "tokenizer"
    final = [RankJsonlReader(str(work / "deduped"))]
    if d.near:
        final.append(MinhashDedupFilter(str(work / "minhash_remove"), exclusion_writer=removed_writer("near_duplicate")))
    para_cfg = ExactDedupConfig(content_getter=functools.partial(paragraph_dedup_key, min_chars=d.min_paragraph_chars))
    final += [
        JsonlWriter(str(work / "kept"), output_filename="${rank}.jsonl.gz", adapter=cleaned_row),
        ParagraphSplit(cfg.min_paragraph_chars),
        JsonlWriter(str(work / "paragraphs"), output_filename="${rank}.jsonl.gz", adapter=cleaned_row),
    ]
    if d.paragraphs:
        final.append(FirstCopyDedupSignature(str(work / "para_sigs"), config=para_cfg))
        stages.append(("paragraphs", final, tasks))
        stages.append(("paragraph-find", [ExactFindDedups(str(work / "para_sigs"), str(work / "para_dups"), config=para_cfg)], 1))
    else:
        stages.append(("paragraphs", final, tasks))
    annotate_pipeline = [RankJsonlReader(str(work / "paragraphs"))]
    if d.paragraphs:
        annotate_pipeline.append(ExactDedupFilter(str(work / "para_dups"), config=para_cfg))
    annotate_pipeline += [
        Annotate(str(tokenizer_dir), str(kb_path) if kb_path else None, cfg.keywords_top_k,
                 tagger=runtime.annotator, user_dict=str(user_dict) if user_dict else None),
        ShardWriter(str(out / "shards")),
    ]

    def tokenizer_step():
        if (tokenizer_dir / "tokenizer.json").is_file():
            return
        if vocab:
            tokenizer = load_vocab_tokenizer(vocab)
        else:
            tokenizer = train_tokenizer(_read_texts(work / "deduped"), cfg.tokenizer.vocab_size, cfg.tokenizer.min_frequency)
        tokenizer.save_pretrained(tokenizer_dir)
        save_char_tables(tokenizer_dir)  # the C WordPiece encoder's character tables, probed once for all workers

    previous_executor = None
    stage_seconds: dict[str, float] = {}
    for name, pipeline, n_tasks in stages:
        if name == "paragraphs" and runtime.executor != "slurm":
            tokenizer_step()
        if runtime.progress:
            print(f"[corpus] stage {name} ({n_tasks} task(s))", flush=True)
        ex = _executor(runtime, pipeline, work / "logs" / name, n_tasks, name, depends=previous_executor)
        if runtime.executor == "slurm":
            previous_executor = ex
        else:
            t_stage = time.perf_counter()
            _run_stage(ex, runtime, work / "logs" / name)
            stage_seconds[name] = round(time.perf_counter() - t_stage, 3)
            if name == "clean" and not any((work / "cleaned").glob("*.jsonl.gz")):  # nothing kept: say why
                raise guards.all_dropped(out, files, cfg, clean[0], _step_stats(work / "logs" / "clean"),
                                         time.perf_counter() - t0, stage_seconds)
    if runtime.executor == "slurm":
        tokenizer_step()
        ex = _executor(runtime, annotate_pipeline, work / "logs" / "annotate", tasks, "annotate", depends=previous_executor)
        ex.run()  # submits the chained jobs and returns
        return CorpusResult(output_dir=out, shards=[], stats=None, removed={})
    if runtime.progress:
        print(f"[corpus] stage annotate ({tasks} task(s))", flush=True)
    t_stage = time.perf_counter()
    _run_stage(_executor(runtime, annotate_pipeline, work / "logs" / "annotate", tasks, "annotate"), runtime,
               work / "logs" / "annotate")
    stage_seconds["annotate"] = round(time.perf_counter() - t_stage, 3)
    result = _collect(out, files, cfg, time.perf_counter() - t0, stage_seconds)
    if not result.stats["paragraphs_out"]:
        raise guards.no_paragraphs(out, cfg, result.stats)
    return result


def _read_texts(folder: Path) -> Iterator[str]:
    """Paragraph texts of the gzipped JSONL files in `folder` (for training a tokenizer)."""
    import gzip

    for f in sorted(folder.glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                yield from json.loads(line)["text"].split("\n")


def _collect(out: Path, files: list[Path], cfg: CorpusConfig, seconds: float, stage_seconds: dict[str, float]) -> CorpusResult:
    """Gather stats from the stages' logs and the removed/ folder; check in = kept + dropped."""
    import gzip

    import pandas as pd

    logs = out / "_work" / "logs"
    clean = _step_stats(logs / "clean")
    annotate = _step_stats(logs / "annotate")
    removed: dict[str, list[dict]] = {}
    for f in sorted((out / "removed").glob("*/*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            removed.setdefault(f.parent.name, []).extend(json.loads(l) for l in fh)
    documents_in = sum(c.get("documents", 0) for c in clean.values())  # only readers count "documents"
    kept_docs: list[dict] = []
    for f in sorted((out / "_work" / "kept").glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            kept_docs.extend(json.loads(l) for l in fh)
    line_stats = Counter()
    for c in (*clean.values(), *annotate.values()):
        for k, v in c.items():
            if k.startswith("line_removed_"):
                line_stats[k[len("line_removed_"):]] += v
            elif k == "private_spans_removed":
                line_stats[k] += v
    ann = Counter()
    for name, c in annotate.items():
        ann.update({k: v for k, v in c.items() if k in ("paragraphs_out", "tokens_out")})
        if "exact-deduplication" in name and c.get("dropped"):
            line_stats["duplicate_paragraph"] += c["dropped"]
    dropped = {reason: len(items) for reason, items in sorted(removed.items())}
    stats_out = {
        "documents_in": documents_in,
        "documents_kept": len(kept_docs),
        "documents_dropped": dropped,
        "lines_removed": dict(sorted(line_stats.items())),
        "paragraphs_out": ann["paragraphs_out"],
        "tokens_out": ann["tokens_out"],
        "vocab_size": len(load_saved_tokenizer(out / "tokenizer")),
        "bytes_in": sum(f.stat().st_size for f in files),
        "bytes_out": sum(p.stat().st_size for p in (out / "shards").glob("*.parquet")),
        "data_hash": hash_files(files),
        "seconds": round(seconds, 3),
        "stage_seconds": stage_seconds,  # wall time of each stage in this call (a resumed stage counts only its rest)
    }
    if cfg.keep_removed and documents_in != len(kept_docs) + sum(dropped.values()):
        raise RuntimeError(f"documents in ({documents_in}) != kept ({len(kept_docs)}) + dropped ({sum(dropped.values())}): "
                           f"a step lost documents; see {logs}")
    (out / "stats.json").write_text(json.dumps(stats_out, ensure_ascii=False, indent=2), encoding="utf-8")
    (out / "README.md").write_text(dataset_card(stats_out, cfg), encoding="utf-8")
    lengths = pd.DataFrame({"doc_id": [r["id"] for r in kept_docs], "chars_before": [r.get("chars_before") for r in kept_docs],
                            "chars_after": [len(r["text"]) for r in kept_docs]})
    dropped = [i for items in removed.values() for i in items]
    dropped_lengths = pd.DataFrame({"doc_id": [i["id"] for i in dropped], "chars_before": [i["chars_before"] for i in dropped],
                                    "chars_after": float("nan")})
    shards = sorted((out / "shards").glob("*.parquet"))
    return CorpusResult(output_dir=out, shards=shards, stats=stats_out, removed=removed,
                        lengths=pd.concat([lengths, dropped_lengths], ignore_index=True))


def dataset_card(stats: dict[str, Any], cfg: CorpusConfig) -> str:
    """A dataset card (markdown) for a corpus output folder: what went in, what came out, how to load it."""
    dropped = "\n".join(f"| {reason} | {n} |" for reason, n in stats["documents_dropped"].items()) or "| (none) | 0 |"
    lines = "\n".join(f"| {reason} | {n} |" for reason, n in stats["lines_removed"].items()) or "| (none) | 0 |"
    return f"""# Corpus shards (obert-lab)

Built by `obert_lib.corpus.run` from {len(cfg.inputs)} input path(s): {", ".join(cfg.inputs)}.
The resolved configuration is `config.json`; counts are `stats.json`.

- documents in: {stats["documents_in"]}, kept: {stats["documents_kept"]}
- paragraphs (rows): {stats["paragraphs_out"]}, tokens: {stats["tokens_out"]}, vocabulary: {stats["vocab_size"]} (`tokenizer/`)
- input data hash: `{stats["data_hash"]}`

| dropped because | documents |
| --- | --- |
{dropped}

| lines removed because | lines |
| --- | --- |
{lines}

## Schema

One row per paragraph: `doc_id`, `source`, `paragraph`, `text`, `input_ids` (no special tokens) and
`word_spans`, `entity_spans`, `keyword_spans`, `phrase_spans`, `clause_spans`, `sentence_spans`: token `[start, end)` pairs;
`knowledge_ids`: knowledge-base entries linked in the paragraph, in order of first mention.

## Loading

```python
from datasets import load_dataset
ds = load_dataset("parquet", data_files="shards/*.parquet", split="train")
```

Dropped documents, with the reason and the input file and line, are under `removed/<reason>/`.
"""


def shard_schema() -> pa.Schema:
    """Parquet schema of a corpus shard: one paragraph per row, spans as token [start, end) pairs."""
    span = pa.list_(pa.list_(pa.int32()))
    return pa.schema([
        ("doc_id", pa.string()), ("source", pa.string()), ("paragraph", pa.int32()), ("text", pa.string()),
        ("input_ids", pa.list_(pa.int32())), *[(f"{t}_spans", span) for t in SPAN_TYPES],
        ("knowledge_ids", pa.list_(pa.string())),
    ])


def load_shards(corpus_dir: str | Path) -> "pa.Table":
    """All shards of a corpus output directory as one Arrow table."""
    paths = sorted((Path(corpus_dir) / "shards").glob("*.parquet"))
    if not paths:
        raise FileNotFoundError(f"no shards under {corpus_dir}/shards: run the corpus stage first")
    return pa.concat_tables([pq.read_table(p) for p in paths])


def stats_table(stats: dict[str, Any]) -> "Any":
    """The kept/dropped counts as a DataFrame (one row per outcome, reasons named)."""
    import pandas as pd

    rows = [("kept", "", stats["documents_kept"])]
    rows += [("dropped", reason, n) for reason, n in stats["documents_dropped"].items()]
    rows += [("line removed", reason, n) for reason, n in stats["lines_removed"].items()]
    return pd.DataFrame(rows, columns=["outcome", "reason", "count"])


def removed_examples(result: CorpusResult, per_reason: int = 2, chars: int = 80) -> "Any":
    """A few dropped documents per reason (id, detail, start of text) for inspection."""
    import pandas as pd

    rows = [{"reason": reason, "id": item["id"], "detail": item["detail"], "text": item["text"][:chars].replace("\n", " ⏎ ")}
            for reason, items in sorted(result.removed.items()) for item in items[:per_reason]]
    return pd.DataFrame(rows, columns=["reason", "id", "detail", "text"])


def plot_lengths(result: CorpusResult):
    """Histograms of document length (characters) before and after cleaning."""
    import matplotlib.pyplot as plt

    df = result.lengths
    fig, ax = plt.subplots(figsize=(6, 3.5))
    top = max(1, int(df["chars_before"].quantile(0.99)))
    bins = list(range(0, top + 50, 50))
    ax.hist(df["chars_before"].clip(upper=top), bins=bins, alpha=0.6, label=f"清洗前 before ({len(df)})")
    kept = df["chars_after"].dropna()
    ax.hist(kept.clip(upper=top), bins=bins, alpha=0.6, label=f"清洗后 after ({len(kept)})")
    ax.set(xlabel="字符数 characters per document", ylabel="文档数 documents", title="文档长度分布 document lengths")
    ax.legend()
    fig.tight_layout()
    return fig


def sample_paragraphs(corpus_dir: str | Path, n: int = 10, min_chars: int = 30) -> list[str]:
    """The first n paragraphs of at least min_chars characters from a corpus output directory."""
    texts = load_shards(corpus_dir).column("text").to_pylist()
    return [t for t in texts if len(t) >= min_chars][:n]
