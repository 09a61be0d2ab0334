"""char_class_cache: the character classes filters.py and normalize.py mark are computed once, kept on disk, and
read back exactly; a changed module computes them again; a folder that cannot be written costs only the time."""

import json

import pytest

from obert_lib.corpus import char_class_cache, filters, normalize
from obert_lib.corpus.char_class_cache import cached_classes


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OBERT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_computed_once_then_read_back(tmp_path, cache):
    module = tmp_path / "rules.py"
    module.write_text("A = 1\n")
    calls = []

    def compute():
        calls.append(1)
        return {"SPACE": " \t", "ODD": "\ud800\x00é"}  # a lone surrogate and a NUL survive the file

    first = cached_classes(str(module), compute)
    second = cached_classes(str(module), compute)
    assert first == second == {"SPACE": " \t", "ODD": "\ud800\x00é"}
    assert len(calls) == 1
    assert [p.name.split("-")[:3] for p in cache.iterdir()] == [["char", "classes", "rules"]]  # no temporary left

    module.write_text("A = 2\n")  # an edited module: computed again, into a file of its own
    assert cached_classes(str(module), compute) == first
    assert len(calls) == 2
    assert len(list(cache.iterdir())) == 2


def test_a_damaged_file_is_computed_again(tmp_path, cache):
    module = tmp_path / "rules.py"
    module.write_text("A = 1\n")
    cached_classes(str(module), lambda: {"X": "x"})
    (saved,) = cache.iterdir()
    head = saved.read_bytes().partition(b"\n")[0]
    saved.write_bytes(head + b'\n{"X": "x')  # cut short after its key line
    assert cached_classes(str(module), lambda: {"X": "y"}) == {"X": "y"}
    saved.write_bytes(b'{"X": "x')  # cut short inside its key line
    assert cached_classes(str(module), lambda: {"X": "y"}) == {"X": "y"}
    assert json.loads(saved.read_bytes().partition(b"\n")[2]) == {"X": "y"}  # saved again


def test_an_unwritable_folder_only_costs_the_computation(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("OBERT_CACHE_DIR", str(blocker / "cache"))  # under a file: cannot be made
    module = tmp_path / "rules.py"
    module.write_text("A = 1\n")
    assert cached_classes(str(module), lambda: {"X": "x"}) == {"X": "x"}


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("OBERT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert char_class_cache.cache_dir() == tmp_path / "obert-lab"
    monkeypatch.setenv("OBERT_CACHE_DIR", str(tmp_path / "mine"))
    assert char_class_cache.cache_dir() == tmp_path / "mine"


@pytest.mark.parametrize("module", [filters, normalize], ids=["filters", "normalize"])
def test_the_classes_the_modules_read_are_the_ones_they_compute(module, cache):
    """What a module marks comes from the cache when one is there: it must equal a fresh computation."""
    fresh = module.class_chars()
    assert cached_classes(module.__file__, module.class_chars) == fresh  # computed and saved
    assert cached_classes(module.__file__, lambda: pytest.fail("not read from the cache")) == fresh
    assert fresh["SPACE"] == "".join(chr(c) for c in range(0x110000) if chr(c).isspace())  # re's \s is str.isspace
