"""The GPU benchmark (issue 21) run with --tiny on the CPU: every code path but the CUDA-only ones, the JSON and
markdown it writes, its budget and error guards."""

import json
import math

from obert_lib.benchmarks import gpu

MODELS = {gpu.OURS, gpu.HF, gpu.NOMASK}


def test_tiny_run_writes_every_section(tmp_path, capsys):
    data = gpu.main(["--out", str(tmp_path), "--tiny"])
    saved = json.loads((tmp_path / "gpu_results.json").read_text(encoding="utf-8"))
    assert saved["ratio"] == data["ratio"] and saved["errors"] == [] and saved["skipped"] == []
    meta = saved["meta"]
    assert meta["preset"] == "tiny" and meta["parameters"] > meta["embedding_parameters"] > 0
    assert meta["tokens_per_step"] == "64 = 4 x 16 = 2 x 32"
    assert {"torch", "transformers", "deepspeed"} <= set(meta["versions"])
    rows = {(r["model"], r["seq"], r["precision"]): r for r in saved["main"]}
    expected = {(m, s, "bf16") for m in MODELS for s in (16, 32)} | {
        (m, s, "fp16") for m in (gpu.OURS, gpu.HF) for s in (16, 32)
    }
    assert set(rows) == expected
    tp = gpu._throughput()
    for (model, seq, precision), r in rows.items():
        assert r["tokens_per_s"] > 0 and r["step_ms"] > 0 and r["batch"] * seq == 64
        assert len(r["tokens_per_s_repeats"]) == 1 and math.isfinite(r["loss_first"]) and math.isfinite(r["loss_last"])
        assert r["mfu"] is None and r["peak_mem_gib"] is None  # CPU: no peak FLOP/s, no CUDA allocator
        assert r["flops_per_token"] == tp.model_flops_per_token(meta["parameters"], 2, 64, seq)
        assert ("loss_scale" in r) == (precision == "fp16")
        if precision == "fp16":
            assert r["loss_scale"] == 2.0**16 and r["skipped_steps"] == 0
    # same weights and the same batches: the first loss agrees between the models
    for seq in (16, 32):
        assert math.isclose(
            rows[(gpu.OURS, seq, "bf16")]["loss_first"], rows[(gpu.HF, seq, "bf16")]["loss_first"], rel_tol=1e-2
        )
    assert {(r["seq"], r["precision"]) for r in saved["ratios"]} == {(s, p) for s in (16, 32) for p in ("bf16", "fp16")}
    first = next(r for r in saved["ratios"] if r["seq"] == 16 and r["precision"] == "bf16")
    assert first["ours_over_hf"] == saved["ratio"] and first["nomask_over_hf"] > 0
    [memory] = saved["memory"]
    assert (
        memory["status"] == "ok" and memory["micro_batch"] == 2 and memory["plan_total_gib"] > memory["plan_states_gib"]
    )
    assert saved["deepspeed"]["status"] == "skipped"
    md = (tmp_path / "gpu_results.md").read_text(encoding="utf-8")
    assert "| seq | precision | ours / HF | ours no mask / HF |" in md and "plan total GiB" in md
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"ratio: {saved['ratio']:.3f}"


def test_a_failing_step_is_recorded_and_the_run_still_ends(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("planted")

    monkeypatch.setattr(gpu, "make_step", broken)
    data = gpu.main(["--out", str(tmp_path), "--tiny"])
    assert data["main"] == [] and data["ratios"] == [] and data["memory"] == [] and data["ratio"] is None
    assert len(data["errors"]) == 11 and all("RuntimeError: planted" in e for e in data["errors"])
    assert json.loads((tmp_path / "gpu_results.json").read_text(encoding="utf-8"))["errors"] == data["errors"]
    assert capsys.readouterr().out.strip().splitlines()[-1] == "ratio: n/a"


def test_past_the_budget_everything_is_skipped_but_written(tmp_path, capsys):
    data = gpu.main(["--out", str(tmp_path), "--tiny", "--budget", "0"])
    assert data["main"] == [] and data["errors"] == [] and len(data["skipped"]) == 11
    assert "skipped: ours seq 16 bf16: budget spent" in (tmp_path / "gpu_results.md").read_text(encoding="utf-8")
    assert capsys.readouterr().out.strip().splitlines()[-1] == "ratio: n/a"
