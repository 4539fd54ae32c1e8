"""Render the tour, the help panel and an error dialog with its Get Help page offscreen, into
docs/screenshots/tour.png, help.png and get-help.png (the real app, a throw-away Studio home).

Usage: .venv/bin/python scripts/help_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import ROOT, SIZE, wait_until  # the same window set-up as the wizard's shots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="studio-screens-"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QColor, QPainter, QPixmap
    from PySide6.QtWidgets import QApplication, QWidget

    from studio.app import MainWindow, create_app
    from studio.engine.errors import StudioError
    from studio.gui.error_help import open_error_help, show_error
    from studio.gui.help import show_help
    from studio.wizard.state import WizardState
    from studio.wizard.wizard import Wizard

    create_app(sys.argv[:1])
    window = MainWindow(Wizard(WizardState(), autosave=False))
    window.resize(*SIZE)
    window.show()
    wizard = window.wizard
    wizard.start()
    wait_until(lambda: wizard.ready, 120, "Studio to start")
    args.out.mkdir(parents=True, exist_ok=True)

    def save(pixmap: QPixmap, name: str) -> None:
        path = args.out / name
        pixmap.save(str(path))
        print(f"wrote {path}")

    def settle() -> None:
        for _ in range(5):
            QApplication.processEvents()

    wizard.quick_start()
    dataset = wizard.page_at(1)
    wait_until(lambda: not dataset.runner.busy, 600, "the data check")
    tour = window.start_tour()
    tour.go(2)  # "Step 2: your data", over the checked sample data
    settle()
    save(window.grab(), "tour.png")
    tour.end(completed=False)

    wizard.go_to(1)
    show_help(wizard)
    settle()
    save(window.grab(), "help.png")
    window.help_panel.hide()

    error = StudioError(
        what="Training stopped: the computer ran out of memory.",
        why="The model and a batch of 8 examples of up to 2048 tokens needed 9.1 GB; 6 GB were free.",
        actions=["Close other programs that use the graphics card.", "Lower the longest example in step 4."],
        code="out_of_memory",
    )
    box = show_error(window, "Training could not go on", error)
    page = open_error_help(error, box)
    page.resize(560, 620)
    settle()
    shot = window.grab()
    painter = QPainter(shot)
    painter.fillRect(shot.rect(), QColor(0, 0, 0, 110))  # the window behind the modal message, dimmed

    def place(widget: QWidget, at: QPoint) -> None:
        painter.drawPixmap(at, widget.grab())

    place(box, QPoint(60, 160))
    place(page, QPoint(shot.width() - page.width() - 40, 60))
    painter.end()
    save(shot, "get-help.png")
    page.close()
    box.close()
    wizard.shutdown()
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
