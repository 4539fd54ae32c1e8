"""Render every wizard page of the real app offscreen into docs/screenshots/*.png (shown in the README).

Runs the real engine on the sample dataset and the built-in model, in a throw-away Studio home.
Usage: .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--dark]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = (1280, 800)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"Timed out after {timeout_s:.0f} s waiting for {what}.")
        QApplication.processEvents()
        time.sleep(0.02)
    QApplication.processEvents()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--dark", action="store_true", help="render the dark theme")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="studio-screens-"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from studio.app import MainWindow, create_app
    from studio.gui.theme import use_scheme
    from studio.wizard.state import WizardState
    from studio.wizard.wizard import Wizard

    app = create_app(sys.argv[:1])
    if args.dark:
        use_scheme(app, Qt.ColorScheme.Dark)
    window = MainWindow(Wizard(WizardState(), autosave=False))  # always the first-run path
    window.resize(*SIZE)
    window.show()
    wizard = window.wizard
    wizard.start()
    wait_until(lambda: wizard.ready, 120, "Studio to start")
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "-dark" if args.dark else ""

    def shot(name: str) -> None:
        QApplication.processEvents()
        path = args.out / f"{name}{suffix}.png"
        window.grab().save(str(path))
        print(f"wrote {path}")

    shot("0-welcome")
    wizard.start_own()
    wizard.page_at(0).select("chatbot")
    shot("1-use-case")
    wizard.quick_start()
    dataset = wizard.page_at(1)
    wait_until(lambda: not dataset.runner.busy, 600, "the data check")
    shot("2-dataset")
    wizard.next()
    models = wizard.page_at(2)
    wait_until(lambda: models.selected() is not None, 120, "the model list")
    shot("3-model")
    wizard.next()
    settings = wizard.page_at(3)
    wait_until(lambda: wizard.session.plan is not None or settings.banner.isVisible(), 120, "the plan")
    shot("4-settings")
    wizard.next()
    shot("5-review")
    wizard.shutdown()
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
