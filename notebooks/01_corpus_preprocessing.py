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
# # 01 · Corpus preprocessing
#
# Raw JSONL documents → normalised (HTML, full-width ASCII, traditional → simplified) → line rules
# (navigation menus, copyright/disclaimer footers, SEO and spam lines, URLs/e-mails/phones) →
# quality rules → exact, near (MinHash LSH) and paragraph deduplication → paragraphs annotated with
# word / entity / keyword / phrase / clause spans → WordPiece tokens → Parquet shards.
# Every dropped document has a named reason and is kept under `corpus/removed/<reason>.jsonl`.
#
# To run on a real corpus, set `inputs` to your JSONL files (and `vocab_file` to a BERT vocab,
# e.g. `shared:vocab/bert-base-chinese-vocab.txt`).

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
inputs = ["sample:corpus.jsonl"]
vocab_file = None
knowledge_base = "sample:kb.jsonl"

# %%
from obert_lib import corpus, reports

reports.setup_cjk_font()

# %%
result = corpus.run({"inputs": inputs, "output_dir": f"{workdir}/corpus", "knowledge_base": knowledge_base,
                     "tokenizer": {"vocab_file": vocab_file}})
result.stats

# %% [markdown]
# Kept and dropped documents by reason, and lines removed inside kept documents:

# %%
corpus.stats_table(result.stats)

# %% [markdown]
# Examples of dropped documents with their reason:

# %%
corpus.removed_examples(result, per_reason=2)

# %%
fig = corpus.plot_lengths(result)
reports.save_figure(fig, "01_document_lengths", reports_dir)

# %% [markdown]
# The first annotated paragraphs of the shards (spans are token `[start, end)` pairs):

# %%
corpus.load_shards(result.output_dir).slice(0, 5).to_pandas()
