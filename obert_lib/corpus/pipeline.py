"""Corpus stage: read -> normalise -> line rules -> quality rules -> dedup -> split -> annotate -> tokenise -> Parquet.

The stage graph is data, as datatrove's own examples/fineweb.py declares its pipeline: one small function per
stage returns that stage's datatrove steps, STAGES lists the stages in order, and run() runs the table. The
settings are in config.py; the steps in cleaning.py, main_text.py, language.py, dedup.py, boilerplate.py,
paragraphs.py, shards.py and stage_io.py; the worker processes in workers.py; the stats, the in = kept + dropped
check and the dataset card in report.py.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import config as cfgmod
from ..config import ConfigError
from ..paths import resolve_data_path
from . import guards
from .config import CorpusConfig, CorpusRuntime
from .inputs import MARKUP_FORMATS, input_files, input_format, input_reader
from .report import CorpusResult, collect, step_counters
from .workers import prepare_workers, run_stage, stage_executor


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
        from datatrove.pipeline.writers import JsonlWriter

        from .stage_io import removed_row

        return JsonlWriter(
            str(self.out / "removed"), output_filename=folder + "/${rank}.jsonl", adapter=removed_row, compression=None
        )

    def jsonl_writer(self, folder: str):
        """The writer of one stage's intermediate documents into _work/<folder>/<rank>.jsonl.gz."""
        from .stage_io import IntermediateJsonlWriter

        return IntermediateJsonlWriter(str(self.work / folder))

    def rank_reader(self, folder: str):
        """The reader of what the same task rank of an earlier stage wrote into _work/<folder>/."""
        from .stage_io import RankJsonlReader

        return RankJsonlReader(str(self.work / folder))


def exact_config():
    """datatrove's exact-dedup settings for documents (dedup.exact_dedup_key)."""
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig

    from .dedup import exact_dedup_key

    return ExactDedupConfig(content_getter=exact_dedup_key)


def minhash_config(p: Plan):
    """datatrove's MinHash settings: 64-bit hashes, dedup.bands buckets of num_perm / bands hashes."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig

    d = p.cfg.dedup
    return MinhashConfig(
        hash_config=HashConfig(precision=64),
        num_buckets=d.bands,
        hashes_per_bucket=d.num_perm // d.bands,
        n_grams=d.shingle_size,
    )


def paragraph_config(p: Plan):
    """datatrove's exact-dedup settings for paragraphs (dedup.paragraph_dedup_key)."""
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig

    from .dedup import paragraph_dedup_key

    key = functools.partial(paragraph_dedup_key, min_chars=p.cfg.dedup.min_paragraph_chars)
    return ExactDedupConfig(content_getter=key)


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

        steps.append(MainTextBlocks(lines.main_text_min_cjk, lines.main_text_max_gap, lines.main_text_min_share))
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


def clean(p: Plan) -> list:
    """Read; drop unreadable and too long documents; normalise; line rules; quality rules; exact-dedup signatures."""
    from .stage_io import FirstCopyDedupSignature

    steps = [
        input_reader(p.fmt, p.work / "inputs.txt", p.cfg),
        *cleaning_steps(p.cfg, p.removed_writer("${filter_reason}"), html=p.fmt in MARKUP_FORMATS),
        p.jsonl_writer("cleaned"),
    ]
    if p.cfg.dedup.exact:
        steps.append(FirstCopyDedupSignature(str(p.work / "exact_sigs"), config=exact_config()))
    return steps


def exact_find(p: Plan) -> list:
    """Find the exact duplicates among all tasks' signatures (the first copy in input order is kept)."""
    from datatrove.pipeline.dedup.exact_dedup import ExactFindDedups

    return [ExactFindDedups(str(p.work / "exact_sigs"), str(p.work / "exact_dups"), config=exact_config())]


def exact_filter(p: Plan) -> list:
    """Drop exact duplicates; MinHash signatures of the rest."""
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupFilter

    from .dedup import CharMinhashSignature

    d = p.cfg.dedup
    steps = [p.rank_reader("cleaned")]
    if d.exact:
        steps.append(
            ExactDedupFilter(
                str(p.work / "exact_dups"), config=exact_config(), exclusion_writer=p.removed_writer("exact_duplicate")
            )
        )
    steps.append(p.jsonl_writer("deduped"))
    if d.near:
        steps.append(
            CharMinhashSignature(str(p.work / "minhash_sigs"), config=minhash_config(p), shingle_size=d.shingle_size)
        )
    return steps


def minhash_buckets(p: Plan) -> list:
    """Match the MinHash signatures bucket by bucket (one task per bucket)."""
    from .dedup import SortedMinhashBuckets

    return [
        SortedMinhashBuckets(str(p.work / "minhash_sigs"), str(p.work / "minhash_buckets"), config=minhash_config(p))
    ]


def minhash_cluster(p: Plan) -> list:
    """Cluster the bucket matches: which documents are near duplicates of an earlier one."""
    from datatrove.pipeline.dedup import MinhashDedupCluster

    return [
        MinhashDedupCluster(str(p.work / "minhash_buckets"), str(p.work / "minhash_remove"), config=minhash_config(p))
    ]


def paragraphs(p: Plan) -> list:
    """Drop near duplicates; keep the documents; split them into paragraphs; paragraph signatures."""
    from datatrove.pipeline.dedup import MinhashDedupFilter

    from .paragraphs import ParagraphSplit
    from .stage_io import FirstCopyDedupSignature

    d = p.cfg.dedup
    steps = [p.rank_reader("deduped")]
    if d.near:
        steps.append(
            MinhashDedupFilter(str(p.work / "minhash_remove"), exclusion_writer=p.removed_writer("near_duplicate"))
        )
    steps += [p.jsonl_writer("kept"), ParagraphSplit(p.cfg.min_paragraph_chars), p.jsonl_writer("paragraphs")]
    if d.repeated_lines:  # passes the paragraphs on; the dedup signature below is the last step (it yields none)
        from .boilerplate import LineDocumentHashes

        steps.append(LineDocumentHashes(str(p.work / "line_hashes")))
    if d.paragraphs:
        steps.append(FirstCopyDedupSignature(str(p.work / "para_sigs"), config=paragraph_config(p)))
    return steps


def paragraph_find(p: Plan) -> list:
    """Find the paragraphs already seen in an earlier kept document."""
    from datatrove.pipeline.dedup.exact_dedup import ExactFindDedups

    return [ExactFindDedups(str(p.work / "para_sigs"), str(p.work / "para_dups"), config=paragraph_config(p))]


def repeated_lines(p: Plan) -> list:
    """Count every line by the documents it is found in; keep the hashes of those in enough documents."""
    from .boilerplate import RepeatedLineCount

    d = p.cfg.dedup
    return [
        RepeatedLineCount(
            str(p.work / "line_hashes"), str(p.work / "repeated_lines.npy"), d.repeated_line_min_documents
        )
    ]


def annotate(p: Plan) -> list:
    """Drop repeated paragraphs; annotate and tokenise; write the Parquet shards."""
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupFilter

    from .paragraphs import Annotate
    from .shards import ShardWriter

    steps = [p.rank_reader("paragraphs")]
    if p.cfg.dedup.paragraphs:
        steps.append(ExactDedupFilter(str(p.work / "para_dups"), config=paragraph_config(p)))
    if p.cfg.dedup.repeated_lines:
        from .boilerplate import RepeatedLineFilter

        steps.append(RepeatedLineFilter(str(p.work / "repeated_lines.npy")))
    steps += [
        Annotate(
            str(p.tokenizer_dir),
            str(p.knowledge_base) if p.knowledge_base else None,
            p.cfg.keywords_top_k,
            tagger=p.runtime.annotator,
            user_dict=str(p.user_dict) if p.user_dict else None,
        ),
        ShardWriter(str(p.out / "shards")),
    ]
    return steps


def prepare_tokenizer(p: Plan) -> None:
    """tokenizer/ from the given vocab, or trained on the deduplicated documents; kept when already there."""
    from .stage_io import paragraph_texts
    from .tokenizer import load_vocab_tokenizer, train_tokenizer
    from .wordpiece import save_char_tables

    if (p.tokenizer_dir / "tokenizer.json").is_file():
        return
    if p.vocab:
        tokenizer = load_vocab_tokenizer(p.vocab)
    else:
        tok = p.cfg.tokenizer
        tokenizer = train_tokenizer(paragraph_texts(p.work / "deduped"), tok.vocab_size, tok.min_frequency)
    tokenizer.save_pretrained(p.tokenizer_dir)
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


def per_band(p: Plan) -> int:
    return p.cfg.dedup.bands


STAGES = (
    Stage("clean", clean, per_input),
    Stage("exact-find", exact_find, one, runs_if=lambda cfg: cfg.dedup.exact),
    Stage("exact-filter", exact_filter, per_input),
    Stage("minhash-buckets", minhash_buckets, per_band, runs_if=lambda cfg: cfg.dedup.near),
    Stage("minhash-cluster", minhash_cluster, one, runs_if=lambda cfg: cfg.dedup.near),
    Stage("paragraphs", paragraphs, per_input, before=prepare_tokenizer),
    Stage("paragraph-find", paragraph_find, one, runs_if=lambda cfg: cfg.dedup.paragraphs),
    Stage("repeated-lines", repeated_lines, one, runs_if=lambda cfg: cfg.dedup.repeated_lines),
    Stage("annotate", annotate, per_input),
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


def run(cfg: CorpusConfig | dict | str | None = None, runtime: CorpusRuntime | dict | None = None) -> CorpusResult:
    """Run the corpus stage on datatrove; writes shards, tokenizer, config, stats and removed documents.

    Each stage of STAGES is a datatrove executor, resumable: completed tasks are skipped on rerun. With Slurm
    the stages are submitted as chained jobs and run() returns at once (stats None). A run that keeps no
    document, or no paragraph, writes stats.json and raises UserError saying why.
    """
    cfg = cfgmod.load(CorpusConfig, cfg)
    runtime = cfgmod.load(CorpusRuntime, runtime)
    plan = plan_run(cfg, runtime)
    if runtime.executor == "local":
        prepare_workers(min(runtime.workers, plan.tasks), runtime.start_method)
    t0 = time.perf_counter()
    prepare_output(plan)
    logs = plan.work / "logs"
    stage_seconds: dict[str, float] = {}
    previous = None
    for stage in STAGES:
        if not stage.runs_if(cfg):
            continue
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
