"""Corpus stage: read -> normalise -> line rules -> quality rules -> dedup -> split -> annotate -> tokenise -> Parquet.

Three stages: clean (read, clean, write the cleaned documents once, hash them), dedup (one task decides over the
whole corpus from the hashes alone), annotate (read the cleaned documents once more, apply the decisions, split,
annotate, tokenise, write the shards).

The stage graph is data, as datatrove's own examples/fineweb.py declares its pipeline: one small function per
stage returns that stage's datatrove steps, STAGES lists the stages in order, and run() runs the table. The
settings are in config.py; the steps in cleaning.py, main_text.py, language.py, dedup_index.py, kept_paragraphs.py,
paragraphs.py, shards.py and stage_io.py; the worker processes in workers.py; the stats, the in = kept + dropped
check and the dataset card in report.py.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from .. import config as cfgmod
from ..config import ConfigError
from ..paths import resolve_data_path
from . import guards
from .config import CorpusConfig, CorpusRuntime
from .inputs import MARKUP_FORMATS, input_files, input_format, input_reader
from .report import CorpusResult, collect, step_counters
from .workers import prepare_workers, resolve_start_method, run_stage, stage_executor


@dataclass
class Plan:
    """What the stage functions read: the run's settings, its input files and where its output goes."""

    cfg: CorpusConfig
    runtime: CorpusRuntime
    files: list[Path]
    fmt: str  # input format: jsonl, parquet, text, text_blocks, warc or html
    out: Path
    tasks: int  # tasks of the per-input stages: at most one per input file (datatrove readers shard by file)
    knowledge_base: Path | None
    user_dict: Path | None
    vocab: Path | None

    @property
    def work(self) -> Path:
        return self.out / "_work"

    @property
    def tokenizer_dir(self) -> Path:
        return self.out / "tokenizer"

    def removed_writer(self, folder: str):
        """The JSONL writer of dropped documents into removed/<folder>/ (None unless cfg.keep_removed)."""
        if not self.cfg.keep_removed:
            return None
        from .stage_io import RemovedJsonlWriter

        return RemovedJsonlWriter(str(self.out / "removed"), folder + "/${rank}.jsonl")

    def jsonl_writer(self, folder: str):
        """The writer of one stage's intermediate documents into _work/<folder>/<rank>.jsonl.gz."""
        from .stage_io import IntermediateJsonlWriter

        return IntermediateJsonlWriter(str(self.work / folder))

    def rank_reader(self, folder: str):
        """The reader of what the same task rank of an earlier stage wrote into _work/<folder>/."""
        from .stage_io import RankJsonlReader

        return RankJsonlReader(str(self.work / folder))


def cleaning_steps(cfg: CorpusConfig, exclusion_writer=None, html: bool = False) -> list:
    """The document cleaning steps after the reader, in order: reader drops, ExtractMainText (`html`: pages
    read from WARC or HTML files), length guard, Normalize, LineRules, PageLineRules (lines.page_furniture),
    MainTextBlocks (lines.main_text), LanguageFilter (language.enabled), QualityFilter (the filters write their
    drops with `exclusion_writer`, a datatrove writer or None)."""
    from .cleaning import LengthGuardFilter, LineRules, Normalize, QualityFilter, ReaderDropFilter

    q, lines, lang = cfg.quality, cfg.lines, cfg.language
    steps = [ReaderDropFilter(exclusion_writer=exclusion_writer)]
    if html:
        from .html_extract import ExtractMainText

        steps.append(ExtractMainText(cfg.html.favor_precision, exclusion_writer=exclusion_writer))
    steps += [
        LengthGuardFilter(cfg.max_chars, exclusion_writer=exclusion_writer),
        Normalize(cfg.normalize.strip_html, cfg.normalize.nfkc, cfg.normalize.traditional_to_simplified),
        LineRules(
            lines.remove_navigation,
            lines.remove_boilerplate,
            lines.remove_seo_spam,
            lines.remove_spam,
            lines.scrub_private,
            q.max_spam_line_fraction,
        ),
    ]
    if lines.page_furniture:
        from .page_lines import PageLineRules

        steps.append(PageLineRules())
    if lines.main_text:
        from .main_text import MainTextBlocks

        steps.append(
            MainTextBlocks(
                lines.main_text_min_cjk, lines.main_text_max_gap, lines.main_text_min_share, lines.main_text_on_html
            )
        )
    if lang.enabled:  # before the quality rules: a Japanese page is named as such, not as low_cjk_ratio
        from .language import LanguageFilter

        steps.append(LanguageFilter(lang.keep, lang.candidates, lang.prefix_chars, exclusion_writer=exclusion_writer))
    steps.append(
        QualityFilter(
            q.min_cjk_chars,
            q.min_cjk_ratio,
            q.max_top_char_fraction,
            q.max_duplicate_line_fraction,
            q.max_punctuation_ratio,
            q.max_digit_ratio,
            q.max_duplicate_ngram_fraction,
            exclusion_writer=exclusion_writer,
        )
    )
    return steps


def dedup_on(cfg: CorpusConfig) -> bool:
    """Whether any dedup rule is on (otherwise the dedup stage does not run and every document is kept)."""
    d = cfg.dedup
    return d.exact or d.near or d.paragraphs or d.repeated_lines


def clean(p: Plan) -> list:
    """Read; drop unreadable and too long documents; normalise; line rules; quality rules; write the cleaned
    documents; hash them for the dedup decision (dedup_index.DedupSignatures)."""
    steps = [
        input_reader(p.fmt, p.work / "inputs.txt", p.cfg),
        *cleaning_steps(p.cfg, p.removed_writer("${filter_reason}"), html=p.fmt in MARKUP_FORMATS),
        p.jsonl_writer("cleaned"),
    ]
    if dedup_on(p.cfg):
        from .dedup_index import DedupSignatures

        steps.append(DedupSignatures(str(p.work / "dedup_signatures"), p.cfg.dedup, p.cfg.min_paragraph_chars))
    return steps


def dedup(p: Plan) -> list:
    """Decide over the whole corpus what goes: exact and near duplicate documents, duplicate paragraphs,
    repeated lines (dedup_index.DedupDecisions)."""
    from .dedup_index import DedupDecisions

    return [DedupDecisions(str(p.work / "dedup_signatures"), str(p.work / "dedup_decisions"), p.tasks, p.cfg.dedup)]


def annotate(p: Plan) -> list:
    """Drop what the dedup stage decided against; split the kept documents into paragraphs; annotate and
    tokenise them; write the Parquet shards."""
    from .kept_paragraphs import KeptParagraphs
    from .paragraphs import Annotate
    from .shards import ShardWriter

    removed = {reason: p.removed_writer(reason) for reason in ("exact_duplicate", "near_duplicate")}
    decisions = str(p.work / "dedup_decisions") if dedup_on(p.cfg) else None
    return [
        p.rank_reader("cleaned"),
        KeptParagraphs(decisions, p.cfg.min_paragraph_chars, str(p.work / "kept"), removed),
        Annotate(
            str(p.tokenizer_dir),
            str(p.knowledge_base) if p.knowledge_base else None,
            p.cfg.keywords_top_k,
            tagger=p.runtime.annotator,
            user_dict=str(p.user_dict) if p.user_dict else None,
        ),
        ShardWriter(str(p.out / "shards")),
    ]


def prepare_tokenizer(p: Plan) -> None:
    """tokenizer/ from the given vocab, or trained on the kept documents; kept when already there."""
    from .kept_paragraphs import kept_documents
    from .tokenizer import save_vocab_tokenizer, train_tokenizer
    from .wordpiece import save_char_tables

    if (p.tokenizer_dir / "tokenizer.json").is_file():
        return
    if p.vocab:
        save_vocab_tokenizer(p.vocab, p.tokenizer_dir)
    else:
        tok = p.cfg.tokenizer
        texts = (para for doc in kept_documents(p.work) for para in doc["text"].split("\n"))
        train_tokenizer(texts, tok.vocab_size, tok.min_frequency).save_pretrained(p.tokenizer_dir)
    save_char_tables(p.tokenizer_dir)  # the C WordPiece encoder's character tables, probed once for all workers


@dataclass(frozen=True)
class Stage:
    """One datatrove executor of the corpus stage: its steps, how many tasks run them, and when it runs."""

    name: str
    steps: Callable[[Plan], list]
    tasks: Callable[[Plan], int]
    runs_if: Callable[[CorpusConfig], bool] = lambda cfg: True
    before: Callable[[Plan], None] | None = None  # done before the stage's executor is made


def per_input(p: Plan) -> int:
    return p.tasks


def one(p: Plan) -> int:
    return 1


STAGES = (
    Stage("clean", clean, per_input),
    Stage("dedup", dedup, one, runs_if=dedup_on),
    Stage("annotate", annotate, per_input, before=prepare_tokenizer),
)


def plan_run(cfg: CorpusConfig, runtime: CorpusRuntime) -> Plan:
    """Check the inputs, the output folder and the files the config names, before any work."""
    files = input_files(cfg)
    guards.check_output_dir(Path(cfg.output_dir).resolve(), [resolve_data_path(item) for item in cfg.inputs])
    fmt = input_format(files, cfg.input_format)
    kb_path = resolve_data_path(cfg.knowledge_base) if cfg.knowledge_base else None
    if kb_path and not kb_path.is_file():
        raise FileNotFoundError(f"knowledge_base: {kb_path} does not exist; give a KB JSONL or null")
    user_dict = resolve_data_path(cfg.user_dict) if cfg.user_dict else None
    if user_dict and not user_dict.is_file():
        raise FileNotFoundError(f"user_dict: {user_dict} does not exist; give a jieba user dictionary or null")
    vocab = resolve_data_path(cfg.tokenizer.vocab_file) if cfg.tokenizer.vocab_file else None
    if vocab and not vocab.is_file():
        raise FileNotFoundError(
            f"tokenizer.vocab_file: {vocab} does not exist; give a BERT vocab.txt or null to train one"
        )
    if runtime.executor == "slurm" and vocab is None:
        raise ConfigError(
            "tokenizer.vocab_file: the slurm executor needs a given vocab (training one needs the "
            "deduplicated corpus first); pass a BERT vocab.txt"
        )
    tasks = min(runtime.tasks or len(files), len(files))  # datatrove readers shard by file: extra tasks would idle
    return Plan(cfg, runtime, files, fmt, Path(cfg.output_dir).resolve(), tasks, kb_path, user_dict, vocab)


def prepare_output(p: Plan) -> None:
    """Create _work/; clear the output of a run with another config or other inputs; save config.json and the
    list of input files the readers read."""
    work = p.work
    work.mkdir(parents=True, exist_ok=True)
    # Completed tasks are reused only for the same config and the same input files (path, size, mtime).
    fingerprint = json.dumps(
        {
            "config": cfgmod.to_dict(p.cfg),
            "inputs": [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in p.files],
        },
        sort_keys=True,
    )
    previous = work / "fingerprint.json"
    if previous.exists() and previous.read_text() != fingerprint:
        shutil.rmtree(work)
        for old in ("shards", "removed", "tokenizer"):
            shutil.rmtree(p.out / old, ignore_errors=True)
        work.mkdir()
    previous.write_text(fingerprint)
    cfgmod.save(p.cfg, p.out / "config.json")
    (work / "inputs.txt").write_text("".join(f"{str(f).lstrip('/')}\n" for f in p.files), encoding="utf-8")


def overlap_forkserver_start(p: Plan) -> Callable[[], None] | None:
    """With several forkserver workers, this process waits for the server's preload (the pipeline modules and
    jieba's tables, worker_preload) before the first clean task starts, one core idle. Do its own later work
    meanwhile in a thread: the tokenizer, when a vocab is given (a trained one needs the deduplicated
    documents). Returns the thread's join, which re-raises its error; None where there is no such wait."""
    r = p.runtime
    if r.executor != "local" or r.start_method != "forkserver" or min(r.workers, p.tasks) <= 1 or not p.vocab:
        return None
    errors: list[BaseException] = []

    def work():
        try:
            prepare_tokenizer(p)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread by join
            errors.append(exc)

    thread = threading.Thread(target=work, name="corpus-main-preload", daemon=True)
    thread.start()

    def join():
        thread.join()
        if errors:
            raise errors[0]

    return join


def run(cfg: CorpusConfig | dict | str | None = None, runtime: CorpusRuntime | dict | None = None) -> CorpusResult:
    """Run the corpus stage on datatrove; writes shards, tokenizer, config, stats and removed documents.

    Each stage of STAGES is a datatrove executor, resumable: completed tasks are skipped on rerun. With Slurm
    the stages are submitted as chained jobs and run() returns at once (stats None). A run that keeps no
    document, or no paragraph, writes stats.json and raises UserError saying why.
    """
    cfg = cfgmod.load(CorpusConfig, cfg)
    runtime = cfgmod.load(CorpusRuntime, runtime)
    runtime = replace(runtime, start_method=resolve_start_method(runtime.start_method))  # "auto", decided once
    plan = plan_run(cfg, runtime)
    if runtime.executor == "local":
        workers = min(runtime.workers, plan.tasks)
        if runtime.progress and workers > 1:
            print(f"[corpus] {workers} workers, started by {runtime.start_method}", flush=True)
        prepare_workers(workers, runtime.start_method)
    t0 = time.perf_counter()
    prepare_output(plan)
    side_work = overlap_forkserver_start(plan)
    logs = plan.work / "logs"
    stage_seconds: dict[str, float] = {}
    previous = None
    for stage in STAGES:
        if not stage.runs_if(cfg):
            continue
        if side_work is not None and stage.name != "clean":
            side_work()
            side_work = None
        if stage.before:
            stage.before(plan)
        steps, tasks = stage.steps(plan), stage.tasks(plan)
        if runtime.progress:
            print(f"[corpus] stage {stage.name} ({tasks} task(s))", flush=True)
        executor = stage_executor(runtime, steps, logs / stage.name, tasks, stage.name, depends=previous)
        if runtime.executor == "slurm":  # each stage's jobs wait for the previous stage's
            previous = executor
            continue
        start = time.perf_counter()
        run_stage(executor, runtime, logs / stage.name)
        stage_seconds[stage.name] = round(time.perf_counter() - start, 3)
        if stage.name == "clean" and not any((plan.work / "cleaned").glob("*.jsonl.gz")):  # nothing kept: say why
            raise guards.all_dropped(
                plan.out,
                plan.files,
                cfg,
                steps[0],
                step_counters(logs / "clean"),
                time.perf_counter() - t0,
                stage_seconds,
            )
    if runtime.executor == "slurm":
        previous.run()  # submits the chained jobs and returns
        return CorpusResult(output_dir=plan.out, shards=[], stats=None, removed={})
    result = collect(plan.out, plan.files, cfg, time.perf_counter() - t0, stage_seconds)
    if not result.stats["paragraphs_out"]:
        raise guards.no_paragraphs(plan.out, cfg, result.stats)
    return result
