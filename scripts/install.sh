#!/usr/bin/env bash
# Install everything pianogenie needs into ./.venv (Python) and pianogenie/web/node_modules (JS).
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# Pinned first: a looser torch requirement would pull a multi-GB CUDA build.
.venv/bin/pip install --quiet torch==2.13.0
.venv/bin/pip install --quiet -e '.[test]'
npm ci --prefix pianogenie/web --no-audit --no-fund --loglevel=error
