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
# A plan is a list of stages (sequence length, global batch, steps, learning rate, mask strategy);
# each stage warm-starts from the previous stage's checkpoint. Every stage runs through
# `deepspeed.initialize` (ZeRO stage selectable; on CPU with torch's AdamW). The plan is validated
# before any work: global batch = micro batch × accumulation × data-parallel size.
#
# On a V100 cluster: write a plan YAML with the real stages (e.g. 64 → 512 tokens, batch 64 → 5120),
# set `speed.precision: fp16`, and start `obert pretrain` under the DeepSpeed launcher with
# `env/cluster/hostfile.example` or the Slurm template in `env/cluster/`.

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
plan_name = "tiny"
plan_overrides = {}
zero_stage = 2

# %%
from obert_lib import pretraining, reports

reports.setup_cjk_font()
plan = pretraining.load_plan(plan_name, corpus_dir=f"{workdir}/corpus", output_dir=f"{workdir}/pretrain", **plan_overrides)
speed = pretraining.SpeedConfig(zero_stage=zero_stage)
pretraining.plan_table(plan, speed)

# %%
result = pretraining.run(plan, speed)
result.metrics.groupby("stage_name")[["loss", "mlm_accuracy", "tokens_per_s"]].agg(["first", "last"])

# %%
fig = pretraining.plot_losses(result.metrics)
reports.save_figure(fig, "03_pretraining_loss", reports_dir)

# %%
[str(p) for p in result.checkpoints]
