"""Builds the QApplication and the main window: the only place that wires the GUI to the engine.

Nothing here imports torch or transformers, so the window appears in about a second; the dashboard (and
with it pyqtgraph and the training supervisor) is created only when the first run is launched.
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QIcon
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QStackedWidget, QToolBar, QWidget

from studio.engine.errors import StudioError
from studio.engine.paths import resources_dir
from studio.gui.theme import apply_theme
from studio.wizard.wizard import Wizard

APP_NAME = "Studio"


def app_icon() -> QIcon:
    icons = resources_dir() / "icons"
    icon = QIcon(str(icons / "studio.svg"))
    icon.addFile(str(icons / "studio.png"))
    return icon


class MainWindow(QMainWindow):
    """The wizard, the live dashboard, and (later) the runs library, as sections switched from a toolbar."""

    def __init__(self, wizard: Wizard | None = None) -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        self.resize(1280, 800)
        self.stack = QStackedWidget()
        self.setCentralWidget(self.stack)
        self.nav = QToolBar("Sections")
        self.nav.setObjectName("sections")
        self.nav.setMovable(False)
        self.addToolBar(self.nav)
        self._nav_group = QActionGroup(self)
        self._nav_group.setExclusive(True)
        self._actions: dict[QWidget, QAction] = {}

        self.wizard = wizard or Wizard()
        self.wizard_action = self.add_section("New training", self.wizard)
        self.dashboard: Any = None
        self.dashboard_action: QAction | None = None
        # The runs library (issue 10) plugs in here with add_section("Runs", LibraryPage(...)).
        self.wizard.launchRequested.connect(self.launch)

    def add_section(self, title: str, widget: QWidget) -> QAction:
        """A top-level section: a page in the stack and a checkable toolbar entry that shows it."""
        self.stack.addWidget(widget)
        action = QAction(title, self)
        self._actions[widget] = action
        action.setCheckable(True)
        action.triggered.connect(lambda _checked=False, w=widget: self.show_section(w))
        self._nav_group.addAction(action)
        self.nav.addAction(action)
        if self.stack.count() == 1:
            action.setChecked(True)
        return action

    def show_section(self, widget: QWidget) -> None:
        self.stack.setCurrentWidget(widget)
        self._actions[widget].setChecked(True)

    def ensure_dashboard(self) -> Any:
        """The dashboard is built on first use, which keeps pyqtgraph and the supervisor out of start-up."""
        if self.dashboard is None:
            from studio.monitor.dashboard import DashboardPage

            self.dashboard = DashboardPage()
            self.dashboard_action = self.add_section("Training", self.dashboard)
        return self.dashboard

    def launch(self, config: Any) -> None:
        """Create the run and start it, then show its live dashboard."""
        dashboard = self.ensure_dashboard()
        self.show_section(dashboard)
        try:
            dashboard.start_run(config)
        except StudioError as exc:
            QMessageBox.warning(self, "Training could not start", exc.render())
            self.show_section(self.wizard)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """A training run may keep going in the background; the dashboard asks what the user wants."""
        if self.dashboard is not None and not self.dashboard.handle_close_request():
            event.ignore()
            return
        self.wizard.shutdown()
        super().closeEvent(event)


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setWindowIcon(app_icon())
    apply_theme(app)
    return app


def run_app(argv: list[str] | None = None) -> int:
    app = create_app(argv)
    window = MainWindow()
    window.show()
    window.wizard.start()
    return app.exec()
