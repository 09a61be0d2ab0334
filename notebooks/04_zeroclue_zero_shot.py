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
# # 04 · ZeroCLUE zero-shot
#
# The nine FewCLUE tasks scored without training by the published PET protocol: each example goes into its task's
# cloze template (e.g. `[M]满意。<review>`), one forward pass with all label slots masked scores every label word
# (很 / 不) by the sum of its slots' log-probabilities, and the best word wins. Slots are found by the [MASK] id,
# and truncation never cuts the template or a slot. Two faults of the reference scripts are fixed: cluewsc's
# inverted map, and iflytek/csldcp maps giving one word to several classes (the data's de-duplicated maps instead).
# Score = mean of the nine accuracies; the anchors beside it are `test_public` numbers. The demo's tiny model sits
# near the majority-class row: for real numbers set `data_dir = "shared:fewclue"`, `split = "test_public"` (from
# the FewCLUE repository) or `"dev_few_all"`, and `checkpoints` to real models.

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
checkpoints = None  # {name: checkpoint folder}; None: both stages of <workdir>/pretrain. The first is the baseline
data_dir = "sample:fewclue"  # "shared:fewclue": the real FewCLUE files
split = "dev_0"  # test_public (as published), dev_few_all, ...; test is unlabelled: submission files only
tasks = "all"  # or names, e.g. "eprstmt,tnews"
calibrate = True  # contextual calibration (Zhao et al. 2021) reported beside the plain score
confusion_task = "tnews"  # the task whose confusion matrix is drawn (any task but chid)

# %%
import pandas as pd

from obert_lib import evaluation, pretraining, reports

reports.setup_cjk_font()
checkpoints = checkpoints or {c.name: c for c in pretraining.attach(f"{workdir}/pretrain", wait=False).checkpoints()}
names = list(checkpoints)
settings = {"data_dir": data_dir, "split": split, "tasks": tasks, "calibrate": calibrate}
checkpoints

# %% [markdown]
# ## Score each checkpoint
#
# A run writes `metrics.json` (score, per task accuracy, rows scored `n`, 95% bootstrap interval `ci95`, rows
# skipped), `<task>/predictions.csv` (id, pred), `<task>/scores.csv` (gold, prediction and log-probability per
# label) and `anchors.csv` into `{workdir}/zeroshot/{split}/<checkpoint>`. The first checkpoint is the baseline.

# %%
baseline = evaluation.run({**settings, "checkpoint": str(checkpoints[names[0]]),
                           "output_dir": f"{workdir}/zeroshot/{split}/{names[0]}"})
pd.json_normalize([{"task": task, **m} for task, m in baseline.metrics["tasks"].items()]).set_index("task")

# %% [markdown]
# Every later checkpoint is scored with `compare_with` the baseline's folder, which adds a paired comparison
# (`comparison.csv`) to its output.

# %%
others = [evaluation.run({**settings, "checkpoint": str(checkpoints[name]), "compare_with": [str(baseline.output_dir)],
                          "output_dir": f"{workdir}/zeroshot/{split}/{name}"})
          for name in names[1:]]
runs = dict(zip(names, [baseline, *others]))
{name: str(r.output_dir) for name, r in runs.items()}

# %% [markdown]
# ## Beside the published anchors
#
# Accuracy % per task and the score (mean of the nine) above the published rows. The anchors are `test_public`
# numbers: a run on another split carries the split in its name and is only a rough guide against them.

# %%
evaluation.with_anchors({name: r.metrics for name, r in runs.items()}, split)

# %% [markdown]
# The score's 95% bootstrap interval (each task's rows resampled) and, with `calibrate`, the score after
# contextual calibration: label probabilities divided by those the model gives a content-free input.

# %%
pd.DataFrame({name: {"score": r.metrics["score"], "score_ci95": r.metrics["score_ci95"],
                     "score_calibrated": r.metrics.get("score_calibrated")} for name, r in runs.items()}).T

# %% [markdown]
# Accuracy per task with its 95% bootstrap interval; the RoBERTa-wwm-ext zero-shot and majority-class anchors
# as markers.

# %%
fig = evaluation.plot_zero_shot({name: r.metrics for name, r in runs.items()})
reports.save_figure(fig, "04_zeroclue_accuracy", reports_dir)

# %% [markdown]
# ## Is a later checkpoint better than the baseline?
#
# The checkpoints scored the same rows, so each row is a paired outcome: per task and for the score, the
# accuracy difference (other − baseline) with its paired-bootstrap 95% interval and p-value, and the exact
# McNemar p-value per task. An interval that crosses zero shows no difference at the 5% level.

# %%
comparison = evaluation.compare_runs([r.output_dir for r in runs.values()], names=names)
comparison

# %%
fig = evaluation.plot_comparison(comparison)
reports.save_figure(fig, "04_zeroclue_comparison", reports_dir)

# %% [markdown]
# ## Where one task goes wrong
#
# Gold against predicted labels of the last checkpoint on one task, the classes named by their label words.

# %%
from obert_lib.paths import resolve_data_path

words = evaluation.label_words(confusion_task, resolve_data_path(data_dir) / confusion_task)
fig = evaluation.plot_confusion(runs[names[-1]].scores[confusion_task], f"{confusion_task} · {names[-1]}", names=words)
reports.save_figure(fig, f"04_zeroclue_confusion_{confusion_task}", reports_dir)
