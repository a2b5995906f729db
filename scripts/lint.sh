#!/usr/bin/env bash
# The house style, checked: ruff (lint, format), mypy (pianogenie/), eslint and tsc (the web code).
# Every step runs even after one fails; the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
step() {
  local name=$1
  shift
  echo "== $name"
  if ! "$@"; then
    failed+=("$name")
  fi
}

step "ruff check" .venv/bin/ruff check pianogenie tests benchmarks scripts
step "ruff format --check" .venv/bin/ruff format --check pianogenie tests benchmarks scripts
step "mypy" .venv/bin/mypy
step "eslint" npm run --silent lint --prefix pianogenie/web
step "tsc" npm run --silent typecheck --prefix pianogenie/web

if ((${#failed[@]})); then
  echo "lint.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "lint.sh: all checks passed"
