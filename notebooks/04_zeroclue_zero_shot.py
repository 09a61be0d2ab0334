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
# # 04 · ZeroCLUE zero-shot check
#
# The pretrained encoder scores a FewCLUE task without any training: each example is put into a
# cloze template (e.g. `[MASK]满意。<review>`) and the label words (很 / 不) are compared by their
# masked-LM log-probability. Point `data_dir` at `shared:fewclue` (the real FewCLUE files) and
# `checkpoint` at a real model for a meaningful number; the tiny demo model sits near chance.

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
checkpoint = None  # None: the last stage of <workdir>/pretrain
task = "eprstmt"
data_dir = "sample:fewclue"
split = "dev_0"

# %%
from obert_lib import evaluation, pretraining, reports

reports.setup_cjk_font()
checkpoint = checkpoint or pretraining.latest_checkpoint(f"{workdir}/pretrain")
result = evaluation.run({"checkpoint": str(checkpoint), "task": task, "data_dir": data_dir, "split": split,
                         "output_dir": f"{workdir}/zeroshot"})  # writes <output_dir>/<task>/<split>/
result.metrics

# %%
result.predictions.head(10)

# %%
fig = evaluation.plot_zero_shot(result, title=f"{task} zero-shot")
reports.save_figure(fig, f"04_zero_shot_{task}", reports_dir)
