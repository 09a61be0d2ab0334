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
