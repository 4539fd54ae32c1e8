"""Builds the QApplication and the main window, and routes requests between the GUI sections.

The sections (wizard, runs library, dashboard, export) never import each other (import-linter checks it);
a request from one to another (resume, continue, export, compare, new run, queue) comes here as a signal.
Each section calls the engine itself. Nothing here imports torch or transformers, so the window appears in
about a second; the library and the dashboard (and with them pyqtgraph and the training supervisor) are
created when first needed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QRect, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QMenu,
    QSizePolicy,
    QStackedWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.errors import StudioError
from studio.engine.paths import resources_dir
from studio.gui.error_help import show_error
from studio.gui.glossary import TermExplainer
from studio.gui.help import HelpDialog, HelpPanel, set_help_topic, show_help
from studio.gui.shortcuts import ShortcutsDialog
from studio.gui.theme import apply_theme
from studio.gui.tour import TourOverlay, build_stops, mark_tour_seen, tour_seen
from studio.library.notices_panel import NoticesPanel
from studio.monitor.resumable import ResumableRunsPanel
from studio.wizard.wizard import DATASET_PAGE, Wizard

log = logging.getLogger(__name__)

APP_NAME = "Studio"
NOTICES_POLL_MS = 10_000  # notices from the queue runner and the schedules (one small registry query)
PREFERRED_SIZE = (1280, 800)
TITLE_BAR_PX = 40  # the window manager's frame above the window's own area, which the screen must also hold


def app_icon() -> QIcon:
    """The PNG rendered from resources/icons/studio.svg: loading the SVG engine would slow the start."""
    return QIcon(str(resources_dir() / "icons" / "studio.png"))


def fitted_geometry(available: QRect) -> QRect:
    """The window's first geometry: the preferred size where the screen has room, else the screen's usable
    area less the title bar, centred; so Back, Next and the status line are never below the screen's edge
    (a 1280x800 window on a 1366x768 laptop hid them)."""
    width = min(PREFERRED_SIZE[0], available.width())
    height = min(PREFERRED_SIZE[1], available.height() - TITLE_BAR_PX)
    rect = QRect(0, 0, width, height)
    rect.moveCenter(available.center())
    rect.moveTop(max(available.top() + TITLE_BAR_PX, rect.top()))
    return rect


class MainWindow(QMainWindow):
    """The wizard, the runs library and the live dashboard, as sections switched from a toolbar, with Help
    (F1 for the current screen, the shortcut list, the glossary, the tour) at the toolbar's end.

    The library (with pyqtgraph) and the dashboard (with the training supervisor) are built on first use;
    every request between them (resume, continue, export, compare, playground, new run, queue) is routed here.
    Once the window is up it also polls the registry for notices (a queued run failed, a retrain was not made
    active) and shows them in Runs and as desktop notifications.
    """

    def __init__(self, wizard: Wizard | None = None) -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        screen = QGuiApplication.primaryScreen()
        if screen is not None:
            self.setGeometry(fitted_geometry(screen.availableGeometry()))
        else:
            self.resize(*PREFERRED_SIZE)
        self.stack = QStackedWidget()
        self.setCentralWidget(self.stack)
        self.nav = QToolBar("Sections")
        self.nav.setObjectName("sections")
        self.nav.setMovable(False)
        self.addToolBar(self.nav)
        self._nav_group = QActionGroup(self)
        self._nav_group.setExclusive(True)
        self._actions: dict[QWidget, QAction] = {}
        self.export_dialogs: list[Any] = []

        self.wizard = wizard or Wizard()
        set_help_topic(self.wizard.onboarding, "welcome")
        self.wizard_action = self.add_section("New training", self.wizard)
        self.runs = QWidget()
        runs_layout = QVBoxLayout(self.runs)
        runs_layout.setContentsMargins(0, 0, 0, 0)
        self.notices = NoticesPanel()
        runs_layout.addWidget(self.notices)
        self.resumable = ResumableRunsPanel(load=False)  # read when Runs is shown, after start-up
        runs_layout.addWidget(self.resumable)
        self.runs_action = self.add_section("Runs", self.runs)
        self.runs_action.triggered.connect(self.show_runs)
        set_help_topic(self.runs, "library")
        self.help_panel = HelpPanel(self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.help_panel)
        self.help_menu = self._build_help()
        self.tour: TourOverlay | None = None
        self.explainer = TermExplainer(self)  # glossary tooltips on every technical word shown
        session = self.wizard.session
        self.explainer.watch(self.wizard, session.stateChanged, session.reportChanged, session.planChanged,
                             session.configChanged, session.hardwareChanged)
        self.library: Any = None
        self.dashboard: Any = None
        self.dashboard_action: QAction | None = None
        self.notifier: Any = None
        self._registry: Any = None  # opened on the first look for notices, after start-up
        self.notice_timer = QTimer(self)
        self.notice_timer.setInterval(NOTICES_POLL_MS)
        self.notice_timer.timeout.connect(self.check_notices)
        self.wizard.launchRequested.connect(self.launch)
        self.wizard.rentedLaunchRequested.connect(self.launch_rented)
        self.wizard.queueRequested.connect(self.queue_run)
        self.resumable.resumeRequested.connect(self.resume_run)
        self.resumable.openRequested.connect(self.watch_run)
        self.resumable.released.connect(self._machine_released)

    def add_section(self, title: str, widget: QWidget) -> QAction:
        """A top-level section: a page in the stack and a checkable toolbar entry that shows it (Ctrl+1, 2, …
        in the order the sections appear)."""
        self.stack.addWidget(widget)
        action = QAction(title, self)
        action.setShortcut(QKeySequence(f"Ctrl+{self.stack.count()}"))
        action.setToolTip(f"{title} ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})")
        self._actions[widget] = action
        action.setCheckable(True)
        action.triggered.connect(lambda _checked=False, w=widget: self.show_section(w))
        self._nav_group.addAction(action)
        self.nav.addAction(action)
        if self.stack.count() == 1:
            action.setChecked(True)
        return action

    def _build_help(self) -> QMenu:
        """Help at the end of the sections' row: this screen's page (F1, wherever the focus is, dialogs
        included), the keyboard shortcuts (Ctrl+/), the glossary and the tour. A toolbar menu, not a menu bar,
        so the window keeps its height on small screens."""
        bar = QToolBar("Help")
        bar.setObjectName("help")
        bar.setMovable(False)
        self.addToolBar(bar)  # the last toolbar of the row fills it: the spacer puts Help at the far end
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        menu = QMenu("Help", self)
        entries: tuple[tuple[str, str, Callable[[], object]], ...] = (
            ("Help on this screen", "F1", lambda: show_help(QApplication.activeWindow() or self)),
            ("Keyboard shortcuts", "Ctrl+/", self.show_shortcuts),
            ("Glossary", "", self.show_glossary),
            ("Take the tour", "", self.start_tour),
        )
        for text, keys, handler in entries:
            action = menu.addAction(text)
            action.triggered.connect(handler)
            if keys:
                action.setShortcut(QKeySequence(keys))
                action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
                self.addAction(action)  # a shortcut works while the menu is closed only on a shown widget
        bar.addWidget(self._build_settings())
        button = QToolButton()
        button.setText("Help")
        button.setAccessibleName("Help")
        button.setToolTip("Help on this screen (F1), keyboard shortcuts (Ctrl+/), the glossary and the tour")
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        button.setMenu(menu)
        self.help_button = button
        bar.addWidget(button)
        return menu

    def _build_settings(self) -> QToolButton:
        """Settings beside Help: a menu with one entry per settings dialog (the cloud GPU keys first)."""
        self.settings_menu = QMenu("Settings", self)
        self.settings_menu.addAction("Cloud GPU providers (API keys)…").triggered.connect(self.open_cloud_keys)
        self.settings_menu.addAction("Quality judge…").triggered.connect(self.show_judge_settings)
        button = QToolButton()
        button.setText("Settings")
        button.setAccessibleName("Settings")
        button.setToolTip("Studio's settings: the API keys for renting a GPU")
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        button.setMenu(self.settings_menu)
        self.settings_button = button
        return button

    def open_cloud_keys(self) -> Any:
        """Settings > cloud GPU providers: the keys Studio rents GPUs with (kept in the system keyring)."""
        from studio.gui.cloud_keys import CloudKeysDialog

        dialog = CloudKeysDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_judge_settings(self) -> Any:
        """The optional quality judge's settings (off by default), a dialog of its own."""
        from studio.gui.judge_settings import JudgeSettingsDialog

        dialog = JudgeSettingsDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_glossary(self) -> HelpPanel | HelpDialog:
        return show_help(self, "glossary")

    def show_section(self, widget: QWidget) -> None:
        self.stack.setCurrentWidget(widget)
        self._actions[widget].setChecked(True)

    # ---- lazily built sections ---------------------------------------------------------------------------

    def ensure_dashboard(self) -> Any:
        """The dashboard is built on first use, which keeps pyqtgraph and the supervisor out of start-up."""
        if self.dashboard is None:
            from studio.monitor.dashboard import DashboardPage

            self.dashboard = DashboardPage(notifier=self.ensure_notifier())
            set_help_topic(self.dashboard, "dashboard")
            self.dashboard_action = self.add_section("Training", self.dashboard)
            self.explainer.watch(self.dashboard, self.dashboard.statusChanged, self.dashboard.historyLoaded)
            self.dashboard.exportRequested.connect(self.open_export)
            self.dashboard.playgroundRequested.connect(lambda run_id: self.open_in_library("playground", run_id))
            self.dashboard.compareRequested.connect(lambda run_id: self.open_in_library("compare", run_id))
        return self.dashboard

    def ensure_library(self) -> Any:
        """The runs library, under the list of unfinished runs; built the first time Runs is shown."""
        if self.library is None:
            from studio.library.library_page import LibraryPage

            self.library = LibraryPage()
            for view, topic in (("compare_view", "compare"), ("playground_view", "playground"),
                                ("hardest_view", "hardest")):
                set_help_topic(getattr(self.library, view), topic)
            self.runs.layout().addWidget(self.library)
            self.library.show()  # (a layout shows a new child of a visible page only on the next loop)
            self.library.resumeRequested.connect(self.resume_run)
            self.library.continueRequested.connect(self.continue_run)
            self.library.exportRequested.connect(self.open_export)
            self.library.newRunRequested.connect(self.load_into_wizard)
            self.library.runDeleted.connect(lambda _run_id: self.resumable.refresh())
            self.library.watchRequested.connect(self.watch_run)
            self.explainer.watch(self.library, self.library.refreshed)
        return self.library

    def ensure_notifier(self) -> Any:
        """One desktop notifier for the window: the dashboard's milestones and the queue's notices share its
        tray icon and its Do not disturb setting."""
        if self.notifier is None:
            from studio.monitor.notifications import Notifier

            self.notifier = Notifier(parent=self)
        return self.notifier

    def watch_notices(self) -> None:
        """Show what is unseen now, then look again every ten seconds (after start-up, never before)."""
        self.check_notices()
        self.notice_timer.start()

    def check_notices(self) -> None:
        """Unseen notices from the queue runner and the schedules: listed in Runs and shown on the desktop."""
        from studio.engine.runs.notices import unseen_notices
        from studio.engine.runs.registry import Registry

        try:
            self._registry = self._registry or Registry()
            notices = unseen_notices(self._registry)
        except StudioError as exc:  # the registry is busy or unreadable: the next poll tries again
            log.warning("Could not read the notices: %s", exc.what)
            return
        if not notices:
            return
        self.notices.add(notices)
        notifier = self.ensure_notifier()
        for notice in notices:
            notifier.notify(notice.title, notice.message, critical=notice.level == "error")
        if self.library is not None:
            self.library.refresh()  # a retrain may have become the active version

    def offer_unfinished_runs(self) -> None:
        """Unfinished runs are the first thing to offer after a restart (checked once the window is up)."""
        self.resumable.refresh()
        if self.resumable.records:
            self.show_runs()

    def show_runs(self) -> Any:
        """Show the Runs section with fresh lists (the library reloads itself whenever it is shown)."""
        library = self.ensure_library()
        self.resumable.refresh()
        self.show_section(self.runs)
        return library

    # ---- requests between sections -----------------------------------------------------------------------

    def launch(self, config: Any) -> None:
        """Create the run and start it, then show its live dashboard."""
        self._start(config, None, fallback=self.wizard)

    def launch_rented(self, config: Any, offer: Any, budget: float) -> None:
        """Create the run and start it on the rented GPU chosen at review, within its budget cap."""
        self._start(config, None, fallback=self.wizard, rented=(offer, budget))

    def queue_run(self, config: Any, not_before: datetime | None = None, when_idle: bool = False) -> None:
        """"Add to queue": the run joins the queue at once (its training time is estimated in the background),
        shown at the top of Runs."""
        from studio.engine.runs.creation import default_run_name

        library = self.show_runs()
        library.show_list()
        library.queue_view.add(config, default_run_name(config), not_before=not_before, when_idle=when_idle)

    def continue_run(self, run_id: str) -> None:
        """Train on from a completed run's adapter: the same recipe, registered as its next minor version."""
        try:
            from studio.engine.runs.registry import Registry

            parent, config = Registry().continue_config(run_id)
        except StudioError as exc:
            show_error(self, "Training could not continue", exc)
            return
        self._start(config, parent.name, fallback=self.runs)

    def _start(self, config: Any, name: str | None, fallback: QWidget, rented: tuple[Any, float] | None = None) -> None:
        dashboard = self.ensure_dashboard()
        self.show_section(dashboard)
        try:
            if rented is None:
                dashboard.start_run(config, name)
            else:
                dashboard.start_run(config, name, offer=rented[0], budget=rented[1])
        except StudioError as exc:
            show_error(self, "Training could not start", exc)
            self.show_section(fallback)

    def resume_run(self, run_id: str) -> None:
        """A paused, interrupted or stopped run goes on from its last checkpoint, watched in the dashboard."""
        self._in_dashboard(lambda dashboard: dashboard.resume_run(run_id), "Training could not resume")

    def _machine_released(self, _released: Any) -> None:
        """A rented run's machine was terminated from the list of unfinished runs: the run is stopped now."""
        if self.library is not None:
            self.library.refresh()

    def watch_run(self, run_id: str) -> None:
        """Follow a run still training in the background (or look at a paused one)."""
        self._in_dashboard(lambda dashboard: dashboard.attach(run_id), "Studio could not open that run")

    def _in_dashboard(self, action: Callable[[Any], None], failure: str) -> None:
        dashboard = self.ensure_dashboard()
        self.show_section(dashboard)
        try:
            action(dashboard)
        except StudioError as exc:
            show_error(self, failure, exc)

    def open_in_library(self, view: str, run_id: str) -> None:
        """The dashboard's "Try it" and "Compare" open the library's views, once its rows have loaded."""
        library = self.show_runs()

        def open_view() -> None:
            (library.open_playground if view == "playground" else library.open_compare)([run_id])

        if run_id in library.rows:
            open_view()
        else:
            library.refreshed.connect(open_view, Qt.ConnectionType.SingleShotConnection)

    def load_into_wizard(self, config: dict[str, Any]) -> None:
        """"New run with these settings": the wizard takes the config's choices and re-checks the data."""
        session = self.wizard.session
        session.update(
            onboarding_done=True,
            profile_id=config.get("profile"),
            dataset_path=config.get("dataset_path"),
            column_mapping=config.get("column_mapping"),
            model_ref=config.get("base_model"),
            page=DATASET_PAGE,
        )
        session.replace_overrides({k: v for k, v in config.items() if k not in ("init_adapter", "compare_adapter")})
        self.show_section(self.wizard)
        self.wizard.start()  # shows the saved page (the data check) once the engine is ready

    def open_export(self, run_id: str) -> Any:
        """A non-modal export dialog for one run; several may run one after another."""
        from studio.engine.runs.registry import Registry
        from studio.exporting.export_dialog import ExportDialog

        record = Registry().get(run_id)
        if record is None:
            show_error(self, "Studio could not open the export", StudioError(
                what=f"The run {run_id} is no longer in the library.",
                why="It was deleted, or its folder was moved, after the list was shown.",
                actions=["Open Runs to see the runs there are now.", "Export another version of this model."],
                code="run_not_found",
            ))
            return None
        dialog = ExportDialog(record.run_dir, f"{record.name} {record.version}", parent=self)
        dialog.setWindowFlag(Qt.WindowType.Window)
        set_help_topic(dialog, "export")
        TermExplainer(dialog).watch(dialog)
        self.export_dialogs.append(dialog)
        dialog.finished.connect(lambda _code, d=dialog: self._forget_dialog(d))
        dialog.show()
        return dialog

    def _forget_dialog(self, dialog: Any) -> None:
        if dialog in self.export_dialogs:
            self.export_dialogs.remove(dialog)
            dialog.deleteLater()

    # ---- the tour -----------------------------------------------------------------------------------------

    def start_tour(self) -> TourOverlay:
        """The guided tour over this window; where it ends, the window shows what it showed before."""
        if self.tour is not None:
            self.tour.end(completed=False)
        section, onboarding = self.stack.currentWidget(), self.wizard.outer.currentWidget()
        self.tour = TourOverlay(self, build_stops(self._tour_targets()))
        self.tour.finished.connect(lambda _completed: self._after_tour(section, onboarding))
        mark_tour_seen()
        self.tour.start()
        return self.tour

    def _after_tour(self, section: QWidget, wizard_screen: QWidget) -> None:
        self.tour = None
        self.show_section(section)
        self.wizard.outer.setCurrentWidget(wizard_screen)

    def _tour_targets(self) -> dict[str, Callable[[], Any]]:
        """What each stop of resources/help/tour.yaml points at, brought on screen first."""

        def step(row: int) -> Callable[[], Any]:
            def show() -> Any:
                self.show_section(self.wizard)
                self.wizard.outer.setCurrentIndex(1)  # the steps, even before the welcome screen is left
                steps = self.wizard.steps
                return steps.viewport(), steps.visualItemRect(steps.item(row))
            return show

        def on_dashboard(find: Callable[[Any], QWidget]) -> Callable[[], QWidget]:
            def show() -> QWidget:
                dashboard = self.ensure_dashboard()
                self.show_section(dashboard)
                return find(dashboard)
            return show

        def export_button() -> QWidget:
            return self.show_runs().export_button  # type: ignore[no-any-return]

        return {
            "welcome": lambda: None,
            **{f"step-{row + 1}": step(row) for row in range(self.wizard.steps.count())},
            "chart": on_dashboard(lambda dashboard: dashboard.charts),
            "pause": on_dashboard(lambda dashboard: dashboard.controls),
            "export": export_button,
            "help": lambda: self.help_button,
        }

    # ---- closing ------------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """A training run may keep going in the background; the dashboard asks what the user wants."""
        if self.dashboard is not None and not self.dashboard.handle_close_request():
            event.ignore()
            return
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop every page's background work (exports are cancelled); the dashboard's worker is not touched, nor
        the queue's background process."""
        self.notice_timer.stop()
        self.resumable.shutdown()  # a machine being terminated is waited for
        for dialog in list(self.export_dialogs):
            dialog.shutdown()
            dialog.close()
        if self.library is not None:
            from studio.monitor.dashboard import close_plots

            self.library.shutdown()
            close_plots(self.library)  # the comparison chart's menus must not outlive the window
        if self.dashboard is not None:
            self.dashboard.shutdown()
        self.wizard.shutdown()


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setWindowIcon(app_icon())
    apply_theme(app)
    return app


def open_main_window(wizard: Wizard | None = None, first_run_tour: bool = False) -> MainWindow:
    """The window as a double-click opens it: shown at once; unfinished runs are offered once the engine
    has loaded in the background, so reading the runs registry never delays the first frame. With
    `first_run_tour` (the app, not tests) the tour starts the first time Studio opens."""
    window = MainWindow(wizard)
    window.show()
    if first_run_tour and not tour_seen():
        QTimer.singleShot(0, window, window.start_tour)
    if window.wizard.ready:
        QTimer.singleShot(0, window.offer_unfinished_runs)
        QTimer.singleShot(0, window.watch_notices)
    else:
        window.wizard.session.ready.connect(window.offer_unfinished_runs)
        window.wizard.session.ready.connect(window.watch_notices)
    window.wizard.start()
    return window


def run_app(argv: list[str] | None = None) -> int:
    app = create_app(argv)
    open_main_window(first_run_tour=True)
    return app.exec()
