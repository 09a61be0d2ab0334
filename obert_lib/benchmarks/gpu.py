"""Issue 21's GPU measurements in one run: `python -m obert_lib.benchmarks.gpu --out DIR` (`--tiny` on a CPU).

1. 100M preset, OBertForMaskedLM vs transformers' BertForMaskedLM (same shape and weights) fed as run_mlm feeds
   it: full blocks, no padding (random ids, attention_mask all ones, 15% of positions masked and labelled). Step:
   forward + backward + AdamW(fused=True), bf16 autocast, or fp16 autocast with a GradScaler (dynamic loss scale);
   seq 128 and 512 at 16,384 tokens a step (128 x 128 = 32 x 512); median of `repeats` x `steps` timed steps after
   `warmup`. "ours, no mask" omits attention_mask (our SDPA then gets no bias; HF drops an all-ones mask itself).
2. Ours at 128 bf16 with DeepSpeed's FusedAdam (JIT-built in a subprocess that starts with the run).
3. Peak memory of 300M and 1B at memory_plan's largest micro-batch (1 GPU, ZeRO-2, 32 GiB) under
   torch.cuda.set_per_process_memory_fraction(32 GiB). MFU = tokens/s x (6N + 12 L H S) / 989 TFLOP/s (H200
   datasheet, dense bf16/fp16; device README: ~790 measured); pretraining/throughput.py, N all parameters.
Work past --budget seconds is skipped; DIR/gpu_results.{json,md} are rewritten after every row.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

GIB, CAP_GIB = 2**30, 32
MASK_ID = 103  # [MASK] in bert-base-chinese's vocabulary
LR, WD = 1e-4, 0.01
INIT_SCALE = 2.0**16  # GradScaler's default initial loss scale
OURS, NOMASK, HF = "ours", "ours, no mask", "HF BertForMaskedLM"
REPO = Path(__file__).resolve().parents[2]
BUILD = "import time; t = time.time(); from deepspeed.ops.op_builder import FusedAdamBuilder as B; B().load()"
BUILD += "; print(f'fused_adam built or loaded in {time.time() - t:.1f} s')"


def _throughput():
    """pretraining/throughput.py alone: the pretraining package's __init__ pulls the corpus stack (datatrove,
    ...), which a bare GPU image lacks."""
    spec = importlib.util.spec_from_file_location("obert_throughput", REPO / "obert_lib/pretraining/throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shell(*cmd: str) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=REPO).stdout.strip() or None
    except (OSError, subprocess.SubprocessError) as e:
        return f"unavailable: {e}"


def batches(seq: int, batch: int, count: int, vocab: int, device, seed: int = 0) -> list[dict]:
    """`count` run_mlm-style full blocks: random ids, 15% of positions -> [MASK] with labels, no padding."""
    g, out = torch.Generator().manual_seed(seed + seq), []
    for _ in range(count):
        ids = torch.randint(200, vocab, (batch, seq), generator=g)
        chosen = torch.rand(batch, seq, generator=g) < 0.15
        b = {"input_ids": ids.masked_fill(chosen, MASK_ID), "labels": ids.masked_fill(~chosen, -100)}
        b.update(token_type_ids=torch.zeros_like(ids), attention_mask=torch.ones_like(ids))
        out.append({k: v.to(device) for k, v in b.items()})
    return out


def make_step(model, opt, precision: str, device):
    """One training step (forward + backward + optimiser step, grads then freed) under autocast."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    scaler = torch.amp.GradScaler(device.type, init_scale=INIT_SCALE) if precision == "fp16" else None

    def step(batch):
        with torch.autocast(device.type, dtype=dtype):
            loss = model(**batch).loss
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        model.zero_grad(set_to_none=True)  # DeepSpeed's FusedAdam.zero_grad takes no set_to_none
        return loss.detach()

    return step, scaler


def _table(header: list[str], rows: list[list]) -> list[str]:
    cell = lambda v: "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    rows = [header, ["---"] * len(header)] + [[cell(v) for v in row] for row in rows]
    return ["| " + " | ".join(row) + " |" for row in rows]


def markdown(data: dict) -> str:
    m, ds = data["meta"], data["deepspeed"] or {"status": "not reached"}
    pct = lambda v: None if v is None else f"{v:.1%}"  # noqa: E731
    header = ["model", "seq", "batch", "precision", "tokens/s", "step ms", "MFU", "peak GiB", "loss first → last"]
    rows = [
        [r["model"], r["seq"], r["batch"], r["precision"], f"{r['tokens_per_s']:,.0f}", r["step_ms"], pct(r["mfu"])]
        + [r["peak_mem_gib"], f"{r['loss_first']:.3f} → {r['loss_last']:.3f}"]
        + [f"{r['loss_scale']:g} ({r['skipped_steps']})" if "loss_scale" in r else None]
        for r in data["main"]
    ]
    lines = [f"# GPU measurements · {m['date']} · {m['commit']}", "", m["summary"], ""]
    lines += _table(header + ["loss scale (skipped)"], rows) + [""]
    ratios = [[r["seq"], r["precision"], r["ours_over_hf"], r.get("nomask_over_hf")] for r in data["ratios"]]
    lines += _table(["seq", "precision", "ours / HF", "ours no mask / HF"], ratios) + [""]
    if ds["status"] == "ok":
        lines.append(f"DeepSpeed FusedAdam, ours, {ds['seq']} bf16: {ds['tokens_per_s']:,.0f} tokens/s")
        lines[-1] += f", {ds['step_ms']:.1f} ms a step, MFU {pct(ds['mfu'])}, peak {ds['peak_mem_gib']} GiB"
    else:
        lines.append(f"DeepSpeed FusedAdam: {ds['status']} ({ds.get('reason')})")
    keys = "preset seq micro_batch plan_states_gib plan_act_per_sample_gib plan_total_gib measured_states_gib"
    header = ["preset", "seq", "micro-batch", "plan states GiB", "plan act/sample GiB", "plan total GiB"]
    header += ["measured states GiB", "measured peak GiB", f"status (cap {CAP_GIB} GiB)"]
    rows = [[r.get(k) for k in keys.split() + ["measured_peak_gib", "status"]] for r in data["memory"]]
    lines += [""] + _table(header, rows) + [f"\nskipped: {s}" for s in data["skipped"]]
    lines += [f"\nerror: {e}" for e in data["errors"]]
    return "\n".join(lines) + "\n"


def memory_row(preset: str, seq: int, vocab: int, device, tiny: bool) -> dict:
    """Peak memory of a bf16 AdamW step at memory_plan's largest micro-batch (1 GPU, ZeRO-2, 32 GiB)."""
    from ..model import ModelConfig, build_masked_lm, memory_plan

    row, cuda, model, opt = {"preset": preset, "seq": seq}, device.type == "cuda", None, None
    plan = memory_plan(preset, [1], [seq], CAP_GIB, [2], vocab).iloc[0]  # its states: DeepSpeed's ZeRO-2 estimate
    states, per_sample, mb = plan.model_states_gib, plan.activations_per_sample_gib, int(plan.max_micro_batch)
    mb = min(mb, 2) if tiny else mb
    row.update(micro_batch=mb, plan_states_gib=states, plan_act_per_sample_gib=per_sample)
    row.update(plan_total_gib=states + mb * per_sample)
    if mb < 1:
        return {**row, "status": "plan: no micro-batch fits"}
    if cuda:
        torch.cuda.set_per_process_memory_fraction(min(1.0, CAP_GIB * GIB / torch.cuda.mem_get_info()[1]))
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        with torch.device(device):
            model = build_masked_lm(ModelConfig(preset=preset, max_positions=max(512, seq)), vocab)
        opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD, fused=cuda)
        after = []  # right after the optimiser step: parameters, gradients, Adam states
        opt.register_step_post_hook(lambda *_: after.append(torch.cuda.memory_allocated() / GIB if cuda else None))
        step, _ = make_step(model, opt, "bf16", device)
        batch = batches(seq, mb, 1, vocab, device)[0]
        step(batch), step(batch)
        row.update(measured_states_gib=after[0], status="ok")
    except torch.OutOfMemoryError as e:
        row.update(status="OOM", error=str(e).splitlines()[0][:300])
    finally:
        del model, opt
        gc.collect()
        if cuda:  # on OOM: the peak reached before the failed allocation
            row["measured_peak_gib"] = torch.cuda.max_memory_allocated() / GIB
            torch.cuda.empty_cache()
            torch.cuda.set_per_process_memory_fraction(1.0)
    return row


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--tiny", action="store_true", help="tiny preset, small vocab, 2 steps: the CPU test")
    p.add_argument("--budget", type=float, default=300.0, help="seconds; sections past it are skipped")
    for flag in ("--warmup", "--steps", "--repeats"):
        p.add_argument(flag, type=int)
    a = p.parse_args(argv)
    t_start, cuda = time.monotonic(), torch.cuda.is_available()
    left = lambda: a.budget - (time.monotonic() - t_start)  # noqa: E731
    device = torch.device("cuda" if cuda else "cpu")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    defaults = (1, 2, 1) if a.tiny else (5, 20, 3)
    warmup, steps, repeats = (d if v is None else v for v, d in zip((a.warmup, a.steps, a.repeats), defaults))
    preset, seqs, tokens, vocab = ("tiny", (16, 32), 64, 1000) if a.tiny else ("100M", (128, 512), 16384, 21128)
    a.out.mkdir(parents=True, exist_ok=True)

    build = image_arch_list = None  # DeepSpeed's fused_adam JIT build: CPU work while the GPU runs the main table
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", "/tmp/obert-torch-extensions")
    if cuda and importlib.util.find_spec("deepspeed") is not None:
        # Set, not defaulted: the device image presets TORCH_CUDA_ARCH_LIST with entries such as "9.0a", which
        # DeepSpeed 0.19.8's compute_capability_args cannot parse (int("0a"): the build's first failure, 2026-12-04).
        image_arch_list = os.environ.get("TORCH_CUDA_ARCH_LIST")
        os.environ["TORCH_CUDA_ARCH_LIST"] = "{}.{}".format(*torch.cuda.get_device_capability())
        os.environ.setdefault("MAX_JOBS", "4")
        log = open(a.out / "ds_build.log", "w")
        build = subprocess.Popen([sys.executable, "-c", BUILD], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    from ..model import ModelConfig, build_masked_lm, count_parameters
    from .train import _hf_model

    tp = _throughput()
    name = torch.cuda.get_device_name() if cuda else f"CPU ({platform.machine()})"
    shape = ModelConfig(preset=preset, max_positions=512)
    ours = build_masked_lm(shape, vocab, 0, seed=0)
    hf = _hf_model(ours)
    n_params = count_parameters(ours)
    assert count_parameters(hf) == n_params, "HF and ours differ in parameter count"
    n_emb = sum(p.numel() for n, p in ours.bert.embeddings.named_parameters() if "LayerNorm" not in n)
    init = {m: {k: v.clone() for k, v in m.state_dict().items()} for m in (ours, hf)}
    found = ("torch", "transformers", "deepspeed", "huggingface_hub")
    versions = {d: importlib.metadata.version(d) if importlib.util.find_spec(d) else None for d in found}
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "device": name}
    meta.update(commit=os.environ.get("OBERT_COMMIT") or _shell("git", "rev-parse", "--short", "HEAD"))
    meta.update(python=sys.version.split()[0], cuda=torch.version.cuda, versions=versions, preset=preset)
    meta.update(cudnn=torch.backends.cudnn.version() if cuda else None, nvidia_smi=_shell("nvidia-smi"))
    meta.update(parameters=n_params, embedding_parameters=n_emb, warmup=warmup, steps=steps, repeats=repeats)
    meta.update(tokens_per_step=f"{tokens} = " + " = ".join(f"{tokens // s} x {s}" for s in seqs), budget_s=a.budget)
    meta.update(
        image_torch_cuda_arch_list=image_arch_list, build_torch_cuda_arch_list=os.environ.get("TORCH_CUDA_ARCH_LIST")
    )
    meta.update(hf_attention=hf.config._attn_implementation, optimizer=f"AdamW(lr={LR}, weight_decay={WD})")
    meta["peak"] = "NVIDIA H200 datasheet: 989 TFLOP/s dense bf16/fp16 (device README: ~790 measured)"
    meta["summary"] = (
        f"{name}; torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {versions['transformers']}, "
        f"deepspeed {versions['deepspeed']}; preset {preset} ({n_params:,} parameters), vocab {vocab}; HF "
        f"attention {meta['hf_attention']}; {meta['tokens_per_step']} tokens a step; {warmup} warm-up + "
        f"{repeats} x {steps} timed steps, median; {meta['optimizer']}, fused={cuda}; MFU over {meta['peak']}"
    )
    data = {"meta": meta, "main": [], "ratios": [], "deepspeed": None, "memory": [], "skipped": [], "errors": []}

    def save():
        data["elapsed_s"] = round(time.monotonic() - t_start, 1)
        (a.out / "gpu_results.json").write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
        (a.out / "gpu_results.md").write_text(markdown(data), encoding="utf-8")

    def attempt(label, fn, need=10.0):
        """fn() if `need` seconds of the budget are left, else None; an exception is recorded, not raised."""
        if left() < need:
            return data["skipped"].append(f"{label}: budget spent")
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - recorded; the rest of the run goes on
            data["errors"].append(f"{label}: {type(e).__name__}: {e}"[:800])
            print(data["errors"][-1], flush=True)

    def run(model_name, seq, precision, make_opt, feed) -> dict:
        """Fresh initial weights; `warmup` steps, then the median of `repeats` timed runs of `steps` steps."""
        model = hf if model_name == HF else ours
        model.load_state_dict(init[model])
        model.to(device).train()
        torch.manual_seed(0)
        try:
            step, scaler = make_step(model, make_opt(model.parameters()), precision, device)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            losses, seconds = [step(feed[k % len(feed)]) for k in range(warmup)], []
            for r in range(repeats):
                sync()
                t0 = time.perf_counter()
                losses += [step(feed[(warmup + r * steps + k) % len(feed)]) for k in range(steps)]
                sync()
                seconds.append(time.perf_counter() - t0)
            peak_mem = torch.cuda.max_memory_allocated() / GIB if cuda else None
        finally:
            model.zero_grad(set_to_none=True)
            model.to("cpu")
            if cuda:
                torch.cuda.empty_cache()
        per_s = [tokens * steps / s for s in seconds]
        row = {"model": model_name, "seq": seq, "batch": tokens // seq, "precision": precision}
        row.update(tokens_per_s=statistics.median(per_s), tokens_per_s_repeats=per_s, loss_first=float(losses[0]))
        row.update(step_ms=1000 * statistics.median(seconds) / steps, loss_last=float(losses[-1]))
        row.update(peak_mem_gib=peak_mem, losses=[round(float(v), 4) for v in losses])  # every step's loss
        if scaler is not None:  # the scale grows only after 2000 good steps, so each halving is one skipped step
            row.update(loss_scale=scaler.get_scale(), skipped_steps=round(math.log2(INIT_SCALE / scaler.get_scale())))
        peak = tp.peak_flops(name, precision) if cuda else None
        row["flops_per_token"] = tp.model_flops_per_token(n_params, shape.layers, shape.hidden, seq)
        nonemb = 6 * (n_params - n_emb) + 12 * shape.layers * shape.hidden * seq
        row["mfu"] = tp.mfu(row["tokens_per_s"], row["flops_per_token"], peak) if peak else None
        row["mfu_nonembedding"] = tp.mfu(row["tokens_per_s"], nonemb, peak) if peak else None
        print(f"{model_name:20s} seq {seq:4d} {precision}: {row['tokens_per_s']:12,.0f} tokens/s", flush=True)
        return row

    if build is not None:  # with the compile beside the timed steps, rows read up to 18% slower (2026-12-04)
        t_wait = time.monotonic()
        try:
            build.wait(timeout=min(150.0, max(1.0, left() - 120)))
        except subprocess.TimeoutExpired:
            pass  # still building: it runs on beside the main table, which the meta line below records
        meta["fused_adam_build_wait_s"] = round(time.monotonic() - t_wait, 1)
    meta["fused_adam_build_running_during_main"] = build is not None and build.poll() is None
    save()
    adamw = lambda ps: torch.optim.AdamW(ps, lr=LR, weight_decay=WD, fused=cuda)  # noqa: E731
    for seq in seqs:
        feeds = {OURS: batches(seq, tokens // seq, 4, vocab, device)}
        feeds[HF] = feeds[OURS]
        feeds[NOMASK] = [{k: v for k, v in b.items() if k != "attention_mask"} for b in feeds[OURS]]
        for precision in ("bf16", "fp16"):
            speed = {}
            for model_name in (OURS, HF, NOMASK) if precision == "bf16" else (OURS, HF):
                label = f"{model_name} seq {seq} {precision}"
                row = attempt(label, lambda: run(model_name, seq, precision, adamw, feeds[model_name]))
                if row:
                    data["main"].append(row)
                    speed[model_name] = row["tokens_per_s"]
                save()
            if OURS in speed and HF in speed:
                r = {"seq": seq, "precision": precision, "ours_over_hf": speed[OURS] / speed[HF]}
                data["ratios"].append({**r, "nomask_over_hf": speed[NOMASK] / speed[HF]} if NOMASK in speed else r)
                save()
    meta["fused_adam_build_running_after_main"] = build is not None and build.poll() is None

    for mem_preset, mem_seq in (("tiny", 32),) if a.tiny else (("300M", 128), ("300M", 512), ("1B", 128), ("1B", 512)):
        label = f"memory {mem_preset} seq {mem_seq}"
        row = attempt(label, lambda: memory_row(mem_preset, mem_seq, vocab, device, a.tiny), need=40)
        data["memory"] += [row] if row else []
        print(f"{label}: {row and row['status']}", flush=True)
        save()

    ds = {
        "status": "skipped",
        "reason": "deepspeed is not importable" if cuda else "needs CUDA: FusedAdam is a CUDA kernel",
    }
    if build is not None:
        try:
            build.wait(timeout=max(1.0, left() - 20))
        except subprocess.TimeoutExpired:
            build.kill()
            build.wait()
        tail = (a.out / "ds_build.log").read_text(errors="replace")[-1500:]
        reason = f"fused_adam JIT build exit {build.returncode} (negative: stopped at --budget); see build_log_tail"
        ds = {"status": "skipped", "reason": reason, "build_log_tail": tail}
        if build.returncode == 0:

            def fused_adam_run():
                from deepspeed.ops.adam import FusedAdam

                fused = lambda ps: FusedAdam(ps, lr=LR, weight_decay=WD, adam_w_mode=True)  # noqa: E731
                return run(OURS, seqs[0], "bf16", fused, batches(seqs[0], tokens // seqs[0], 4, vocab, device))

            row = attempt("DeepSpeed FusedAdam", fused_adam_run)
            ds.update(
                {"status": "ok", "reason": None, **row} if row else {"status": "not measured", "reason": "errors"}
            )
    data["deepspeed"] = ds
    first = next((r for r in data["ratios"] if r["seq"] == seqs[0] and r["precision"] == "bf16"), None)
    data["ratio"] = first["ours_over_hf"] if first else None
    save()
    print("\n" + markdown(data))
    print(f"ratio: {data['ratio']:.3f}" if first else "ratio: n/a")
    return data


if __name__ == "__main__":
    main()
