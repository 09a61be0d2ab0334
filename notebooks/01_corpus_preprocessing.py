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
# Raw documents (JSONL, Parquet or text; plain, gzip or zstd) → normalised (HTML, full-width ASCII,
# traditional → simplified) → line rules (navigation menus, copyright/disclaimer footers, SEO and spam
# lines, URLs/e-mails/phones) → Chinese quality rules → exact and near-duplicate (MinHash LSH)
# deduplication → paragraphs annotated with word / entity / keyword / phrase / clause spans →
# WordPiece tokens → Parquet shards. The pipeline runs on datatrove executors (local processes by
# default; Ray or Slurm for clusters) and skips completed tasks when rerun. Every dropped document
# has a named reason and is kept under `corpus/removed/<reason>/`.
#
# To run on a real corpus, set `inputs` to your files or folders, `preset` to `web` for scraped
# pages, and `vocab_file` to a BERT vocab (e.g. `shared:vocab/bert-base-chinese-vocab.txt`).

# %% tags=["parameters"]
workdir = "../runs/demo"
reports_dir = "../runs/demo/reports"
inputs = ["sample:corpus.jsonl"]
preset = "default"
vocab_file = None
knowledge_base = "sample:kb.jsonl"
workers = 1

# %%
from IPython.display import HTML

from obert_lib import corpus, reports

reports.setup_cjk_font()

# %%
config = corpus.load_config(preset, inputs=inputs, output_dir=f"{workdir}/corpus", knowledge_base=knowledge_base,
                            **{"tokenizer.vocab_file": vocab_file})
result = corpus.run(config, {"workers": workers, "progress": False})
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
# Annotated paragraphs: each span type on its own line (neighbouring spans alternate dashed/solid borders):

# %%
HTML(corpus.annotated_paragraphs_html(result.output_dir, n=3))

# %%
span_stats = corpus.span_statistics(result.output_dir)
span_stats

# %%
fig = corpus.plot_span_statistics(span_stats)
reports.save_figure(fig, "01_span_statistics", reports_dir)
