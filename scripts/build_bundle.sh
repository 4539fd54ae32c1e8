#!/usr/bin/env bash
# Build Studio's one-folder desktop bundle with PyInstaller (build.spec), then smoke-test the result:
# the window opens offscreen and closes, and a two-step training with the built-in model runs through the
# frozen executable (`studio train` starts the worker as `Studio --studio-worker RUN_DIR`). Exits 0 on success.
#   scripts/build_bundle.sh            build + smoke test
#   scripts/build_bundle.sh --no-build smoke-test an existing dist/Studio
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
BUNDLE="dist/Studio"
EXE="$BUNDLE/Studio"
[[ "$(uname -s)" == MINGW* || "$(uname -s)" == MSYS* ]] && EXE="$BUNDLE/Studio.exe"

if [[ "${1:-}" != "--no-build" ]]; then
    "$PYTHON" -c "import PyInstaller" 2>/dev/null || "$PYTHON" -m pip install --quiet -e ".[package]"
    start=$(date +%s)
    "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN build.spec
    echo "built $BUNDLE in $(( $(date +%s) - start )) s, $(du -sh "$BUNDLE" | cut -f1)"
fi

smoke_home="$(mktemp -d)"
trap 'rm -rf "$smoke_home"' EXIT
export STUDIO_HOME="$smoke_home/home" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"

echo "== smoke test 1/2: the main window opens and closes"
"$EXE" --smoke-test

echo "== smoke test 2/2: two training steps with the built-in model through the frozen worker"
cat > "$smoke_home/config.json" <<'JSON'
{"base_model": "builtin:smollm2-135m-instruct", "max_steps": 2, "micro_batch_size": 2,
 "gradient_accumulation": 1, "max_length": 128, "eval_fraction": 0.0, "checkpoint_every_steps": 2}
JSON
"$EXE" train --config "$smoke_home/config.json" --dataset resources/samples/chatbot.jsonl --name bundle-smoke
run_dir="$(ls -d "$STUDIO_HOME"/runs/*bundle-smoke*)"
grep -q '"event":"completed"' "$run_dir/events.jsonl"
test -f "$run_dir/final/adapter/adapter_config.json"
echo "bundle smoke test passed: $run_dir"
