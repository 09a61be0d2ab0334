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
# # 08 · One experiment: pretraining variants → ZeroCLUE and fine-tuning → a comparison with statistics
#
# OBERT's central claim is that its five span masks (words, entities, keywords, phrases, clauses), with a
# curriculum from fine to coarse, give a better encoder than character masking at the same size and budget. An
# experiment file (`configs/experiments/*.yaml`) puts that to the test in one run: a corpus, a base pretraining
# plan, a token budget and seeds, and pretraining **variants** as overrides of the plan. Every variant is
# pretrained on the same corpus in the same data order for the same number of tokens, scored zero-shot on
# ZeroCLUE tasks, and fine-tuned by an ablation over the variants' checkpoints; the report puts them side by side
# with intervals and paired tests against the baseline variant.
#
# This notebook runs `configs/experiments/tiny.yaml` on the sample data (a minute on two CPU cores): character
# masks against the OBERT mixture, 8 optimiser steps each of a 2-layer encoder (266,884 parameters with the
# sample corpus's vocabulary), scored on the sample's 16-row task files. Its numbers only show that the machinery
# works: intervals tens of points wide say that nothing here tells the two recipes apart. The last section says
# how to run the full-size file on a GPU cluster.

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
experiment_file = "../configs/experiments/tiny.yaml"
overrides = {}  # dotted keys of the experiment file, e.g. {"zeroshot.tasks": "all", "tokens": 16384}

# %%
from obert_lib import evaluation, experiment, reports
from obert_lib.finetuning import ablation_plots

reports.setup_cjk_font()
cfg, runtime = experiment.load_experiment(experiment_file, output_dir=f"{workdir}/experiment", **overrides)
cfg.variants

# %% [markdown]
# ## The variants' plans
#
# Each variant is the base plan (`tiny`) with the variant's overrides, its seed, and the token budget: the
# experiment rescales every stage so that each variant trains on `tokens` positions in all (steps × global batch ×
# sequence length; warm-up and mask-schedule points keep their place in the stage). All plans are validated
# before any work, and each one's folder is named by the hash of its resolved plan, so a changed variant trains
# again in a new folder and an unchanged one is found finished.

# %%
specs = experiment.pretrain_specs(cfg, runtime)
experiment.plan_table(specs)

# %% [markdown]
# ## Run it
#
# Corpus (built once), then every variant's pretraining, its ZeroCLUE scores and the fine-tuning ablation. Each
# level is skipped when it is finished, and an interrupted pretraining resumes from its resume point: running
# this cell again does nothing but rebuild the report. `status` says whether a pretraining ran now or was found
# done (`cached`).

# %%
result = experiment.run(cfg, runtime)
result.pretraining

# %% [markdown]
# ## Variants × tasks
#
# Zero-shot cells: accuracy % with its 95% bootstrap interval over the scored rows (with several pretraining
# seeds: mean ± std over them). Fine-tuning cells: the dev metric × 100, mean ± std over the fine-tuning seeds.

# %%
result.report.table

# %% [markdown]
# ## Paired comparisons with the baseline
#
# Zero-shot: each variant against the baseline on the same rows, the accuracy difference with its paired-bootstrap
# 95% interval, the bootstrap p-value and the exact McNemar test (`evaluation.compare_runs`).

# %%
result.report.zeroshot_comparisons

# %%
fig = evaluation.plot_comparison(result.report.zeroshot_comparisons)
reports.save_figure(fig, "08_zeroshot_diff", reports_dir)

# %% [markdown]
# Fine-tuning: the ablation's summary, seeds paired: mean, std, Δ against the baseline, the paired t-test and the
# exact Wilcoxon signed-rank test (with two seeds the Wilcoxon p cannot go below 0.5, and the t-test has one
# degree of freedom: the tiny file shows the columns, not a verdict).

# %%
result.report.finetune_comparisons

# %%
fig = ablation_plots.plot_ablation_bars(result.report.finetune_comparisons)
reports.save_figure(fig, "08_finetune_bars", reports_dir)

# %% [markdown]
# ## MLM loss curves side by side
#
# Loss and MLM accuracy against the real tokens each variant has trained on (padding excluded), from every run's
# `metrics.csv`; a dotted line marks where a later stage begins. Losses of different mask strategies are not the
# same task (a whole masked clause is harder to predict than a character), so the curves show training health and
# speed, not which encoder is better: the tables above answer that.

# %%
fig = experiment.plot_loss_curves(result.report.curves)
reports.save_figure(fig, "08_loss_curves", reports_dir)

# %% [markdown]
# ## Compute spent
#
# Per run: optimiser steps, real tokens and padded positions (the budget counts positions), hours of optimiser
# steps from `metrics.csv`, and device-hours = those hours × the devices used (GPUs, or on CPU the threads torch
# used: CPU-hours); the zero-shot and fine-tuning hours beside them. The first run in a process also pays one-off
# start-up work (DeepSpeed's op build) in its first step.

# %%
result.report.compute

# %% [markdown]
# ## The report on disk
#
# `experiment.report(cfg)` (or `obert experiment report FILE`) rebuilds the report from the output folder alone,
# trains nothing: `results.md` and `results.csv` beside `experiment_config.json`, the comparisons and compute as
# CSV, and the figures under `figures/`. Anything not on disk yet is listed in `missing`.

# %%
rebuilt = experiment.report(cfg)
[str(p) for p in rebuilt.files]

# %% [markdown]
# ## The full-size experiment on a GPU cluster
#
# `configs/experiments/obert_vs_char_gpu.yaml` is the same comparison at full size: the 100M (BERT-base shape)
# preset, FewCLUE's unlabelled text as the corpus (built by the corpus stage from `shared:fewclue`), 8.4M
# positions per variant (about four passes over that ~2M-token corpus), four variants (`char`, `words`, `obert`,
# `motian`), all nine ZeroCLUE tasks on `dev_few_all`, and a three-seed fine-tuning ablation on eprstmt, tnews and
# bustm. The file's comments give the reason for each number; docs/experiment.md explains every key.
#
# ```bash
# # one 8-GPU node: each variant data-parallel on the 8 GPUs (pretraining.launch, the DeepSpeed launcher)
# obert experiment run configs/experiments/obert_vs_char_gpu.yaml --runtime gpus=8
# # several nodes: a DeepSpeed hostfile (env/cluster/hostfile.example), global batches divisible by the GPUs
# obert experiment run configs/experiments/obert_vs_char_gpu.yaml --runtime hostfile=env/cluster/hostfile.example
# # or a variant per GPU at once, through the ablation runner's Ray engine (a Ray cluster: ray.address=auto)
# obert experiment run configs/experiments/obert_vs_char_gpu.yaml --runtime executor=ray --runtime workers=4 \
#     --runtime ray.num_gpus=1
# # V100 has no bf16: --runtime speed.precision=fp16
# obert experiment report configs/experiments/obert_vs_char_gpu.yaml
# ```
#
# The output folder must be on storage every node sees. A job killed by the scheduler is simply started again:
# finished pretrainings, zero-shot tasks and fine-tuning runs are found by their hashes and kept, and the
# interrupted pretraining continues from its last resume point (every `speed.checkpoint_every` steps).
