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
# # 05 · Fine-tuning ablations
#
# Does a fine-tuning trick help on a task beyond seed noise, and what does it cost? An ablation fine-tunes the
# pretrained encoder once per task × variant × seed, each variant being a few dotted overrides of one base config
# (FGM: an adversarial step on the word-embedding output; R-Drop: two dropout passes pulled together by a
# symmetric KL; MSD: several dropout masks through one classifier). Each variant is compared with the baseline
# seed by seed: mean ± std, Δ, paired t-test and Wilcoxon signed-rank p-values, and the seconds per optimiser step
# relative to the baseline. A finished run, found by the hash of its resolved config, is never run again, so a
# rerun of this notebook only runs what is missing. The last section tags the subjects of KgCLUE questions (NER).
#
# The demo's tiny encoder and these small splits (32 rows in the shared train_0/dev_0, 16 in the sample) make
# differences of a few points noise, and the p-values say so; for real numbers point `checkpoint` at a real
# model and use `train_few_all` / `dev_few_all`.

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
checkpoint = None  # None: the last stage of <workdir>/pretrain
data_dir = None  # None: "shared:fewclue" when ../shared/data/fewclue exists, else "sample:fewclue"
tasks = ["eprstmt", "bustm"]  # the sample data has train_0/dev_0 of these two; the shared data has all nine
train_split = "train_0"  # "train_few_all" / "dev_few_all": FewCLUE's full few-shot sets (shared data)
eval_split = "dev_0"
variants = {  # dotted overrides of the base config; the first is the baseline
    "baseline": {},
    "fgm": {"tricks.fgm.enabled": True},
    "rdrop": {"tricks.rdrop.enabled": True},
    "msd": {"tricks.msd.enabled": True},
}
seeds = [0, 1, 2]
epochs = 5
workers = 1  # local worker processes for the ablation's runs
ner_data_dir = None  # None: shared:kgclue (../shared/data/kgclue); the NER run is skipped when it is absent
ner_train_split = "train"
ner_eval_split = "dev"
ner_epochs = 2

# %%
from obert_lib import finetuning, paths, pretraining, reports
from obert_lib.finetuning import ablation, ablation_plots

reports.setup_cjk_font()
checkpoint = str(checkpoint or pretraining.latest_checkpoint(f"{workdir}/pretrain"))
data_dir = data_dir or ("shared:fewclue" if (paths.shared_data_dir() / "fewclue").is_dir() else "sample:fewclue")
{"checkpoint": checkpoint, "data_dir": data_dir}

# %% [markdown]
# ## The ablation
#
# One mapping in the format of `configs/finetune/ablation.yaml`: the base config, the tasks, the variants and the
# seeds. Every run writes its folder `<workdir>/finetune/ablation/runs/<task>/<variant>/seed<k>-<hash8>` (config,
# history, metrics, best model in safetensors, `done.json`); the runs table has one row per run, `status` ran,
# cached (found done) or failed (its error kept, the other runs go on).

# %%
config = ablation.load_ablation({
    "base": {"data": {"data_dir": data_dir, "train_split": train_split, "eval_split": eval_split},
             "model": {"checkpoint": checkpoint}, "train": {"epochs": epochs}},
    "tasks": tasks, "variants": variants, "seeds": seeds, "workers": workers,
    "output_dir": f"{workdir}/finetune/ablation",
})  # fmt: skip
result = ablation.run_ablation(config)
result.runs[["task", "variant", "seed", "status", "eval_metric", "best_epoch", "seconds_per_step", "run_dir"]]

# %% [markdown]
# ## Summary: mean ± std, Δ against the baseline, paired tests, cost
#
# One row per task × variant: `mean`, `std` over seeds, `delta` = mean − baseline mean, the paired t-test (`t`,
# `p_t`) and the exact Wilcoxon signed-rank test (`p_wilcoxon`) over the seeds both ran, and `cost_ratio` =
# seconds per optimiser step / the baseline's. With 3 seeds the smallest possible Wilcoxon p is 0.25: a paired
# t-test is the only one of the two that can reach 0.05 there.

# %%
result.summary

# %% [markdown]
# Bars: the mean dev accuracy per variant with one standard deviation over seeds, one panel per task. Heat map: Δ
# against the baseline, tasks down and variants across; a star marks paired-t p < 0.05.

# %%
fig = ablation_plots.plot_ablation_bars(result.summary)
reports.save_figure(fig, "05_ablation_bars", reports_dir)

# %%
fig = ablation_plots.plot_ablation_delta(result.summary)
reports.save_figure(fig, "05_ablation_delta", reports_dir)

# %% [markdown]
# ## One NER run: subjects of KgCLUE questions
#
# Slot filling as BIO tagging: the subject of each question's answer (`entity ||| attribute ||| value`, the
# entity's `（…）` suffix removed) is located in the question and tagged B-SUBJ/I-SUBJ; the dev metric is span F1
# with seqeval's conventions (an all-O tagger scores 0). `skipped_rows` counts questions where no mention was
# found. The run's folder is named by the hash of its config, as the ablation's are, so a rerun with other
# parameters gets a new folder and a rerun with the same ones returns the finished run. The demo checkpoint's
# vocabulary comes from the sample corpus (about 4% of the dev questions' tokens are [UNK] to it);
# docs/finetuning.md also reports a run with the standard Chinese vocabulary.

# %%
ner_dir = paths.resolve_data_path(ner_data_dir or "shared:kgclue")
ner_config = {
    "data": {"task": "kgclue_ner", "data_dir": str(ner_dir), "train_split": ner_train_split,
             "eval_split": ner_eval_split},
    "model": {"checkpoint": checkpoint, "max_length": 64},
    "train": {"epochs": ner_epochs, "batch_size": 32},
}  # fmt: skip
ner_output = f"{workdir}/finetune/kgclue_ner/{ablation.config_hash(ner_config)[:8]}"  # one folder per config
ner = (finetuning.run({**ner_config, "output_dir": ner_output}) if ner_dir.is_dir()
       else print(f"NER run skipped: {ner_dir} does not exist"))  # fmt: skip
ner.metrics if ner else None

# %%
ner.history if ner else None
