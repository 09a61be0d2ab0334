#!/usr/bin/env bash
# The serving load test of docs/unified.md (issue 17): the three top-3 task models of scripts/top_n_accuracy.sh
# (seed 0; 12 layers, 9 frozen) served as one shared backbone (UnifiedModel) and as three full models
# (--separate), each alone on localhost, the same bounded load from concurrent clients: requests/s, p50/p95.
# Texts: FewCLUE dev sentences of tnews and eprstmt of at most 60 characters (the served max_length is the
# smallest of the tasks', tnews's 64 tokens; 60 characters + [CLS] + [SEP] fit), up to 200 of each.
#   bash scripts/top_n_loadtest.sh [REQUESTS] [CONCURRENCY]     # default 400 16; run it on a quiet machine
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
RUNS=runs/top_n/ablation/runs
TEXTS=runs/top_n/loadtest_texts.json
$PY - "$TEXTS" <<'PY'
import json, sys
from obert_lib.paths import resolve_data_path

root = resolve_data_path("shared:fewclue")
texts = []
for task in ("tnews", "eprstmt"):
    lines = (root / task / "dev_few_all.json").read_text(encoding="utf-8").splitlines()
    texts += [t for t in (json.loads(line)["sentence"] for line in lines) if len(t) <= 60][:200]
open(sys.argv[1], "w", encoding="utf-8").write(json.dumps(texts, ensure_ascii=False))
print(f"{len(texts)} texts, mean {sum(map(len, texts)) / len(texts):.0f} characters -> {sys.argv[1]}")
PY
dirs=()
for task in tnews iflytek eprstmt; do
    run=$(ls -d "$RUNS/$task/top3/seed0-"* | head -1)
    dirs+=("$task=$run/best")
done
$PY -m obert_lib.serving.loadtest "${dirs[@]}" --texts "$TEXTS" --requests "${1:-400}" --concurrency "${2:-16}"
