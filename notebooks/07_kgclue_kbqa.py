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
# # 07 · KgCLUE knowledge-base QA
#
# A KgCLUE question ("刘晓华主要讲什么课啊？") is answered with a triple of the knowledge base,
# `刘晓华（广东工业大学教授） ||| 主讲课程 ||| 《固体物理》`, in four steps: a token tagger marks the subject mention
# in the question; the mention is looked up in the knowledge store (exact surface form, then a fuzzy fallback,
# then the whole question); a question × relation pair classifier scores every relation of every candidate
# entity; the best pair's object comes from the store. Both models are fine-tuned from one pretrained checkpoint
# with the fine-tuning framework. The score is the official KgCLUE metric, EMF1 = 0.5·EM(object) + 0.5·F1(object)
# (×100 on the leaderboard), and every question is put into the first stage that failed.
#
# The knowledge store here is assembled from the answers of KgCLUE train + dev (one triple per answer): a
# subset of the real 20.56M-triple Knowledge.txt with far fewer distractor relations and homonyms, so once the
# entity is found the relation is nearly forced, and the score is NOT comparable to the leaderboard (the 3-layer
# RoBERTa baseline's 83.9 and the top 88.9 are on the test split against the full knowledge base). Without the
# shared data the notebook runs on a hand-written sample of 28 questions and 34 triples.
#
# The demo's tiny checkpoint has a vocabulary built from the sample corpus, which reads many characters of
# KgCLUE questions as [UNK]: its numbers only show that the pipeline runs. For real numbers point `checkpoint` at
# a Chinese BERT with the standard vocabulary (for instance a pretraining run of `obert pretrain` on a real corpus,
# or chinese-roberta-wwm-ext) and raise `max_train_rows`, `max_eval_rows` and `epochs`.

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
checkpoint = None  # None: the last stage of <workdir>/pretrain
kgclue_dir = None  # None: shared:kgclue when ../shared/data/kgclue exists, else the hand-written sample
max_train_rows = 2000  # training questions (None: all 18,000 but the 200 held out)
max_eval_rows = 300  # dev questions evaluated (None: all 2,000)
epochs = 1  # per model
questions = ["刘晓华主要讲什么课啊？", "我很好奇龙编站的坐标是什么啊？", "巫山县疾病预防控制中心的机构职能是什么?", "红楼梦的作者是谁？"]

# %%
from obert_lib import pretraining, reports
from obert_lib.kbqa import pipeline as kbqa_pipeline
from obert_lib.kbqa import train as kbqa

reports.setup_cjk_font()
checkpoint = str(checkpoint or pretraining.latest_checkpoint(f"{workdir}/pretrain"))
data = kbqa.kgclue_source(kgclue_dir, f"{workdir}/kbqa_sample")
data

# %% [markdown]
# ## The knowledge store
#
# One config for every step (`obert kbqa build-kb | train | eval | ask` read the same keys). `build_kb` writes
# the knowledge file (head, relation and tail per line) and loads it into SQLite with indexes on the entity's
# surface form (its `（…）` suffix removed) and on (entity, relation).

# %%
cfg = kbqa.load_config({
    "checkpoint": checkpoint, "kgclue_dir": data["kgclue_dir"], "knowledge_file": data["knowledge_file"],
    "output_dir": f"{workdir}/kbqa", "max_train_rows": max_train_rows, "max_eval_rows": max_eval_rows,
    "tagger": {"epochs": epochs}, "relation": {"epochs": epochs},
})  # fmt: skip
kb = kbqa.build_kb(cfg)
{"triples": kb["triples"], "entities": kb["entities"], "relations": kb["relations"], "skipped": kb["skipped"],
 "seconds": kb["seconds"]}  # fmt: skip

# %% [markdown]
# ## Training both models
#
# The tagger learns B-SUBJ/I-SUBJ over the question's characters (the answer's subject located in the question);
# the classifier learns (question with the mention marked 「…」, relation) → 1 for the gold relation, 0 for the
# entity's other relations in the store and three random relations. Both are checked after each epoch on the last
# rows of the train file (held out), never on dev.

# %%
trained = kbqa.train_kbqa(cfg)
{"train_rows": trained["train_rows"], "tagger_span_f1": trained["tagger_metrics"]["eval_metric"],
 "relation_pairs": trained["relation_data"]["train"]["examples"],
 "relation_accuracy": trained["relation_metrics"]["eval_metric"]}  # fmt: skip

# %% [markdown]
# ## Evaluation on dev
#
# The official metrics (×100) and the questions per stage: correct (all three fields right), mention missed (the
# gold entity is not a candidate and no predicted mention overlaps its mention), entity not found (a mention
# overlaps it but the lookups do not reach the gold entity), wrong relation (the gold entity is a candidate, but
# another entity's or relation's pair scored higher), wrong object. The counts add up to the questions; one line
# per question with its trace is in `<workdir>/kbqa/eval/predictions.jsonl`.

# %%
result = kbqa.evaluate_kbqa(cfg)
kbqa_pipeline.score_table(result)

# %%
kbqa_pipeline.stage_table(result)

# %%
fig = kbqa_pipeline.plot_stages(result)
reports.save_figure(fig, "07_kbqa_stages", reports_dir)

# %% [markdown]
# ## Asking
#
# `ask` returns the answer, the stage the pipeline reached and its trace: the mentions, how the candidates were
# found (exact, fuzzy or from the whole question), the chosen entity and relation and the classifier's score.

# %%
pipe = kbqa.load_pipeline(cfg)
kbqa_pipeline.answers_table(pipe.ask_many(questions))
