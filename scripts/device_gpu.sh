#!/usr/bin/env bash
# Issue 21's GPU measurements on a lent device machine, in one call of the device tool's `run`:
#   command: OBERT_COMMIT=<short hash> bash scripts/device_gpu.sh    carry: [".whl"]    timeout_s: 450
# .whl/ (git-ignored, made here by the commands at the end of this file) holds transformers 5.23.0 (the pinned
# version; the image has 5.17), DeepSpeed 0.19.8 (built here with no ops: fused_adam is JIT-built there) and the
# packages DeepSpeed needs that the image lacks. Writes $OUT/gpu_results.{json,md}, log.txt, ds_build.log.
# On a CPU: OBERT_NO_WHEELS=1 PYTHON=.venv/bin/python OUT=/tmp/gpu bash scripts/device_gpu.sh --tiny
set -o pipefail
cd "$(dirname "$0")/.." || exit 2
OUT=${OUT:-/tmp/obert-gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
if [ -d .whl ] && [ -z "$OBERT_NO_WHEELS" ]; then
  if $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; then
    export PYTHONPATH=/tmp/site
  else
    echo "device_gpu.sh: the carried wheels did not install; running on the image's packages (no DeepSpeed)"
  fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if ! $PY -c "import obert_lib.model, transformers" 2>"$OUT/import_error.txt"; then
  echo "device_gpu.sh: obert_lib.model does not import with the carried transformers; trying the image's"
  rm -rf /tmp/site/transformers /tmp/site/transformers-*.dist-info
fi
rm -f "$OUT/import_error.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv
PYTHONUNBUFFERED=1 timeout 390 $PY -m obert_lib.benchmarks.gpu --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"
exit $?

# The wheels, made once here (x86-64, Python 3.12 on the device), about 19 MiB:
#   cp ~/.cache/pip/wheels/*/*/*/*/deepspeed-0.19.8-py3-none-any.whl .whl/   # or: DS_BUILD_OPS=0 pip wheel
#       --no-deps --no-build-isolation deepspeed==0.19.8 -w .whl
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl
#       transformers==5.23.0 regex==2026.11.19 hjson==3.1.0 pydantic==2.14.4 pydantic_core==2.50.5
#       annotated_types==0.8.0 typing_inspection==0.4.5 typing_extensions==4.16.0
