#!/usr/bin/env bash
# The GPU check, for a bare CUDA machine: sets Studio up with the cuda extra (Unsloth, bitsandbytes), then
# runs scripts/gpu_check.py, which says what ran and what did not, and why (under 8 minutes after set-up).
# On a machine without an NVIDIA GPU it says that it did not run, and exits 0.
#   STUDIO_GPU_CHECK_MODEL=/path/to/a/0.5-1.5B/model bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  echo "[gpu-check] Installing the cuda extra (Unsloth, bitsandbytes)"
  .venv/bin/python -m pip install --quiet -e ".[cuda]" \
    || echo "[gpu-check] Could not install the cuda extra (no internet?): the Unsloth and QLoRA steps will say so."
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python scripts/gpu_check.py "$@"
