"""The corpus pipeline's datatrove steps: each does one thing and counts what it removes under a named reason."""
from __future__ import annotations

import contextlib
import resource
from collections import Counter
from time import perf_counter
from typing import Any

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
from datatrove.pipeline.filters.base_filter import BaseFilter, get_filter_result
from datatrove.pipeline.writers import ParquetWriter
from datatrove.utils.typeshelper import StatHints

from . import filters, normalize
from .annotate import SPAN_TYPES
from .dedup import shingles
from .readers import DROP_KEY


def report_step_time(step: PipelineStep, seconds: float) -> None:
    """Add a step's summed per-document time to datatrove's stats as one figure per task.

    datatrove's track_time() per document costs about 2 µs, more than several of our rules on a short
    paragraph, so the steps sum perf_counter() differences themselves and report once.
    """
    step.stats.time_stats.update(seconds, unit="task")


class CountingFilter(BaseFilter):
    """A datatrove filter whose counts (total, forwarded, dropped, dropped_<reason>) are summed locally.

    BaseFilter.run updates three or four shared stats per document, which on short paragraphs costs
    more than most rules; the totals written to the logs are the same.
    """

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        total = forwarded = 0
        dropped: Counter = Counter()  # reason -> count ("" when the filter gives none)
        spent = 0.0
        with self.exclusion_writer if self.exclusion_writer else contextlib.nullcontext() as writer:
            for doc in data:
                start = perf_counter()
                result = self.filter(doc)
                spent += perf_counter() - start
                total += 1
                if result is True:  # the common case, without get_filter_result's tuple
                    forwarded += 1
                    yield doc
                    continue
                keep, reason = get_filter_result(result)
                if keep:
                    forwarded += 1
                    yield doc
                    continue
                dropped[reason or ""] += 1
                if writer:
                    if reason:
                        doc.metadata["filter_reason"] = reason
                    writer.write(doc, rank)
        for label, value in ((StatHints.total, total), (StatHints.forwarded, forwarded),
                             (StatHints.dropped, sum(dropped.values()))):
            if value:
                self.stat_update(label, value=value)
        for reason, value in dropped.items():
            if reason:
                self.stat_update(f"dropped_{reason}", value=value)
        report_step_time(self, spent)


class ReaderDropFilter(CountingFilter):
    """Drop the placeholders readers emit for unreadable input, under the reader's reason."""

    name = "reader drops"

    def filter(self, doc: Document):
        reason = doc.metadata.get(DROP_KEY)
        return (False, reason) if reason else True


class LengthGuardFilter(CountingFilter):
    """Drop documents longer than `max_chars` before any costly step (a 10 MB single line, say)."""

    name = "length guard"

    def __init__(self, max_chars: int, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.max_chars = max_chars

    def filter(self, doc: Document):
        if len(doc.text) > self.max_chars:
            doc.metadata["detail"] = f"{len(doc.text)} chars > {self.max_chars}"
            doc.metadata["chars_before"] = len(doc.text)
            doc.text = doc.text[:2000]  # keep the removed/ record small
            return False, "too_long"
        return True


class Normalize(PipelineStep):
    """HTML remnants, NFKC (Chinese punctuation kept), control characters, whitespace, optional t2s."""

    name = "normalize"
    type = "✂️ - FORMATTER"

    def __init__(self, strip_html: bool = True, nfkc: bool = True, traditional_to_simplified: bool = True):
        super().__init__()
        self.strip_html, self.nfkc, self.t2s = strip_html, nfkc, traditional_to_simplified

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        normalizer = normalize.DocumentNormalizer(self.strip_html, self.nfkc, self.t2s)
        spent = 0.0
        for doc in data:
            start = perf_counter()
            doc.metadata["chars_before"] = len(doc.text)
            doc.text = normalizer(doc.text)
            spent += perf_counter() - start
            yield doc
        report_step_time(self, spent)


class LineRules(PipelineStep):
    """Remove boilerplate, navigation, SEO-spam and spam lines; scrub URLs, e-mails and phone numbers.

    A document where at least `max_spam_line_fraction` of the lines carry spam keywords is tagged for
    QualityFilter to drop whole (an advert), rather than stripped line by line.
    """

    name = "line rules"
    type = "✂️ - FORMATTER"

    def __init__(self, remove_navigation=True, remove_boilerplate=True, remove_seo_spam=True, remove_spam=True,
                 scrub_private=True, max_spam_line_fraction: float = 0.5):
        super().__init__()
        self.nav, self.boiler, self.seo, self.spam, self.private = (remove_navigation, remove_boilerplate, remove_seo_spam,
                                                                    remove_spam, scrub_private)
        self.max_spam_line_fraction = max_spam_line_fraction
        self.rules = filters.line_rule_bits(scrub_private, remove_spam, remove_boilerplate, remove_navigation, remove_seo_spam)

    def clean(self, doc: Document) -> None:
        """Apply the line rules to one document in place."""
        text = doc.text
        if not filters.line_rules_may_apply(text, self.rules):  # most documents: no rule can remove anything
            doc.text = normalize.remove_spaces_between_cjk(text)
            self._check_title(doc)
            return
        self.apply_rules(doc)

    def apply_rules(self, doc: Document) -> None:
        """clean() without its one-scan screen: every enabled rule, line by line (the reference for the screen)."""
        text = doc.text
        if self.private:
            text, removed = filters.scrub_private(text)
            if removed:
                self.stat_update("private_spans_removed", value=removed)
            text = normalize.normalize_whitespace(text)
        lines = text.split("\n") if text else []
        spam_lines = sum(filters.spam_keyword_hits(line) > 0 for line in lines) if self.spam else 0
        if spam_lines and spam_lines / len(lines) >= self.max_spam_line_fraction:
            doc.metadata["spam_lines"] = f"{spam_lines}/{len(lines)}"  # QualityFilter drops the whole advert
            doc.text = text
            return
        kept = []
        for line in lines:
            if self.spam and spam_lines and filters.spam_keyword_hits(line):
                self.stat_update("line_removed_spam_line")
            elif self.boiler and filters.is_boilerplate_line(line):
                self.stat_update("line_removed_boilerplate")
            elif self.nav and filters.is_navigation_line(line):
                self.stat_update("line_removed_navigation")
            elif self.seo and filters.is_seo_spam_line(line):
                self.stat_update("line_removed_seo_spam")
            else:
                kept.append(line)
        doc.text = normalize.remove_spaces_between_cjk("\n".join(kept))
        self._check_title(doc)

    def _check_title(self, doc: Document) -> None:
        title = doc.metadata.get("title")
        if self.seo and isinstance(title, str) and filters.is_seo_spam_line(title):
            self.stat_update("line_removed_seo_spam_title")  # titles are not training text; counted to show the dirt

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        spent = 0.0
        for doc in data:
            start = perf_counter()
            self.clean(doc)
            spent += perf_counter() - start
            yield doc
        report_step_time(self, spent)


class QualityFilter(CountingFilter):
    """Chinese quality rules in a fixed order; the first that fails names the drop reason."""

    name = "quality"

    def __init__(self, min_cjk_chars: int, min_cjk_ratio: float, max_top_char_fraction: float,
                 max_duplicate_line_fraction: float, max_punctuation_ratio: float = 1.0, max_digit_ratio: float = 1.0,
                 max_duplicate_ngram_fraction: float = 1.0, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.min_cjk_chars, self.min_cjk_ratio = min_cjk_chars, min_cjk_ratio
        self.max_top_char_fraction, self.max_dup_lines = max_top_char_fraction, max_duplicate_line_fraction
        self.max_punct, self.max_digit, self.max_dup_ngrams = max_punctuation_ratio, max_digit_ratio, max_duplicate_ngram_fraction

    def filter(self, doc: Document):
        text = doc.text
        if doc.metadata.get("spam_lines"):
            doc.metadata["detail"] = f"{doc.metadata['spam_lines']} lines carry spam keywords"
            return False, "spam_keywords"
        if not text or text.isspace():
            return False, "empty_after_cleaning"
        m = filters.quality_metrics(text)  # one C scan; each field equals the filters function of its name
        if m.cjk_ratio < self.min_cjk_ratio:  # before length, so mojibake is named as garbled, not short
            doc.metadata["detail"] = f"{m.cjk_ratio:.2f} < {self.min_cjk_ratio}"
            return False, "low_cjk_ratio"
        if m.cjk_count < self.min_cjk_chars:
            doc.metadata["detail"] = f"{m.cjk_count} CJK chars < {self.min_cjk_chars}"
            return False, "too_short"
        if m.top_char_fraction > self.max_top_char_fraction:
            doc.metadata["detail"] = f"{m.top_char_fraction:.2f} > {self.max_top_char_fraction}"
            return False, "repetitive_characters"
        if m.duplicate_line_fraction > self.max_dup_lines:
            doc.metadata["detail"] = f"{m.duplicate_line_fraction:.2f} > {self.max_dup_lines}"
            return False, "repeated_lines"
        for value, limit, reason in ((m.punctuation_ratio, self.max_punct, "punctuation_ratio"),
                                     (m.digit_ratio, self.max_digit, "digit_ratio")):
            if value > limit:
                doc.metadata["detail"] = f"{value:.2f} > {limit}"
                return False, reason
        if self.max_dup_ngrams < 1.0 and m.duplicate_ngram_char_fraction > self.max_dup_ngrams:
            doc.metadata["detail"] = f"{m.duplicate_ngram_char_fraction:.2f} > {self.max_dup_ngrams}"
            return False, "repeated_ngrams"
        return True


class CharMinhashSignature(MinhashDedupSignature):
    """datatrove's MinHash stage 1 over character n-grams (Chinese has no spaces to make word n-grams)."""

    def __init__(self, output_folder, config, shingle_size: int = 5):
        # The parent's __init__ loads a word tokenizer (spaCy for Chinese) that character shingles never use:
        # set up the same attributes without it.
        from datatrove.io import get_datafolder
        from datatrove.utils.hashing import create_hash_func

        PipelineStep.__init__(self)
        self.output_folder = get_datafolder(output_folder)
        self.config = config
        self.num_hashes = config.num_buckets * config.hashes_per_bucket
        self._parameters = None
        self._hash_func = create_hash_func(config.hash_config)
        self.language = "zh"
        self.word_tokenizer = None
        self.skip_existing_sigs = False
        self.shingle_size = shingle_size

    def get_shingles(self, text: str) -> np.ndarray:
        return shingles(text, self.shingle_size).reshape((-1, 1))  # [n_shingles, 1] uint64


class ParagraphSplit(PipelineStep):
    """Split kept documents into paragraph documents (id '<doc>#<index>'); optionally drop repeats within the task.

    Paragraphs shorter than `min_paragraph_chars` are headings or fragments and are not training text.
    Across tasks, repeated paragraphs are removed by the exact-dedup stages over these paragraph documents.
    """

    name = "split paragraphs"
    type = "✂️ - FORMATTER"

    def __init__(self, min_paragraph_chars: int, dedup_in_task: bool = False, min_dedup_chars: int = 20):
        super().__init__()
        self.min_paragraph_chars, self.dedup_in_task, self.min_dedup_chars = min_paragraph_chars, dedup_in_task, min_dedup_chars

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        seen: set[str] = set()
        # summed in locals and reported once: per-document stat updates cost more than the split itself
        kept = chars = repeats = 0
        min_chars, dedup, min_dedup = self.min_paragraph_chars, self.dedup_in_task, self.min_dedup_chars
        for doc in data:
            text = doc.text
            kept += 1
            chars += len(text)
            source = doc.metadata.get("source", "")
            if type(source) is not str:
                source = str(source)
            for idx, para in enumerate(text.split("\n")) if "\n" in text else ((0, text),):
                if len(para) < min_chars:
                    continue
                if dedup and len(para) >= min_dedup:
                    if para in seen:
                        repeats += 1
                        continue
                    seen.add(para)
                yield Document(text=para, id=f"{doc.id}#{idx}", metadata={"doc_id": doc.id, "source": source, "paragraph": idx})
        for label, value in (("documents_kept", kept), ("chars_after", chars), ("line_removed_duplicate_paragraph", repeats)):
            if value:
                self.stat_update(label, value=value)


def paragraph_dedup_key(doc: Document, min_chars: int) -> bytes:
    """Exact-dedup key of a paragraph document: its text; short paragraphs get a unique key (never duplicates)."""
    text = doc.text if len(doc.text) >= min_chars else f"{doc.text}\x00{doc.id}"
    return text.encode("utf-8")


class Annotate(PipelineStep):
    """Annotate and tokenise paragraph documents: metadata gains `input_ids`, the token spans and `knowledge_ids`.

    tagger "native" is the C path (paragraph_annotator.ParagraphAnnotator); "rjieba" and "jieba_posseg"
    run the Python reference rules on those taggers (the same output for rjieba; `obert bench
    preprocess` times jieba_posseg as its baseline). Ids and spans are packed int32 bytes (ShardWriter).
    """

    name = "annotate + tokenise"
    type = "🔢 - TOKENIZER"

    def __init__(self, tokenizer_dir: str, knowledge_base: str | None, keywords_top_k: int, tagger: str = "native",
                 user_dict: str | None = None):
        super().__init__()
        if tagger not in ("native", "rjieba", "jieba_posseg"):
            raise ValueError(f"tagger: {tagger!r} is not one of native, rjieba, jieba_posseg")
        self.tokenizer_dir, self.knowledge_base = tokenizer_dir, knowledge_base
        self.keywords_top_k, self.tagger, self.user_dict = keywords_top_k, tagger, user_dict

    def _annotator(self):
        """A callable text -> AnnotatedParagraph for this step's tagger."""
        from .annotate import EntityMatcher, load_knowledge_base, load_user_dict

        if self.user_dict:
            load_user_dict(self.user_dict)
        matcher = EntityMatcher(load_knowledge_base(self.knowledge_base)) if self.knowledge_base else None
        from .paragraph_annotator import ParagraphAnnotator, ReferenceAnnotator

        if self.tagger == "native":
            return ParagraphAnnotator(self.tokenizer_dir, matcher, self.keywords_top_k)
        return ReferenceAnnotator(self.tokenizer_dir, matcher, self.keywords_top_k, self.tagger)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        annotate = self._annotator().annotate_packed
        paragraphs = tokens = 0
        spent = 0.0
        for doc in data:
            start = perf_counter()
            ids, spans, linked = annotate(doc.text)
            meta = doc.metadata
            meta["input_ids"] = ids
            meta["knowledge_ids"] = linked
            meta.update(zip(SPAN_KEYS, spans))
            paragraphs += 1
            tokens += len(ids) >> 2  # int32 ids
            spent += perf_counter() - start
            yield doc
        self.stat_update("paragraphs_out", value=paragraphs)
        self.stat_update("tokens_out", value=tokens)
        # the task's process at its peak, shared copy-on-write pages included (Linux ru_maxrss is in KiB)
        self.stat_update("worker_peak_rss_mb", value=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                         unit="task")
        report_step_time(self, spent)


def shard_row(self, doc: Document) -> dict:
    """A paragraph document -> one shard row (see pipeline.shard_schema), ids/spans still packed; ShardWriter's adapter."""
    m = doc.metadata
    row = {"doc_id": m["doc_id"], "source": m["source"], "paragraph": m["paragraph"], "text": doc.text, "input_ids": m["input_ids"],
           "knowledge_ids": m.get("knowledge_ids", [])}
    for key in SPAN_KEYS:
        row[key] = m[key]
    return row


SPAN_KEYS = tuple(f"{t}_spans" for t in SPAN_TYPES)  # shard columns of the span lists, in annotate.SPAN_TYPES order
SHARD_COLUMNS = ("doc_id", "source", "paragraph", "text", "input_ids", *SPAN_KEYS, "knowledge_ids")  # shard_schema's order


class ShardColumns:
    """One batch of shard rows held as columns, one list per shard field: no dict per row.

    Rows kept as dicts until their batch is written outlive Python's young GC generations, and 1,000 of
    them per batch made the full collections that scan every object 3 to 4% of a worker's time (perf).
    """

    def __init__(self):
        self.columns: dict[str, list] = {name: [] for name in SHARD_COLUMNS}
        self._append = [(self.columns[name].append, name) for name in SHARD_COLUMNS if name != "text"]
        self._text = self.columns["text"].append
        self.rows = 0

    def __len__(self) -> int:
        return self.rows

    def add(self, doc: Document) -> None:
        """Append one annotated paragraph document (the metadata that Annotate and ParagraphSplit set)."""
        m = doc.metadata
        self._text(doc.text)
        for append, name in self._append:
            append(m[name])
        self.rows += 1


class ShardWriter(ParquetWriter):
    """datatrove's ParquetWriter for corpus shards: a batch is kept as columns and written as one Arrow record batch.

    Documents need the metadata of ParagraphSplit (doc_id, source, paragraph) and of Annotate
    (`input_ids`, `<type>_spans`, `knowledge_ids`); ids and spans are packed native int32 bytes, turned
    into Arrow list columns with one numpy copy per batch instead of one Python list per value. The file
    name template may use ${rank} only (every document of a task goes to the same shard), so the file
    is chosen, and rotated at `max_file_size`, once per batch rather than per document.
    """

    def __init__(self, output_folder, output_filename: str = "part-${rank}.parquet", batch_size: int = 1000,
                 use_content_defined_chunking: bool = False, **kwargs):
        from .pipeline import shard_schema

        if "${" in output_filename.replace("${rank}", ""):
            raise ValueError(f"ShardWriter: output_filename {output_filename!r} may only use ${{rank}}")
        # Content-defined chunking (datatrove's default) only helps Xet deduplication when shards are re-uploaded
        # to the Hub; it costs about 16% of the Parquet write (0.242 s against 0.204 s for a 10 MB shard).
        super().__init__(output_folder, output_filename=output_filename, adapter=shard_row, schema=shard_schema(),
                         batch_size=batch_size, use_content_defined_chunking=use_content_defined_chunking, **kwargs)
        if [f.name for f in self.schema] != list(SHARD_COLUMNS):
            raise ValueError(f"ShardWriter: schema fields {self.schema.names} are not SHARD_COLUMNS {SHARD_COLUMNS}")

    def _batch_file(self, name: str) -> str:
        """The file the next batch goes to (rotated once it reaches max_file_size), with its Parquet writer open."""
        import pyarrow.parquet as pq

        filename = self._get_filename_with_file_id(name) if self.max_file_size > 0 else name
        handle = self._get_output_file_with_retry(filename)
        if self.max_file_size > 0 and handle.tell() >= self.max_file_size:
            self.file_id_counter[name] += 1
            new = self._get_filename_with_file_id(name)
            self._on_file_switch(name, filename, new)
            filename, handle = new, self._get_output_file_with_retry(new)
        if filename not in self._writers:
            self._writers[filename] = pq.ParquetWriter(handle, schema=self.schema, compression=self.compression,
                                                       use_content_defined_chunking=self.use_content_defined_chunking,
                                                       write_page_index=self.write_page_index)
        return filename

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        name = filename = batch = None
        written = 0
        spent = 0.0
        with self:
            for doc in data:
                start = perf_counter()
                if batch is None:
                    name = name or self._get_output_filename(doc, rank)
                    filename = self._batch_file(name)
                    batch = self._batches[filename] = ShardColumns()
                batch.add(doc)
                if batch.rows >= self.batch_size:
                    self._write_batch(filename)
                    batch = None
                written += 1
                spent += perf_counter() - start
                yield doc
            start = perf_counter()
        report_step_time(self, spent + perf_counter() - start)  # the last batch is written on leaving `with`
        if written:
            self.stat_update(self._get_output_filename(Document(text="", id=""), "XXXXX"), value=written)
            self.stat_update(StatHints.total, value=written)

    def _write_batch(self, filename):
        batch = self._batches.pop(filename, None)
        if batch:
            self._writers[filename].write_batch(shard_batch(batch.columns, self.schema))


def shard_batch(columns: dict[str, list], schema) -> "Any":
    """An Arrow RecordBatch from shard columns (ShardColumns.columns) whose ids and spans are packed int32 bytes."""
    import pyarrow as pa

    def int32_lists(chunks: list[bytes], width: int) -> pa.Array:
        values = np.frombuffer(b"".join(chunks), dtype=np.int32)
        lengths = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks)) // (4 * width)
        offsets = np.zeros(len(chunks) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        if width == 1:
            return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.int32()))
        inner = pa.ListArray.from_arrays(pa.array(np.arange(0, len(values) + 1, width, dtype=np.int32)),
                                         pa.array(values, type=pa.int32()))
        return pa.ListArray.from_arrays(pa.array(offsets), inner)

    arrays = []
    for field in schema:
        col = columns[field.name]
        if field.name == "input_ids":
            arrays.append(int32_lists(col, 1))
        elif field.name.endswith("_spans"):
            arrays.append(int32_lists(col, 2))
        else:
            arrays.append(pa.array(col, type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def removed_row(self, doc: Document) -> dict:
    """JsonlWriter adapter for removed/<reason>/: id, reason detail, source location and text."""
    m = doc.metadata
    return {"id": doc.id, "detail": m.get("detail", ""), "file": m.get("file"), "line": m.get("line"),
            "chars_before": m.get("chars_before", len(doc.text)), "text": doc.text}


def cleaned_row(self, doc: Document) -> dict:
    """JsonlWriter adapter for the intermediate cleaned documents (text + the metadata later steps need)."""
    keep = {k: doc.metadata.get(k) for k in ("source", "file", "line", "chars_before", "doc_id", "paragraph")
            if k in doc.metadata}
    return {"id": doc.id, "text": doc.text, **keep}


__all__ = ["Annotate", "CharMinhashSignature", "CountingFilter", "LengthGuardFilter", "LineRules", "Normalize", "ParagraphSplit",
           "QualityFilter", "ReaderDropFilter", "ShardWriter", "cleaned_row", "paragraph_dedup_key",
           "removed_row", "shard_batch", "shard_row", "ShardColumns"]
