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
# # 02 · Mask strategies
#
# OBERT masks whole spans at five granularities inside the same paragraph: words, entities
# (knowledge-base matches and proper nouns), keywords (TF-IDF), phrases (POS patterns) and clauses;
# `char` is BERT's token-level baseline. Each masked token is shown as `[MASK]` (80%), a random
# vocabulary token (10%) or itself (10%). Move the controls below to see a paragraph masked live.

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
max_rows = 2000

# %%
from IPython.display import HTML

from obert_lib import corpus, masking, reports

reports.setup_cjk_font()
previewer = masking.MaskPreviewer.from_corpus(f"{workdir}/corpus")
paragraphs = corpus.sample_paragraphs(f"{workdir}/corpus", n=12)

# %% [markdown]
# Interactive view (needs a live kernel): pick a sample paragraph or type your own text.

# %%
masking.mask_widget(previewer, paragraphs)

# %% [markdown]
# The same paragraph under each strategy (static, so it also shows in exported notebooks):

# %%
HTML(masking.render_strategies(previewer, paragraphs[0], mask_rate=0.15, seed=0))

# %% [markdown]
# Realised mask rate and masked-run length per strategy over the corpus:

# %%
stats = masking.strategy_statistics(corpus.load_shards(f"{workdir}/corpus").slice(0, max_rows).to_pylist(),
                                    previewer.tokenizer)
stats

# %%
fig = masking.plot_strategy_statistics(stats)
reports.save_figure(fig, "02_strategy_statistics", reports_dir)
