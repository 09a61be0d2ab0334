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
# # 06 · One backbone, many tasks: top-N fine-tuning and serving
#
# OBERT's serving result: freeze the embeddings and the bottom L − N layers, fine-tune only the top N layers and
# the head per task, then run the shared bottom once per input and each task's top N on its output. At 10 tasks
# and N = 3 the compute was about 27% of 10 fully fine-tuned models, within 1% of their accuracy. This notebook
# measures the three parts: compute against N and T (counted FLOPs), accuracy against N (an ablation over seeds,
# top-N against full fine-tuning), and a real server (`obert serve`, FastAPI + uvicorn) started from a cell,
# queried, load-tested against T full models, and stopped.
#
# The demo's tiny encoder has 2 layers, so the demo compares N = 1 with full fine-tuning on the sample data; the
# 12-layer table with N = 1, 3, 6 on three FewCLUE tasks is in docs/unified.md (`scripts/top_n_accuracy.sh`
# reproduces it), or pass a 12-layer `checkpoint` with `tops=[1, 3, 6]` here.

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
checkpoint = None  # None: the last stage of <workdir>/pretrain
data_dir = None  # None: "shared:fewclue" when ../shared/data/fewclue exists, else "sample:fewclue"
tasks = ["eprstmt", "bustm"]  # classification and sentence-pair tasks share one input and one backbone
train_split = "train_0"  # "train_few_all" / "dev_few_all" with the shared data
eval_split = "dev_0"
tops = [1]  # trained top layers N, each < L (the tiny encoder has 2 layers; [1, 3, 6] for a 12-layer one)
seeds = [0, 1]
epochs = 3
max_length = 64
workers = 1
compute_shape = [12, 768, 12, 3072]  # layers, hidden, heads, ffn: BERT-base; [24, 1024, 16, 4096] for 300M
compute_tasks = [1, 2, 3, 5, 10]
requests = 60  # load test: timed requests per server, after an untimed warm-up round of the same load
concurrency = 8
texts = ["这家店的菜很好吃，服务也很周到。", "快递太慢了，包装也破了。", "今天的比赛太精彩了！"]

# %%
from obert_lib import paths, pretraining, reports
from obert_lib.finetuning import ablation
from obert_lib.serving.loadtest import compare_backbones
from obert_lib.serving.process import ServerProcess
from obert_lib.unified import UnifiedModel, top_n

reports.setup_cjk_font()
checkpoint = str(checkpoint or pretraining.latest_checkpoint(f"{workdir}/pretrain"))
data_dir = data_dir or ("shared:fewclue" if (paths.shared_data_dir() / "fewclue").is_dir() else "sample:fewclue")
layers = top_n.checkpoint_layers(checkpoint)
{"checkpoint": checkpoint, "data_dir": data_dir, "layers": layers}

# %% [markdown]
# ## Compute against N and T
#
# FLOPs counted by `torch.utils.flop_counter` over one input of 128 tokens (on the meta device: exact counts, no
# weights): the shared backbone runs L − N layers once and T tops of N layers; T separate models run T·L layers.
# `layers` is that count, (L − N + T·N) / (T·L); `theory` is OBERT's (L + T·N) / (T·L), which counts the N top
# layers of the shared backbone once more, so it sits N / (T·L) above what is measured (and above 1 at T = 1).
# `obert bench unified` adds wall time and the 24-layer shape.

# %%
grid = top_n.compute_grid(tuple(compute_shape), compute_tasks)
grid

# %%
fig = top_n.plot_compute(grid)
reports.save_figure(fig, "06_compute", reports_dir)

# %% [markdown]
# ## Accuracy against N
#
# An ablation (the format of `configs/top_n/ablation.yaml`): variant `full` fine-tunes every layer, `top<N>` sets
# `model.freeze_layers = L − N`. Each run is paired with `full` by seed; the table gives mean ± std over seeds, Δ
# in points and the paired t-test p. Finished runs are found by the hash of their config and not run again.

# %%
base = {"data": {"data_dir": data_dir, "train_split": train_split, "eval_split": eval_split},
        "model": {"checkpoint": checkpoint, "max_length": max_length}, "train": {"epochs": epochs}}  # fmt: skip
config = ablation.load_ablation(top_n.ablation_config(base, tasks, tops, layers, seeds, f"{workdir}/top_n", workers))
result = ablation.run_ablation(config)
result.runs[["task", "variant", "seed", "status", "eval_metric", "seconds_per_step"]]

# %%
accuracy = top_n.accuracy_table(result.output_dir, layers)
top_n.format_accuracy(accuracy)

# %%
fig = top_n.plot_accuracy_vs_top(accuracy, layers)
reports.save_figure(fig, "06_accuracy_vs_top", reports_dir)

# %% [markdown]
# ## One backbone for every task
#
# The top-N models of one seed share their embeddings and bottom L − N layers bit for bit, so `UnifiedModel` keeps
# one copy of them (it refuses models whose shared tensors differ, naming the task and the tensor). Its logits
# equal each task model run alone.

# %%
dirs = top_n.task_checkpoints(result.output_dir, f"top{min(tops)}", seeds[0])
unified = UnifiedModel.from_checkpoints(dirs)
{"tasks": list(unified.tops), "shared_layers": unified.shared_layers, "layers": layers}

# %%
top_n.max_difference(dirs, texts)

# %%
unified.predict(texts)

# %% [markdown]
# ## The server
#
# `obert serve` in a subprocess on a free localhost port: POST /predict answers every task for a text or a batch
# of texts; concurrent requests are micro-batched into one forward; GET /health and GET /info; bad input gets a
# 4xx with a message. The same command from a shell: `obert serve --task eprstmt=DIR --task bustm=DIR`.

# %%
server = ServerProcess(dirs).start()
server.get("/info")

# %%
server.predict(texts)

# %%
server.stop()

# %% [markdown]
# ## Load test: the shared backbone against T full models
#
# Each side is served alone by `obert serve` (the baseline with `--set separate=true`) and receives the same
# bounded load from concurrent clients; requests/s, p50/p95 latency and the micro-batching each server did. The
# last line is shared/separate requests per second. On a tiny model over localhost the HTTP overhead dominates;
# the compute ratio above is what grows with the model.

# %%
load = compare_backbones(dirs, texts, requests=requests, concurrency=concurrency)
