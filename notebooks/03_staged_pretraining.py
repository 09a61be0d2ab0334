# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Staged (curriculum) pretraining on DeepSpeed
#
# A plan is a list of stages (sequence length, global batch, steps or tokens, learning rate, mask
# strategy); each stage warm-starts from the previous stage's checkpoint. Every stage runs through
# `deepspeed.initialize` (ZeRO stage selectable; on CPU with torch's AdamW). The plan is validated
# before any work: global batch = micro batch × accumulation × data-parallel size.
#
# Training does not run inside the kernel: `pretraining.launch` starts the same entry point as
# `obert pretrain --plan PLAN --output DIR` as a subprocess (a single process on CPU, the DeepSpeed
# launcher for several GPUs or a hostfile) and follows it here: a progress bar, the training log and a
# live loss / throughput plot. The run writes `run.json` (status, step), `metrics.csv` (a row per
# optimiser step) and `train.log` into its output directory, so it outlives the kernel.

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
plan_name = "tiny"
plan_overrides = {}
zero_stage = 2
multitask_plan = "tiny-multitask"
multitask_overrides = {"stages.0.steps": 8, "stages.1.steps": 4, "stages.0.warmup_steps": 1, "stages.1.warmup_steps": 1}

# %% [markdown]
# ## The plan
#
# `tiny` trains a 2-layer encoder in two stages on the sample corpus (a few minutes on CPU): 64-token
# sequences with whole-word masks, then 128-token sequences with phrase masks. Notebooks 04 and 05 read
# the last stage checkpoint from `{workdir}/pretrain`.

# %%
from obert_lib import pretraining, reports

reports.setup_cjk_font()
plan = pretraining.load_plan(plan_name, corpus_dir=f"{workdir}/corpus", output_dir=f"{workdir}/pretrain", **plan_overrides)
speed = pretraining.SpeedConfig(zero_stage=zero_stage)
pretraining.plan_table(plan, speed)

# %% [markdown]
# Sequence length, global batch and the mask-strategy mixture at every global step (a stage's mask
# schedule counts that stage's own optimiser steps); the shaded bands are the stages.

# %%
fig_plan = pretraining.plot_plan(plan)
plan_files = reports.save_figure(fig_plan, "03_plan", reports_dir)

# %% [markdown]
# ## Model presets and a memory plan for V100-32GB
#
# Parameter counts are measured (the models built on the meta device with the 21,128-token Chinese
# vocab). The plan gives, per preset, ZeRO stage, GPU count and sequence length, the model-state memory
# per GPU (DeepSpeed's ZeRO estimator formulas) and the largest micro-batch that fits 32 GiB with 2 GiB
# kept free, without and with activation recomputation (Korthikanti et al. 2022 estimate): estimates to
# choose `micro_batch` before a cluster run, not measurements.

# %%
from obert_lib import model

model.preset_table()

# %%
model.memory_plan(["100M", "300M", "1B"], gpus=[1, 8, 64], seq_lens=[128, 512])

# %% [markdown]
# ## Train
#
# The cell blocks until the run ends. **Interrupting the kernel (■) stops the run cleanly**: the
# trainer finishes its current optimiser step, writes a resume point under
# `{workdir}/pretrain/checkpoints/resume/` and exits; the cell then prints the last checkpoint, and
# `pretraining.launch(plan, speed, resume=True)` continues at exactly that step. After a kernel restart,
# `pretraining.attach(plan.output_dir)` follows a run that is still going (and shows the final state of
# one that has ended); a second `launch` into a directory whose run is still alive is refused. Until
# the first step a status line says what the run is doing (DeepSpeed starts and builds its ops, about a
# minute on CPU); DeepSpeed's own notes stay in `train.log`.

# %%
handle = pretraining.launch(plan, speed)
pretraining.run_summary(handle)

# %% [markdown]
# ## Loss curves across stages
#
# One row per optimiser step (`metrics.csv`); stage 2 starts from stage 1's weights with a fresh
# optimiser and warm-up, so its loss continues from where stage 1 ended at the longer length.

# %%
metrics = handle.metrics()
pretraining.stage_summary(metrics)

# %%
fig = pretraining.plot_losses(metrics)
loss_files = reports.save_figure(fig, "03_pretraining_loss", reports_dir)

# %% [markdown]
# ## Checkpoints
#
# A Hugging Face checkpoint (weights, tokenizer, resolved plan, DeepSpeed state) after each stage;
# `pretraining.latest_checkpoint(f"{workdir}/pretrain")` is what notebooks 04 and 05 load.

# %%
pretraining.checkpoint_table(handle)

# %% [markdown]
# ## The OBERT preset on a V100 cluster
#
# `obert-curriculum` (`obert_lib/pretraining/plans/obert-curriculum.yaml`) is the 100M (BERT-base
# shape) curriculum: 64 → 128 → 256 → 512 tokens, global batch 1024 → 5120, masks words → phrases →
# clauses, 40B tokens. It is sized for 64 V100-32GB (8 nodes × 8, data-parallel size 64); with another
# GPU count scale `micro_batch` so that global = micro × accumulation × GPUs still holds (the plan is
# validated before any work, so a wrong product fails at once with the fix in the message).
#
# 1. Preprocess the full corpus into `runs/corpus` (notebook 01 / `obert preprocess`, Slurm executor).
# 2. Write a DeepSpeed hostfile like `env/cluster/hostfile.example` (`node-01 slots=8`, one line per node).
# 3. Start it with a speed-only DeepSpeed config from `env/deepspeed/` — V100 has no bf16, so fp16 with
#    dynamic loss scaling (`v100_multinode_fp16_zero2.json` across nodes, `v100x8_fp16_zero2.json` on one
#    node; `env/deepspeed/README.md` lists them):
#
#    ```bash
#    deepspeed --hostfile env/cluster/hostfile.example --no_local_rank --module obert_lib.cli pretrain \
#        --plan obert-curriculum --output runs/pretrain-obert-curriculum \
#        --speed data_parallel_size=64 --speed precision=fp16 \
#        --speed deepspeed_config=env/deepspeed/v100_multinode_fp16_zero2.json
#    ```
#
#    or from a notebook on the head node (the data-parallel size is taken from the hostfile):
#
#    ```python
#    plan = pretraining.load_plan("obert-curriculum")
#    speed = {"precision": "fp16", "deepspeed_config": "env/deepspeed/v100_multinode_fp16_zero2.json"}
#    handle = pretraining.launch(plan, speed, hostfile="env/cluster/hostfile.example", wait=False)
#    ```
#
#    Under Slurm, `env/cluster/slurm_pretrain.sbatch` writes the hostfile from the allocation and runs
#    the same command (`PLAN=obert-curriculum OUT=runs/pretrain-obert-curriculum sbatch --nodes=8
#    env/cluster/slurm_pretrain.sbatch`; point its `deepspeed_config` at the multi-node file).
# 4. Watch it from any kernel with `pretraining.attach("runs/pretrain-obert-curriculum")` (progress bar,
#    log, live loss and tokens/s from `run.json` and `metrics.csv`).
# 5. Stop it with a kernel interrupt while following it (or `attach(dir, wait=False).stop()`): every rank
#    finishes its step and a resume point is written; continue with
#    `pretraining.launch(plan, speed, hostfile=..., resume=True)` or by adding `--resume` to the command.
#    Resume points are also written every `speed.checkpoint_every` steps, so a crashed job loses at most
#    that many steps.

# %% [markdown]
# ## Multi-task pretraining with learned uncertainty weights
#
# A plan may list auxiliary tasks beside MLM (`aux_tasks`, docs/multitask.md): here a sentence-pair task
# from a query-title click log (`data/sample/click_pairs.jsonl`, 48 hand-written pairs) and one built from
# the corpus itself (are two paragraphs from the same document?). Each loss L_i gets a learned
# log-variance s_i: L = Σ exp(−s_i)·L_i + s_i/2 (Kendall, Gal and Cipolla 2018). The stage checkpoints stay
# plain masked-LM folders; the heads and s_i sit beside them in `multitask.safetensors`. The cell runs
# `multitask_overrides` (a few steps); leave them out (`{}`) for the preset's 60 + 20 steps.

# %%
mt_plan = pretraining.load_plan(multitask_plan, corpus_dir=f"{workdir}/corpus", output_dir=f"{workdir}/pretrain-multitask", **multitask_overrides)
mt_handle = pretraining.launch(mt_plan, speed)
pretraining.run_summary(mt_handle)

# %% [markdown]
# Each task's weight exp(−s_i) and its unweighted loss per step (`metrics.csv` columns `weight/<task>`,
# `loss/<task>`, `log_var/<task>`, `loss/total`; TensorBoard under `multitask/`). A task whose loss stays
# high gets a smaller weight: Kendall's optimum is exp(−s_i) = 1/(2·L_i).

# %%
from obert_lib import multitask

mt_metrics = mt_handle.metrics()
fig_weights = multitask.plot_task_weights(mt_metrics)
weight_files = reports.save_figure(fig_weights, "03_multitask_weights", reports_dir)
