"""The same corpus config runs unchanged on the Ray executor (a local Ray instance) and gives the local result."""

import json

import pytest

from obert_lib import corpus

SMALL_DEDUP = {"num_perm": 32, "bands": 4}  # fewer MinHash bucket tasks: Ray schedules one task per bucket


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_executor_matches_local(local_ray, tmp_path):
    cfg = {"dedup": SMALL_DEDUP}
    on_ray = corpus.run(
        {**cfg, "output_dir": str(tmp_path / "ray")}, {"executor": "ray", "workers": 2, "progress": False}
    )
    local = corpus.run({**cfg, "output_dir": str(tmp_path / "local")}, {"progress": False})

    def rows(result):
        return sorted(
            json.dumps(x, sort_keys=True, ensure_ascii=False) for x in corpus.load_shards(result.output_dir).to_pylist()
        )

    assert rows(on_ray) == rows(local)
    assert on_ray.stats["documents_dropped"] == local.stats["documents_dropped"]
    assert on_ray.stats["documents_in"] == 220


def test_slurm_needs_a_partition():
    from obert_lib.config import ConfigError

    with pytest.raises(ConfigError, match="slurm_partition: the slurm executor needs a partition"):
        corpus.CorpusRuntime(executor="slurm")
