"""Time from process start to the wizard being visible, against a bare PySide6 window in the same run.

Each variant runs in a fresh subprocess (offscreen), alternating, several times; the median counts.
Two Studio variants: a first run (the welcome screen) and a returning user (the use-case page restored).
Target: Studio at most 2x the bare window, and torch/transformers not imported when the window shows.
Usage: .venv/bin/python bench/gui_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = """
import sys
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
window = QMainWindow()
window.resize(1280, 800)
window.show()
app.processEvents()
print("VISIBLE", window.isVisible(), "torch" in sys.modules, "transformers" in sys.modules, flush=True)
"""

STUDIO = """
import sys
from studio.app import create_app, open_main_window
app = create_app(sys.argv[:1])
window = open_main_window()
app.processEvents()
visible = window.isVisible() and window.wizard.isVisible()
print("VISIBLE", visible, "torch" in sys.modules, "transformers" in sys.modules, flush=True)
window.wizard.shutdown()
"""

TARGET_RATIO = 2.0


def time_to_visible(code: str, env: dict[str, str]) -> tuple[float, bool, bool]:
    """Seconds from spawning the interpreter to the window reporting itself visible."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.communicate(timeout=60)
    parts = line.split()
    if not parts or parts[0] != "VISIBLE" or parts[1] != "True":
        raise SystemExit(f"The window did not become visible: {line!r}")
    return elapsed, parts[2] == "True", parts[3] == "True"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    first_home = tempfile.mkdtemp(prefix="studio-bench-first-")
    returning_home = tempfile.mkdtemp(prefix="studio-bench-returning-")
    state = {"onboarding_done": True, "page": 0, "profile_id": "chatbot"}
    (Path(returning_home) / "wizard-state.json").write_text(json.dumps(state), encoding="utf-8")
    variants = {
        "bare PySide6 window": (BARE, first_home),
        "Studio, first run": (STUDIO, first_home),
        "Studio, returning user": (STUDIO, returning_home),
    }
    envs = {name: {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_HOME": home}
            for name, (_code, home) in variants.items()}
    for name, (code, _home) in variants.items():  # warm-up: every variant starts from a warm file cache
        time_to_visible(code, envs[name])
    times: dict[str, list[float]] = {name: [] for name in variants}
    heavy = False
    for _ in range(args.runs):
        for name, (code, _home) in variants.items():
            seconds, torch_loaded, transformers_loaded = time_to_visible(code, envs[name])
            times[name].append(seconds)
            heavy = heavy or (name != "bare PySide6 window" and (torch_loaded or transformers_loaded))
    medians = {name: statistics.median(values) for name, values in times.items()}
    bare = medians["bare PySide6 window"]
    ok = not heavy
    for name, seconds in medians.items():
        line = f"{name + ':':26s} {seconds * 1000:5.0f} ms (median of {args.runs})"
        if name != "bare PySide6 window":
            ratio = seconds / bare
            ok = ok and ratio <= TARGET_RATIO
            line += f"  ratio {ratio:.2f}x (target <= {TARGET_RATIO:.1f}x)"
        print(line)
    print(f"torch or transformers imported before the window showed: {'yes' if heavy else 'no'}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
