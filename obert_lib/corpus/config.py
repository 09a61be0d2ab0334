"""Corpus stage settings: CorpusConfig (what changes the corpus) and CorpusRuntime (what changes only speed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .. import config as cfgmod
from ..config import require


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
    # Remove titles with a site suffix, bylines and truncated teasers (page_lines.py). Off by default, as main_text.
    page_furniture: bool = False
    # Keep only the main text block of a page (main_text.py): lines with >= main_text_min_cjk CJK characters
    # are text; a block ends at main_text_max_gap other lines in a row; blocks with at least main_text_min_share
    # of the largest block's CJK characters are kept. Off by default: documents of dumps that are already
    # prose (encyclopedia, QA) have no page furniture around their text. The web preset sets it on, with the
    # thresholds chosen on ../shared/data/web (docs/web_cleaning.md; scripts/web_cleaning.py reports them
    # leave-one-page-out).
    main_text: bool = False
    main_text_min_cjk: int = 10  # a headline teaser or menu item is shorter; a sentence of prose is longer
    main_text_max_gap: int = 4  # a caption or subheading between paragraphs is 1-2 short lines; a menu is more
    main_text_min_share: float = 1.0  # 1.0: the largest block only
    # Also apply the block rule to the main text trafilatura extracted from an HTML page. Off: trafilatura has
    # already chosen that page's main text, and a second chooser after it only cuts it (as in datatrove's
    # pipelines, where quality filters follow the Trafilatura step). Chosen leave-one-page-out with the
    # thresholds on the HTML path (web_eval.grid_configs(html=True); docs/web_cleaning.md).
    main_text_on_html: bool = False

    def __post_init__(self):
        require(
            self.main_text_min_cjk >= 1,
            "main_text_min_cjk",
            f"must be >= 1 (got {self.main_text_min_cjk}); e.g. 10 CJK characters make a text line",
        )
        require(
            self.main_text_max_gap >= 1,
            "main_text_max_gap",
            f"must be >= 1 (got {self.main_text_max_gap}); e.g. 4 short lines in a row end a block",
        )
        require(
            0.0 < self.main_text_min_share <= 1.0,
            "main_text_min_share",
            f"must be within (0, 1] (got {self.main_text_min_share}); 1 keeps the largest block only",
        )


# A few languages of the web for the identifier to choose among. With its full set of 140 languages, py3langid
# labels 7 of the 220 sample-corpus documents other than 'zh': Wu ('wuu', twice, one of them standard Chinese),
# Cantonese, mojibake and symbol lines; restricted to these 11 it labels 219 'zh' and the 220th, a line of
# symbols, 'ar' (the filter leaves letterless text to the quality rules).
DEFAULT_LANGUAGE_CANDIDATES = ["zh", "ja", "ko", "en", "fr", "de", "es", "ru", "ar", "vi", "th"]


@dataclass
class LanguageConfig:
    """Language identification (language.py, py3langid): documents in no language of `keep` are dropped."""

    enabled: bool = False  # the web preset turns it on; dumps of a Chinese source need no check
    keep: list[str] = field(default_factory=lambda: ["zh"])
    candidates: list[str] = field(default_factory=lambda: list(DEFAULT_LANGUAGE_CANDIDATES))
    # The identifier reads this many characters from the start of the cleaned document: a page's language
    # shows in its first paragraphs, and py3langid's time grows with the text (measured on this 2-core machine
    # beside another job: 0.2 ms for 200 characters, 1.0 ms for 1,000, 3.7 ms for 5,000).
    prefix_chars: int = 500

    def __post_init__(self):
        require(bool(self.keep), "keep", "give at least one language code to keep (e.g. keep: [zh])")
        missing = [code for code in self.keep if code not in self.candidates]
        require(
            not missing,
            "keep",
            f"{missing} not among candidates {self.candidates}; add them to language.candidates",
        )
        require(
            self.prefix_chars >= 20,
            "prefix_chars",
            f"must be >= 20 (got {self.prefix_chars}); fewer characters do not tell languages apart",
        )
        if self.enabled:
            from .language import known_languages

            unknown = [code for code in self.candidates if code not in known_languages()]
            require(
                not unknown,
                "candidates",
                f"{unknown} are not py3langid language codes; use ISO 639-1 codes such as zh, ja, en",
            )


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
        require(
            self.min_cjk_chars >= 0, "min_cjk_chars", f"must be >= 0 (got {self.min_cjk_chars}); 0 turns the rule off"
        )
        require(
            0.0 < self.max_top_char_fraction <= 1.0,
            "max_top_char_fraction",
            f"must be within (0, 1] (got {self.max_top_char_fraction}); 1 turns the rule off",
        )
        for key in (
            "min_cjk_ratio",
            "max_duplicate_line_fraction",
            "max_punctuation_ratio",
            "max_digit_ratio",
            "max_duplicate_ngram_fraction",
            "max_spam_line_fraction",
        ):
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
    # Cross-document boilerplate (boilerplate.py): drop every copy of a paragraph line found in at least
    # repeated_line_min_documents documents (site furniture). Off by default; the web preset turns it on.
    repeated_lines: bool = False
    # 10: a site's footer or menu line repeats on every page of the site, so a crawl holding ten of its pages
    # removes it; a quotation or set phrase shared by a handful of articles stays (their later copies still
    # go by the paragraph dedup above).
    repeated_line_min_documents: int = 10

    def __post_init__(self):
        require(self.bands >= 1, "bands", f"must be >= 1 (got {self.bands}); 16 bands of 8 hashes is the default")
        require(
            self.num_perm > 0 and self.num_perm % self.bands == 0,
            "bands",
            f"num_perm ({self.num_perm}) must be a positive multiple of bands ({self.bands}); "
            "e.g. num_perm=128, bands=16",
        )
        require(self.shingle_size >= 1, "shingle_size", f"must be >= 1 (got {self.shingle_size})")
        require(self.min_paragraph_chars >= 0, "min_paragraph_chars", f"must be >= 0 (got {self.min_paragraph_chars})")
        require(
            self.repeated_line_min_documents >= 2,
            "repeated_line_min_documents",
            f"must be >= 2 (got {self.repeated_line_min_documents}); a line in one document is not repeated",
        )


@dataclass
class HtmlConfig:
    """HTML and WARC input (html_input.py reads and decodes pages, html_extract.py keeps their main text)."""

    # A page over this many bytes is dropped as page_too_large, read no further than that. 4 MB is 8.5 times
    # the largest page of ../shared/data/web (youth, 470 KB); trafilatura's time grows with the page: 0.63 s
    # for 3.9 MB, 1.4 s for 7.4 MB, 3.7 s for 18 MB (youth's body repeated, this 2-core machine under load).
    max_page_bytes: int = 4_000_000
    favor_precision: bool = True  # trafilatura's favor_precision, as datatrove's Trafilatura step sets it

    def __post_init__(self):
        require(
            self.max_page_bytes >= 1024,
            "max_page_bytes",
            f"must be >= 1024 bytes (got {self.max_page_bytes}); e.g. 4000000 for 4 MB",
        )


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
    # warc: WARC or WET files (.warc, .warc.gz, .warc.wet.gz); html: HTML files (.html, .htm); auto: by suffix
    input_format: Literal["auto", "jsonl", "parquet", "text", "text_blocks", "warc", "html"] = "auto"
    text_key: str = "text"
    id_key: str = "id"
    knowledge_base: str | None = "sample:kb.jsonl"
    user_dict: str | None = None  # jieba-format user dictionary (word [freq] [tag]) added to the segmenter
    html: HtmlConfig = field(default_factory=HtmlConfig)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    lines: LineRulesConfig = field(default_factory=LineRulesConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
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
        require(
            bool(self.text_key) and bool(self.id_key),
            "text_key" if not self.text_key else "id_key",
            "must name a field (e.g. text_key: text)",
        )
        require(self.max_chars > 0, "max_chars", f"must be > 0 (got {self.max_chars})")
        require(
            self.keywords_top_k >= 0, "keywords_top_k", f"must be >= 0 (got {self.keywords_top_k}; 0 marks no keywords)"
        )
        require(self.min_paragraph_chars >= 1, "min_paragraph_chars", f"must be >= 1 (got {self.min_paragraph_chars})")
        require(
            self.max_documents is None or self.max_documents >= 1,
            "max_documents",
            f"must be >= 1 or null for all (got {self.max_documents})",
        )


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
    # workers fork from a server process that run() starts first and that imports the pipeline and builds
    # jieba's tables once (workers.prepare_workers); without that preload each worker rebuilt them, a third of
    # a 9 MB task (docs/performance.md, 2026-11-22). "fork" copies the calling process, which loads the same
    # once itself, as 1 worker does: the first task starts about 0.25 s sooner, as the server's fresh interpreter
    # imports nothing twice (2-worker runs 7% shorter, docs/performance.md, 2026-12-06). It is only safe from a
    # process without other threads: the test suite, after its torch tests (GNU OpenMP's thread pool), hung a
    # forked worker. "auto" takes fork where workers.fork_is_safe finds no Python thread besides this one and
    # no OpenMP runtime loaded (Linux), else forkserver (notebooks: the kernel runs threads). A forked worker
    # gets a fresh tqdm lock (workers._fresh_tqdm_lock_after_fork). "spawn" shares nothing and pays the imports
    # per worker.
    start_method: Literal["auto", "fork", "forkserver", "spawn"] = "auto"
    # Slurm only (see env/cluster/preprocess_slurm.yaml)
    slurm_partition: str | None = None
    slurm_time: str = "24:00:00"
    slurm_cpus_per_task: int = 1
    slurm_mem_per_cpu_gb: int = 2
    slurm_venv_path: str | None = None
    slurm_logs_folder: str | None = None

    def __post_init__(self):
        require(self.workers >= 1, "workers", f"must be >= 1 (got {self.workers}); e.g. workers=2 for two processes")
        require(
            self.tasks is None or self.tasks >= 1,
            "tasks",
            f"must be >= 1 or null for one per input file (got {self.tasks})",
        )
        require(self.slurm_cpus_per_task >= 1, "slurm_cpus_per_task", f"must be >= 1 (got {self.slurm_cpus_per_task})")
        require(
            self.slurm_mem_per_cpu_gb >= 1, "slurm_mem_per_cpu_gb", f"must be >= 1 (got {self.slurm_mem_per_cpu_gb})"
        )
        require(
            self.executor != "slurm" or bool(self.slurm_partition),
            "slurm_partition",
            "the slurm executor needs a partition (e.g. slurm_partition: gpu)",
        )


PRESETS_DIR = Path(__file__).parent / "presets"


def load_config(source: str | Path | dict | None = None, **overrides: Any) -> CorpusConfig:
    """A CorpusConfig from a preset name ('default', 'web'), a YAML path or a mapping, with dotted overrides."""
    if isinstance(source, str) and (PRESETS_DIR / f"{source}.yaml").is_file():
        source = PRESETS_DIR / f"{source}.yaml"
    elif source == "default":
        source = None
    return cfgmod.load(CorpusConfig, source, **overrides)
