"""The annotate stage's first step: dedup_index's decisions applied to one task's cleaned documents.

KeptParagraphs drops the duplicate documents (written to removed/<reason>/ when the run keeps them), splits
the others into paragraph documents as paragraphs.ParagraphSplit does, drops the paragraphs decided against
(duplicate_paragraph, repeated_line: counted as lines removed), and writes each kept document's lengths to
<kept>/<rank>.jsonl for the report. kept_documents reads the kept documents back (tokenizer training, tests).
"""

from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path
from time import perf_counter
from typing import Iterator

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from .dedup_index import DOC_REASONS, KEEP, PARAGRAPH_REASONS, rank_file
from .paragraphs import paragraph_documents
from .step_stats import report_step_time


def load_decisions(folder: str | Path | None, rank: int) -> tuple[np.ndarray, dict[int, int]]:
    """Task `rank`'s document reasons (int8 [documents]; empty without a dedup stage: all kept) and its dropped
    paragraphs {paragraph_key: reason}."""
    path = rank_file(folder, rank) if folder else None
    if path is None or not path.is_file():
        return np.zeros(0, dtype=np.int8), {}
    with np.load(path) as f:
        return f["doc_reason"], dict(zip(f["para_key"].tolist(), f["para_reason"].tolist()))


class KeptParagraphs(PipelineStep):
    """Cleaned documents in, the paragraph documents of the kept ones out (module docstring).

    decisions: DedupDecisions' folder, or None when no dedup runs; removed: {reason: datatrove writer or None}
    for exact_duplicate and near_duplicate.
    """

    name = "kept paragraphs"
    type = "✂️ - FORMATTER"

    def __init__(self, decisions: str | None, min_paragraph_chars: int, kept_folder: str, removed: dict):
        super().__init__()
        self.decisions, self.min_paragraph_chars = decisions, min_paragraph_chars
        self.kept_folder, self.removed = kept_folder, removed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        doc_reason, para_reason = load_decisions(self.decisions, rank)
        kept_rows, dropped, lines_removed, chars, spent = [], {}, {}, 0, 0.0
        with contextlib.ExitStack() as stack:
            writers = {
                code: stack.enter_context(self.removed[reason]) if self.removed.get(reason) else None
                for code, reason in DOC_REASONS.items()
            }
            for i, doc in enumerate(data):
                start = perf_counter()
                code = int(doc_reason[i]) if i < len(doc_reason) else KEEP
                if code != KEEP:
                    reason = DOC_REASONS[code]
                    dropped[reason] = dropped.get(reason, 0) + 1
                    doc.metadata["filter_reason"] = reason
                    if writers[code] is not None:
                        writers[code].write(doc, rank)
                    spent += perf_counter() - start
                    continue
                chars += len(doc.text)
                kept_rows.append(
                    {"id": doc.id, "chars_before": doc.metadata.get("chars_before"), "chars_after": len(doc.text)}
                )
                base = i << 32
                for idx, para in paragraph_documents(doc, self.min_paragraph_chars):
                    code = para_reason.get(base | idx) if para_reason else None
                    if code:
                        reason = PARAGRAPH_REASONS[code]
                        lines_removed[reason] = lines_removed.get(reason, 0) + 1
                        continue
                    spent += perf_counter() - start
                    yield para
                    start = perf_counter()
                spent += perf_counter() - start
        out = Path(self.kept_folder) / f"{rank:05d}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept_rows), encoding="utf-8")
        counts = {"documents_kept": len(kept_rows), "chars_after": chars}
        counts.update({f"dropped_{k}": v for k, v in dropped.items()})
        counts.update({f"line_removed_{k}": v for k, v in lines_removed.items()})
        for label, value in counts.items():
            if value:
                self.stat_update(label, value=value)
        report_step_time(self, spent)


def kept_documents(work: Path) -> Iterator[dict]:
    """The kept documents of a corpus run's `_work` folder, in corpus order: {"id", "text", ...} as cleaned.

    Needs the dedup decisions (after the dedup stage); without them every cleaned document counts as kept."""
    decisions = work / "dedup_decisions"
    for f in sorted((work / "cleaned").glob("*.jsonl.gz")):
        rank = int(f.name.split(".")[0])
        doc_reason, _ = load_decisions(decisions if decisions.is_dir() else None, rank)
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i >= len(doc_reason) or doc_reason[i] == KEEP:
                    yield json.loads(line)
