#!/usr/bin/env bash
# The checks this project's GPU work needs, in one run on a machine with one CUDA GPU:
#   1. torchrun on the GPU past its first checkpoint (issue 14: this died in the stop flag's all_reduce)
#   2. train_speed --device cuda: the tutorial loop vs ours at batch 32 and 256
#   3. time_to_quality --recipe gpu: wall time to validation perplexity < 3.794 and < 3.50
# Usage: bash benchmarks/gpu_checks.sh [NOTES.json.gz]   (default: prepares ../shared/data/maestro-asap)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PIANOGENIE_PYTHON:-.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
NOTES=${1:-$WORK/notes.json.gz}
[ -f "$NOTES" ] || "$PY" -m pianogenie prepare ../shared/data/maestro-asap -o "$NOTES"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

echo "== 1. torchrun, one GPU, 60 steps, checkpoints at 0, 30, 60"
"$PY" -m torch.distributed.run --standalone --nproc_per_node=1 -m pianogenie train --data "$NOTES" \
    --run-dir "$WORK/ddp" --max_num_steps=60 --eval_frequency=30 --summarize_frequency=10 2>&1 | tail -n 3

echo "== 2. training speed"
"$PY" benchmarks/train_speed.py --device cuda --data "$NOTES" --steps 300 --rounds 2

echo "== 3. time to quality"
"$PY" benchmarks/time_to_quality.py --recipe gpu --data "$NOTES" --eval-every 500 2>/dev/null
