"""`obert bench unified` on a tiny 6-layer shape: counted FLOPs decompose exactly into layers and heads, the
measured ratio matches the layer-count theory within 5% and never exceeds OBERT's (L + T·N) / (T·L), the
table and the last line (no timing limits)."""

import re

import pytest

from obert_lib.benchmarks import unified as bench
from obert_lib.cli import main
from obert_lib.config import ConfigError
from obert_lib.unified import flops

SHAPE = (6, 32, 2, 64)  # layers, hidden, heads, ffn


def test_bench_unified_flops_match_the_theory_and_the_table_ends_with_ratio(capsys):
    rows = bench.run(seq_len=16, shapes=[SHAPE], repeats=1, threads=1)
    printed = capsys.readouterr().out.strip().splitlines()
    assert [(r.tasks, r.top) for r in rows] == [(t, n) for t in (1, 3, 10) for n in (1, 3, 6)]
    for r in rows:
        L, T, N = r.layers, r.tasks, r.top
        assert r.shared_flops == (L - N) * r.layer_flops + T * (N * r.layer_flops + r.head_flops)
        assert r.separate_flops == T * (L * r.layer_flops + r.head_flops)
        assert abs(r.ratio / flops.exact_ratio(L, T, N) - 1) <= 0.05  # the heads are all that differ
        assert r.ratio <= flops.theory_ratio(L, T, N)  # OBERT's form counts N more layers
        assert len(r.shared_s) == len(r.separate_s) == 1 and min(r.shared_s + r.separate_s) > 0
    header = next(i for i, line in enumerate(printed) if line.startswith("  L "))
    assert printed[header].split()[:5] == ["L", "T", "N", "theory", "layers"]
    table = printed[header + 1 : header + 1 + len(rows)]
    assert [tuple(map(int, line.split()[:3])) for line in table] == [(6, r.tasks, r.top) for r in rows]
    assert [float(line.split()[3]) for line in table] == [round(r.theory, 4) for r in rows]
    assert printed[-2].startswith("OBERT reports 0.27 at T = 10, N = 3")
    head = next(r for r in rows if (r.tasks, r.top) == (10, 3))
    assert re.fullmatch(r"ratio: \d\.\d{4}", printed[-1]) and printed[-1] == f"ratio: {head.ratio:.4f}"
    assert printed[-1] == "ratio: 0.5500"  # (6 - 3 + 30) / 60 layers, the heads below the 4th decimal


def test_the_headline_shape_counts_the_issue_figures_on_the_meta_device():
    m = flops.measured((24, 1024, 16, 4096), 10, 3, 1, 128)  # BERT-large shape: counted, not run
    assert m["shared"] == 21 * m["layer"] + 10 * (3 * m["layer"] + m["head"])
    assert round(m["shared"] / m["separate"], 4) == 0.2125 and flops.theory_ratio(24, 10, 3) == 0.225


def test_bench_unified_refuses_bad_settings_and_the_cli_passes_its_options(monkeypatch):
    with pytest.raises(ConfigError, match=r"^shapes: 'huge' is not a model preset"):
        bench.run(shapes=["huge"])
    calls = []
    monkeypatch.setattr(bench, "run", lambda *a, **k: calls.append((a, k)))
    main(["bench", "unified"])
    main(["bench", "unified", "--seq-len", "64", "--repeats", "2", "--threads", "1", "--seed", "3"])
    assert calls == [
        ((), {"seq_len": 128, "threads": None, "seed": 0}),
        ((), {"seq_len": 64, "threads": 1, "seed": 3, "repeats": 2}),
    ]
