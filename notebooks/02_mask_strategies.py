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
# `char` is BERT's token-level baseline. A mixture draws one strategy per sequence. Each masked
# token is shown as `[MASK]`, a random vocabulary token or itself (BERT: 80/10/10); with synonym
# replacement (Motian) a masked word may be shown as a near-synonym instead, and with knowledge
# masking the summaries of the paragraph's linked knowledge-base entities follow as a second segment
# `[CLS] context [SEP] K_w [SEP]` that is never masked (entries apart by [SEP], a summary cut at a
# sentence or word end to fit the budget, marked … in the view). Each random decision (strategy,
# positions, replacement, synonym) has its own stream, so toggling one option leaves the others' draws.
#
# Every function here lives in `obert_lib.masking`; the widget's callback is
# `masking.render_controls(previewer, values)`, which the tests drive directly. Chinese text needs a
# CJK font in the browser (on Debian/Ubuntu: `apt-get install fonts-noto-cjk`).

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
max_rows = 2000  # corpus rows for the statistics below (the sample corpus has ~580)
mask_rate = 0.15
seed = 0

# %%
from IPython.display import HTML

from obert_lib import corpus, masking, reports

reports.setup_cjk_font()
previewer = masking.MaskPreviewer.from_corpus(f"{workdir}/corpus")
paragraphs = corpus.sample_paragraphs(f"{workdir}/corpus", n=12)
rows = corpus.load_shards(f"{workdir}/corpus").slice(0, max_rows).to_pylist()

# %% [markdown]
# ## 1. Interactive view
#
# Needs a live kernel. Pick a sample paragraph or type your own text; choose a strategy (or
# `mixture` and its weights), the mask rate, the replacement policy (`[MASK]` and random shares,
# the rest is kept), synonym replacement and its rate, the knowledge segment, and the seed.
# Tokens are coloured by the span type they belong to (entity, keyword, phrase, word; clauses
# underlined), masked targets are outlined by how the model sees them, with what it sees above them.
# The text box and the mixture field apply on Enter or when they lose focus; an impossible setting
# (e.g. a half-typed mixture) is shown above the last view that worked.

# %%
masking.mask_widget(previewer, paragraphs)

# %% [markdown]
# ## 2. One paragraph under each strategy
#
# Static, so it also shows in executed and exported notebooks.

# %%
HTML(masking.render_strategies(previewer, paragraphs[0], mask_rate=mask_rate, seed=seed))

# %% [markdown]
# A mixture with synonym replacement (every masked span the strategy chose whole -- a word, an entity -- that has a synonym in the lexicon is shown as it)
# and the knowledge segment:

# %%
HTML(masking.render_controls(previewer, masking.MaskControls(text=paragraphs[0], strategy="mixture", synonym=True,
                                                             synonym_rate=1.0, knowledge=True, seed=seed)))

# %% [markdown]
# ## 3. Comparison of the strategies over the corpus
#
# Replacement split (`share_mask/kept/random` of the targets that went through the 80/10/10
# policy, `share_synonym` of all targets), the share of targets from the strategy's own spans and
# the mean masked-unit length, per strategy, plus a mixture, synonym replacement and knowledge
# masking. Columns that are the same in every row (e.g. the realised mask rate, which the budget
# fixes) are named under the table instead.

# %%
comparison = masking.strategy_comparison(rows, previewer.tokenizer, knowledge=previewer.knowledge, mask_rate=mask_rate,
                                         seed=seed)
masking.compact_table(comparison)

# %% [markdown]
# How the targets are shown to the model (the 80/10/10 policy, dashed, and synonyms), and the mean
# masked-unit length:

# %%
fig_statistics = masking.plot_strategy_statistics(comparison)

# %% [markdown]
# ## 4. Masked-unit lengths
#
# A unit is a whole span the strategy (or a finer fallback) chose, or a single token filled to reach
# the budget exactly.

# %%
lengths = masking.span_length_table(rows, previewer.tokenizer, mask_rate=mask_rate, seed=seed)
fig_lengths = masking.plot_span_lengths(lengths)

# %% [markdown]
# ## 5. Parts of speech of the masked tokens
#
# Each paragraph is re-tagged with rjieba; a token takes the POS of the word holding it. Shares of
# the masked tokens per strategy, for the ten most masked tags overall.

# %%
pos_counts = masking.masked_pos_counts(rows, previewer.tokenizer, mask_rate=mask_rate, seed=seed)
pos_share = masking.masked_pos_distribution(pos_counts, top_k=10)
pos_share.round(3)

# %%
fig_pos = masking.plot_masked_pos(pos_share)

# %% [markdown]
# ## 6. Export figures
#
# PNG and SVG into `reports_dir`. The cell writes them when the notebook runs (e.g. `make demo`);
# the button writes them again after you change anything.

# %%
figures = {"02_strategy_statistics": fig_statistics, "02_span_lengths": fig_lengths, "02_masked_pos": fig_pos}
masking.export_figures(figures, reports_dir)

# %%
masking.export_button(figures, reports_dir)
