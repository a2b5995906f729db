#!/usr/bin/env bash
# Install, then play the shipped model in the browser: `pianogenie serve` on http://127.0.0.1:8000.
# Extra arguments go to `pianogenie serve` (e.g. --port 8080, --model DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/pianogenie serve "$@"
