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
# # 09 · Distillation: a fine-tuned teacher into a smaller student, and what it keeps
#
# Motian's last step is "pretrain → fine-tune → distil": a good teacher, then a student small enough to serve. This
# notebook fine-tunes a teacher per task from the pretrained checkpoint, distils each into the teacher cut to k
# layers (as RBT3 is cut from RoBERTa-wwm-ext), and puts student against teacher in one table: dev metric,
# retention, parameters and inference speed. `obert distill --config configs/distill/tnews.yaml` is the same run
# from a shell; docs/distillation.md explains every setting.
#
# The demo's tiny encoder has 2 layers and the FewCLUE splits here hold 32 (shared) or 16 (sample) rows, so the
# numbers below say nothing about real retention: a 1-layer student of a near-chance teacher can even "retain"
# more than 100%. For real numbers point `checkpoint` at a 12-layer model, use `train_few_all` / `dev_few_all`
# and `student_layers=3`.

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
checkpoint = None  # None: the last stage of <workdir>/pretrain
data_dir = None  # None: "shared:fewclue" when ../shared/data/fewclue exists, else "sample:fewclue"
tasks = ["eprstmt", "bustm"]  # the sample data has train_0/dev_0 of these two; the shared data has all nine
train_split = "train_0"  # "train_few_all" / "dev_few_all": FewCLUE's full few-shot sets (shared data)
eval_split = "dev_0"
teacher_epochs = 5
epochs = 10  # distillation epochs; the best student by dev metric is kept
student_layers = 1  # the teacher's bottom k layers (the tiny encoder has 2; 3 for a 12-layer teacher, as RBT3)
temperature = 4.0
t_squared = True  # Hinton's T^2 factor on the KD term; False as TextBrewer and TinyBERT
alpha = 0.5  # the loss is alpha*KD + (1 - alpha)*CE(hard labels)
student_lr = 1e-3  # tiny encoders tolerate a high rate; ~5e-5 for a base-size student
max_length = 64
corpus_dir = None  # the pretraining-stage student's corpus; None: <workdir>/corpus (notebook 01's)
pretrain_steps = 40  # pretraining-stage distillation steps (16 sequences of 64 tokens each)

# %%
from obert_lib import distill, finetuning, paths, pretraining, reports

reports.setup_cjk_font()
checkpoint = str(checkpoint or pretraining.latest_checkpoint(f"{workdir}/pretrain"))
corpus_dir = corpus_dir or f"{workdir}/corpus"
data_dir = data_dir or ("shared:fewclue" if (paths.shared_data_dir() / "fewclue").is_dir() else "sample:fewclue")
{"checkpoint": checkpoint, "data_dir": data_dir, "tasks": tasks}

# %% [markdown]
# ## The teachers
#
# One `obert finetune` run per task from the pretrained checkpoint, every layer trained. A rerun with the same
# config finds the finished run in its folder and returns it without training again. The teacher is the run's
# `best/` folder (best dev accuracy).

# %%
teachers = {task: finetuning.run({
    "data": {"task": task, "data_dir": data_dir, "train_split": train_split, "eval_split": eval_split},
    "model": {"checkpoint": checkpoint, "max_length": max_length}, "train": {"epochs": teacher_epochs},
    "output_dir": f"{workdir}/distill/teacher-{task}"}) for task in tasks}  # fmt: skip
{task: result.metrics["eval_metric"] for task, result in teachers.items()}

# %% [markdown]
# ## Distillation into the teacher cut to k layers
#
# The student is a copy of the teacher keeping its embeddings, its bottom `student_layers` transformer layers and
# its task head. Each step's loss is `α·KD(T) + (1 − α)·CE`: KD is the KL divergence from the teacher's softmax at
# temperature T to the student's, CE the student's cross-entropy on the hard labels; the teacher stays frozen.
#
# - **α** weighs the two: 1 learns from the teacher alone, 0 from the labels alone (plain fine-tuning of the cut
#   model); 0.5 weighs them equally.
# - **The T² convention.** The gradients of the softened KD term shrink as 1/T², so Hinton, Vinyals and Dean (2015)
#   multiply it by T² to keep its weight against CE as T changes; TextBrewer and TinyBERT leave the factor out.
#   `t_squared` chooses (here True, Hinton's); at T = 4 the two differ by a factor of 16 in the KD term's weight,
#   so an α tuned under one convention does not carry over to the other.

# %%
students = {task: distill.run({
    "teacher": {"checkpoint": str(teachers[task].output_dir / "best")}, "student": {"layers": student_layers},
    "data": {"task": task, "data_dir": data_dir, "train_split": train_split, "eval_split": eval_split},
    "max_length": max_length, "kd": {"temperature": temperature, "t_squared": t_squared, "alpha": alpha},
    "train": {"epochs": epochs, "lr": student_lr}, "output_dir": f"{workdir}/distill/student-{task}",
    "results_table": f"{workdir}/distill/results.csv", "overwrite": True}) for task in tasks}  # fmt: skip
students[tasks[0]].history

# %% [markdown]
# ## The retention table
#
# Retention is the student's dev metric as a percentage of its teacher's (accuracy here, span F1 for tagging
# tasks): 100% means the small model lost nothing. `size_ratio` is student / teacher parameters (embeddings
# included, which dominate a tiny model), `speedup` teacher / student inference seconds per dev example (batches
# of 32 after an untimed warm-up batch, on this machine). On the tiny encoder a dev split takes milliseconds on a
# shared CPU, so its speedup is timing noise and can fall below 1; it means something for a 12-layer teacher.
#
# The anchor: TextBrewer's 3-layer student keeps 98.1% of RoBERTa-wwm-ext on XNLI and 99.6% on LCQMC (Yang et al.
# 2020; published numbers, not reproduced here). The demo's numbers come from a 2-layer encoder pretrained for a
# few steps on a sample corpus and 32-row splits: they exercise the code path and say nothing about real retention.

# %%
table = distill.retention_table([result.output_dir for result in students.values()])
table

# %%
fig = distill.plot_retention(table)
reports.save_figure(fig, "09_retention", reports_dir)

# %% [markdown]
# ## Distillation at the pretraining stage
#
# The same `distill.run` with `stage: pretrain` distils the pretrained checkpoint itself, before any fine-tuning:
# the student reads the corpus, masked as in pretraining, and learns the teacher's masked-LM distribution (KD at
# temperature T over the masked positions only) and its hidden states (MSE over the uniform layer map: 2 → 1
# layers pairs student 0 with teacher 0 and student 1 with teacher 2). The hard MLM loss and TinyBERT's
# attention-score MSE are further weights (`pretrain.weights`), 0 here. The student trains inside a DeepSpeed
# engine (ZeRO-2, fp32 on CPU) and is saved as a masked-LM folder that `obert finetune`, zero-shot scoring and
# the task stage above take as a checkpoint. `configs/distill/pretrain_tiny.yaml` is the same run from a shell.

# %%
pretrain_student = distill.run({
    "stage": "pretrain", "teacher": {"checkpoint": checkpoint}, "student": {"layers": student_layers},
    "kd": {"temperature": 2.0, "t_squared": t_squared},
    "pretrain": {"corpus_dir": corpus_dir, "train": {"steps": pretrain_steps, "warmup_steps": pretrain_steps // 10}},
    "output_dir": f"{workdir}/distill/pretrain-student", "overwrite": True})  # fmt: skip
pretrain_student.metrics

# %% [markdown]
# Left, the total loss and its parts per step (log scale); right, the student's MLM cross-entropy on the true
# tokens next to the teacher's on the same masked batches. The demo's teacher is a 2-layer encoder pretrained for a
# few hundred steps, so both curves sit near the cross-entropy of a unigram guess: the figure shows the mechanics,
# not a real student.

# %%
fig = distill.plot_pretrain_losses(pretrain_student.history)
reports.save_figure(fig, "09_pretrain_distillation", reports_dir)
