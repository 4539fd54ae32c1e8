#!/usr/bin/env bash
# Sets up Studio if needed, then opens the app (the wizard offers the built-in model and sample data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/studio "$@"
