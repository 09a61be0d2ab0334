"""Shared fixtures: the shared-data policy, a tiny corpus built from the sample data, a tiny checkpoint."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from obert_lib.paths import shared_data_dir


def shared_file(rel: str) -> Path:
    """A path under ../shared/data; skip when absent, fail when OBERT_REQUIRE_SHARED_DATA=1."""
    path = shared_data_dir() / rel
    if not path.exists():
        message = f"shared data {path} is missing (see ../shared/data/README.md)"
        if os.environ.get("OBERT_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(message + " and OBERT_REQUIRE_SHARED_DATA=1")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory):
    """The corpus stage run once on the embedded sample corpus."""
    from obert_lib import corpus

    out = tmp_path_factory.mktemp("corpus")
    return corpus.run({"output_dir": str(out)}, corpus.CorpusRuntime(progress=False))


@pytest.fixture(scope="session")
def tiny_checkpoint(sample_corpus, tmp_path_factory):
    """A two-stage tiny pretraining run (a few steps) on the sample corpus; returns the result."""
    from obert_lib import pretraining

    out = tmp_path_factory.mktemp("pretrain")
    plan = pretraining.load_plan("tiny", corpus_dir=str(sample_corpus.output_dir), output_dir=str(out),
                                 **{"stages.0.steps": 3, "stages.1.steps": 3, "stages.0.warmup_steps": 1,
                                    "stages.1.warmup_steps": 1})
    return pretraining.run(plan, progress=False)
