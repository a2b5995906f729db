#!/usr/bin/env bash
# The checks this project's GPU work needs, in one run (5 min 14 s on one H200) on a machine with one CUDA GPU:
#   1. torchrun on the GPU past its first checkpoints (a run once died in the stop flag's all_reduce there)
#   2. train_speed --device cuda --bound: the tutorial loop vs ours at batch 32 and 256, and what bounds a step
#   3. fast_path_equal: the fast path trains the same model as the plain loop; its checkpoint loads on the CPU
#   4. time_to_quality: the one-run GPU recipe's wall time to validation perplexity < 3.794 and < 3.50
# Each check runs even if one before it failed; the exit status says whether all passed.
# Usage: bash benchmarks/gpu_checks.sh [NOTES.json.gz] [LOG_DIR]
#   NOTES: default prepares ../shared/data/maestro-asap; LOG_DIR: where ttq.json goes (default: a temporary folder)
# Environment: PIANOGENIE_PYTHON (default .venv/bin/python, else python3), TTQ_TIMEOUT (seconds, default 400).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PIANOGENIE_PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
NOTES=${1:-$WORK/notes.json.gz}
LOGS=${2:-$WORK}
[ -f "$NOTES" ] || "$PY" -m pianogenie prepare ../shared/data/maestro-asap -o "$NOTES" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())'
failed=0
check() {  # check NAME COMMAND...: run it, report its time and status
    local name=$1 t0=$SECONDS
    shift
    echo "== $name"
    "$@"
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - t0)) s"
    [ $rc -eq 0 ] || failed=1
}

check "1. torchrun, one GPU, 60 steps, checkpoints at 0, 30 and 60" \
    "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 -m pianogenie train --data "$NOTES" \
    --run-dir "$WORK/ddp" --max_num_steps=60 --eval_frequency=30 --summarize_frequency=10
check "2. training speed: the tutorial loop vs ours, and what bounds a step" \
    "$PY" benchmarks/train_speed.py --device cuda --data "$NOTES" --steps 300 --rounds 1 --bound
check "3. the fast path trains the same model" \
    "$PY" benchmarks/fast_path_equal.py --device cuda --data "$NOTES" --steps 300
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader -l 20 >"$WORK/util.log" 2>&1 &
smi=$!
check "4. time to quality, one-run GPU recipe" timeout "${TTQ_TIMEOUT:-400}" \
    "$PY" benchmarks/time_to_quality.py --recipe gpu --data "$NOTES" --eval-every 500 --to-end \
    --json "$LOGS/ttq.json"
kill $smi 2>/dev/null
echo "GPU utilisation and memory every 20 s during 4:" $(cat "$WORK/util.log")
exit $failed
