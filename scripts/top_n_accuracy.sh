#!/usr/bin/env bash
# The top-N against full fine-tuning table of docs/unified.md (issue 17), end to end on this machine's CPUs:
#   1. FewCLUE's unlabelled text (tnews, eprstmt, chid, bustm) -> runs/top_n/unlabeled.jsonl
#   2. obert preprocess -> runs/top_n/corpus (the standard Chinese BERT vocabulary)
#   3. obert pretrain configs/top_n/pretrain.yaml: a 12-layer, hidden-128 encoder, 1000 steps
#   4. the ablation configs/top_n/ablation.yaml: tnews, iflytek, eprstmt x full, top6, top3, top1 x 3 seeds
#   5. the table (printed, and runs/top_n/accuracy.md) and the figure runs/top_n/reports/06_accuracy_vs_top.png
# Every step skips what is done: preprocess and pretrain refuse to overwrite a finished run (delete the folder
# to redo it), finished ablation runs are found by their config hash. Needs ../shared/data (FewCLUE).
#   bash scripts/top_n_accuracy.sh            # about 25 min of pretraining and 30 min of fine-tuning on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=runs/top_n
mkdir -p "$OUT"
$PY -c "from obert_lib.unified import top_n; print(top_n.unlabeled_corpus('shared:fewclue', '$OUT/unlabeled.jsonl'))"
[ -f "$OUT/corpus/stats.json" ] || $PY -m obert_lib.cli preprocess --input "$OUT/unlabeled.jsonl" \
    --output "$OUT/corpus" --set tokenizer.vocab_file=shared:vocab/bert-base-chinese-vocab.txt --workers 2
[ -d "$OUT/pretrain/checkpoints/stage-1-seq128" ] || $PY -m obert_lib.cli pretrain --config configs/top_n/pretrain.yaml
$PY scripts/top_n_accuracy.py  # a file, not a here-document: the ablation's worker processes re-import __main__
