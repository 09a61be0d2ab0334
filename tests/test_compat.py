"""Each private name of obert_lib.compat still exists in the installed library: fails loudly when one disappears."""

import importlib
import importlib.metadata

import pytest

from obert_lib import compat


def resolve(dotted: str):
    """The object a dotted name 'package.module.Class.attribute' names (the longest importable module first)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_every_private_name_records_its_library_version_and_gain():
    for name, entry in compat.PRIVATE_NAMES.items():
        assert {"library", "checked_with", "used_by", "gain"} <= set(entry), name
        assert callable(getattr(compat, entry["used_by"])), name


def test_loguru_exception_formatter_get_lib_dirs_exists():
    name = "loguru._better_exceptions.ExceptionFormatter._get_lib_dirs"
    try:
        found = resolve(name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(
            f"{name} is gone in loguru {importlib.metadata.version('loguru')} (checked with "
            f"{compat.PRIVATE_NAMES[name]['checked_with']}): compat.cache_loguru_lib_dirs no longer saves "
            f"anything; remove it ({exc})"
        )
    assert callable(found)
    assert isinstance(found(), list)  # a list of folder paths, as cache_loguru_lib_dirs assumes


def test_counting_filter_keeps_base_filter_s_contract_and_counts():
    """corpus.cleaning.CountingFilter re-implements BaseFilter.run for speed: the same documents out and the same
    totals (total, forwarded, dropped, dropped_<reason>) as the installed datatrove's BaseFilter.run. (It leaves out
    BaseFilter's per-document length summary, doc_len: the corpus stage reports lengths itself.)"""
    from datatrove.data import Document
    from datatrove.pipeline.filters.base_filter import BaseFilter, get_filter_result

    from obert_lib.corpus.cleaning import CountingFilter

    assert get_filter_result(True) == (True, None) and get_filter_result((False, "short")) == (False, "short")

    def rule(doc):
        return True if len(doc.text) > 2 else (False, "short") if doc.text else False

    class Counting(CountingFilter):
        name = "counting"
        filter = staticmethod(rule)

    class Stock(BaseFilter):
        name = "stock"
        filter = staticmethod(rule)

    def outcome(step):
        docs = [Document(text=t, id=str(i)) for i, t in enumerate(["很长的句子", "短", "", "又一个长句", "ab"])]
        kept = [d.id for d in step.run(iter(docs))]
        totals = {k: v.total for k, v in step.stats.stats.items() if k != "doc_len"}
        return kept, {k: v for k, v in totals.items() if v}

    assert (
        outcome(Counting())
        == outcome(Stock())
        == (
            ["0", "3"],
            {"total": 5, "forwarded": 2, "dropped": 3, "dropped_short": 2},
        )
    )
