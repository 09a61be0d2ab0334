"""Paragraph documents: ParagraphSplit makes them from kept documents, Annotate annotates and tokenises them."""

from __future__ import annotations

import resource
from time import perf_counter

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from .shards import SPAN_KEYS
from .step_stats import report_step_time


class ParagraphSplit(PipelineStep):
    """Split kept documents into paragraph documents (id '<doc>#<index>').

    Paragraphs shorter than `min_paragraph_chars` are headings or fragments and are not training text.
    The corpus stage splits with kept_paragraphs.KeptParagraphs, which also applies the dedup decisions;
    this step is the split alone (web_eval, the single-pass benchmark).
    """

    name = "split paragraphs"
    type = "✂️ - FORMATTER"

    def __init__(self, min_paragraph_chars: int):
        super().__init__()
        self.min_paragraph_chars = min_paragraph_chars

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        # summed in locals and reported once: per-document stat updates cost more than the split itself
        kept = chars = 0
        for doc in data:
            kept += 1
            chars += len(doc.text)
            for _, para in paragraph_documents(doc, self.min_paragraph_chars):
                yield para
        for label, value in (("documents_kept", kept), ("chars_after", chars)):
            if value:
                self.stat_update(label, value=value)


def paragraph_documents(doc: Document, min_chars: int):
    """(index in text.split("\\n"), paragraph document) of each paragraph of `doc` with >= min_chars characters."""
    text = doc.text
    source = doc.metadata.get("source", "")
    if type(source) is not str:
        source = str(source)
    for idx, para in enumerate(text.split("\n")) if "\n" in text else ((0, text),):
        if len(para) < min_chars:
            continue
        yield (
            idx,
            Document(text=para, id=f"{doc.id}#{idx}", metadata={"doc_id": doc.id, "source": source, "paragraph": idx}),
        )


class Annotate(PipelineStep):
    """Annotate and tokenise paragraph documents: metadata gains `input_ids`, the token spans and `knowledge_ids`.

    tagger "native" is the C path (paragraph_annotator.ParagraphAnnotator); "rjieba" and "jieba_posseg"
    run the Python reference rules on those taggers (the same output for rjieba; `obert bench
    preprocess` times jieba_posseg as its baseline). Ids and spans are packed int32 bytes (ShardWriter).
    """

    name = "annotate + tokenise"
    type = "🔢 - TOKENIZER"

    def __init__(
        self,
        tokenizer_dir: str,
        knowledge_base: str | None,
        keywords_top_k: int,
        tagger: str = "native",
        user_dict: str | None = None,
    ):
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
        self.stat_update(
            "worker_peak_rss_mb", value=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), unit="task"
        )
        report_step_time(self, spent)
