#!/usr/bin/env bash
# Install everything the tests need, then run the style checks (scripts/lint.sh) and the whole suite:
# Python (pytest), JS units and the headless-Chromium browser tests (node --test). Tests needing
# ../shared skip when it is absent.

set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if ! command -v "${CHROMIUM:-/usr/bin/chromium}" >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "Chromium is missing: sudo apt-get install chromium chromium-driver" >&2
    exit 1
  fi
fi
status=0
bash scripts/lint.sh || status=$?
.venv/bin/python -m pytest -q "$@" || status=$?
PIANOGENIE_PYTHON="$PWD/.venv/bin/python" npm test --prefix pianogenie/web || status=$?
exit $status
