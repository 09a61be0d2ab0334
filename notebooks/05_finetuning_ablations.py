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
# Fine-tune the pretrained encoder on one FewCLUE task with and without a robustness trick
# (FGM adversarial training on the embeddings, or R-Drop), over several seeds; the table reports
# mean and standard deviation of the dev accuracy. Every run appends a row to `results.csv`.

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
checkpoint = None  # None: the last stage of <workdir>/pretrain
task = "eprstmt"
data_dir = "sample:fewclue"
variants = {"baseline": {"trick": "none"}, "fgm": {"trick": "fgm"}}
seeds = [0, 1, 2]
epochs = 5

# %%
from obert_lib import finetuning, pretraining, reports

reports.setup_cjk_font()
checkpoint = checkpoint or pretraining.latest_checkpoint(f"{workdir}/pretrain")
runs, summary = finetuning.run_ablation({"checkpoint": str(checkpoint), "task": task, "data_dir": data_dir, "epochs": epochs,
                                         "output_dir": f"{workdir}/finetune/{task}"}, variants, seeds)
runs

# %%
summary

# %%
fig = finetuning.plot_ablation(summary)
reports.save_figure(fig, f"05_ablation_{task}", reports_dir)
