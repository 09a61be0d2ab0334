"""KgCLUE knowledge-base QA: the official metric (per-field EM and character F1) and the SQLite knowledge store."""

from .metric import evaluate, lcs_f1, parse_answer, read_answers
from .store import KnowledgeStore, build_store, kb_from_kgclue

__all__ = ["KnowledgeStore", "build_store", "evaluate", "kb_from_kgclue", "lcs_f1", "parse_answer", "read_answers"]
