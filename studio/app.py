"""Builds the QApplication and the main window: the only place that wires the GUI to the engine.

Nothing here imports torch or transformers, so the window appears in about a second.
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QLabel, QMainWindow


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Studio")
        self.resize(1280, 800)
        self.setCentralWidget(QLabel("Studio"))


def run_app(argv: list[str] | None = None) -> int:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    window = MainWindow()
    window.show()
    return app.exec()
