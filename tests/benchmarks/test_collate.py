"""`obert bench collate` on the sample corpus: every config at both lengths, a table and a final ratio line
(no timing limits)."""

from obert_lib.benchmarks import collate as bench
from obert_lib.masking import STRATEGIES


def test_bench_collate_covers_every_config_and_ends_with_ratio(sample_corpus, capsys):
    rows = bench.run(sample_corpus.output_dir, batches=1, repeats=1, batch_size=64)
    printed = capsys.readouterr().out.strip().splitlines()
    covered = {(r.config, r.length) for r in rows}
    for length in (128, 512):
        for config in (*STRATEGIES, "mixture", "knowledge", "synonym", bench.HF):
            assert (config, length) in covered
    assert all(r.seconds > 0 and r.sequences == 64 for r in rows)
    assert printed[-1].startswith("ratio: ")
    ours = [r.vs_hf for r in rows if r.config != bench.HF]
    assert printed[-1] == f"ratio: {min(ours):.2f}"
