#!/usr/bin/env bash
# Sets up Studio if needed, then runs the linters, the architecture contract and the whole test suite
# (slow end-to-end tests included). "No tests collected" counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false PYTHONFAULTHANDLER=1
echo "== ruff"
.venv/bin/ruff check studio tests bench
echo "== import contracts (layers; the engine and the CLI never import Qt)"
.venv/bin/lint-imports
echo "== mypy --strict on the engine (the exemptions in pyproject.toml may only shrink)"
.venv/bin/mypy --strict studio/engine
echo "== pytest"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure." >&2
  exit 1
fi
exit "$rc"
