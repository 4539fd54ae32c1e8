"""The main window wires the sections together: toolbar navigation, the runs library with a real finished
run, export from the library and the dashboard, resume and continue into the dashboard, and "new run with
these settings" back into the wizard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel

from studio.app import MainWindow
from studio.engine.config import TrainConfig
from studio.engine.runs.registry import Registry, RunRecord
from studio.wizard.wizard import DATASET_PAGE
from tests.gui.exporting.tiny_run import RUN_ID

FINISHED = {"completed", "failed", "interrupted", "stopped"}


def click(qtbot, window: MainWindow, action: QAction) -> None:
    qtbot.mouseClick(window.nav.widgetForAction(action), Qt.MouseButton.LeftButton)


def open_runs(qtbot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.runs_action.triggered):
        click(qtbot, window, window.runs_action)
    qtbot.waitUntil(lambda: window.library is not None and RUN_ID in window.library.rows, timeout=30_000)


def select_run(qtbot, window: MainWindow) -> None:
    window.library.select([RUN_ID])
    qtbot.waitUntil(lambda: window.library.selected_ids() == [RUN_ID])


def test_toolbar_switches_sections(qtbot, make_window):
    window = make_window()
    assert [a.text() for a in window.nav.actions()] == ["New training", "Runs"]
    assert window.library is None  # built on first visit, keeping pyqtgraph out of start-up
    click(qtbot, window, window.runs_action)
    assert window.stack.currentWidget() is window.runs and window.runs_action.isChecked()
    assert window.library is not None and window.library.isVisible()
    assert not window.resumable.isVisible()  # nothing unfinished to offer
    click(qtbot, window, window.wizard_action)
    assert window.stack.currentWidget() is window.wizard and window.wizard_action.isChecked()
    window.ensure_dashboard()
    assert window.dashboard_action is not None
    click(qtbot, window, window.dashboard_action)
    assert window.stack.currentWidget() is window.dashboard


def test_finished_run_is_listed_and_export_opens_the_dialog(qtbot, make_window, tiny_run: RunRecord,
                                                            tmp_path: Path):
    window = make_window()
    open_runs(qtbot, window)
    assert window.library.rows[RUN_ID].run.status == "completed"
    select_run(qtbot, window)
    assert window.library.export_button.isEnabled()
    qtbot.mouseClick(window.library.export_button, Qt.MouseButton.LeftButton)
    assert len(window.export_dialogs) == 1
    dialog = window.export_dialogs[0]
    assert dialog.isVisible() and dialog.run_dir == tiny_run.run_dir
    assert not window.runs.grab().isNull()
    dialog.close()
    qtbot.waitUntil(lambda: not window.export_dialogs)
    # The dashboard's completion card asks for an export the same way.
    window.ensure_dashboard().exportRequested.emit(RUN_ID)
    assert len(window.export_dialogs) == 1 and window.export_dialogs[0].run_dir == tiny_run.run_dir


def test_dashboard_compare_opens_in_the_library(qtbot, make_window, tiny_run: RunRecord):
    window = make_window()
    window.ensure_dashboard().compareRequested.emit(RUN_ID)  # before the library has loaded its rows
    assert window.stack.currentWidget() is window.runs
    qtbot.waitUntil(lambda: window.library.stack.currentWidget() is window.library.compare_view, timeout=30_000)


def test_new_run_with_these_settings_fills_the_wizard(qtbot, make_window, tiny_run: RunRecord):
    window = make_window()
    open_runs(qtbot, window)
    config = {**tiny_run.config, "learning_rate": 0.004}
    window.library.newRunRequested.emit(config)
    assert window.stack.currentWidget() is window.wizard
    state = window.wizard.session.state
    assert state.dataset_path == config["dataset_path"] and state.model_ref == config["base_model"]
    assert state.overrides["learning_rate"] == 0.004 and state.overrides["max_steps"] == 2
    qtbot.waitUntil(lambda: window.wizard.ready and window.wizard.index == DATASET_PAGE, timeout=60_000)


def test_resume_and_continue_from_the_library_reach_the_dashboard(qtbot, make_window, tiny_run: RunRecord):
    registry = Registry()
    registry.set_status(RUN_ID, "interrupted")  # as after a crash: the last checkpoint is safe
    window = make_window()
    open_runs(qtbot, window)
    assert window.resumable.isVisible() and "resume" in window.resumable.buttons[RUN_ID]
    select_run(qtbot, window)
    qtbot.mouseClick(window.library.resume_button, Qt.MouseButton.LeftButton)
    dashboard = window.dashboard
    assert dashboard is not None and window.stack.currentWidget() is dashboard
    assert dashboard.run_dir == tiny_run.run_dir
    qtbot.waitUntil(lambda: dashboard.supervisor is not None, timeout=30_000)  # its history read, then launched
    qtbot.waitUntil(lambda: registry.get(RUN_ID).status in FINISHED and dashboard.supervisor is None,
                    timeout=120_000)
    assert registry.get(RUN_ID).status == "completed"

    with qtbot.waitSignal(window.library.refreshed, timeout=30_000):  # shown again: reloaded
        click(qtbot, window, window.runs_action)
    select_run(qtbot, window)
    assert window.library.continue_button.isEnabled()
    qtbot.mouseClick(window.library.continue_button, Qt.MouseButton.LeftButton)
    assert window.stack.currentWidget() is dashboard
    child = registry.get(dashboard.state.run_id)
    assert child is not None and child.parent_id == RUN_ID and child.version == "1.1.0"
    assert TrainConfig.load(child.run_dir / "config.json").init_adapter
    qtbot.waitUntil(lambda: registry.get(child.id).status in FINISHED and dashboard.supervisor is None,
                    timeout=120_000)
    assert registry.get(child.id).status == "completed"


def test_a_restart_after_a_crash_opens_on_runs_and_offers_to_resume(qtbot, tiny_run, make_window):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # the worker of a crashed session: gone now
    dead.wait()
    registry = Registry()
    registry.mark_running(RUN_ID, pid=dead.pid)
    window = make_window(opened=True)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.runs, timeout=20_000)
    assert window.runs_action.isChecked() and window.resumable.isVisible()
    assert [record.id for record in window.resumable.records] == [RUN_ID]
    assert registry.get(RUN_ID).status == "interrupted"
    shown = " ".join(label.text() for label in window.resumable.findChildren(QLabel))
    assert "stopped unexpectedly, the last checkpoint is safe" in shown
    assert window.resumable.buttons[RUN_ID]["resume"].isVisible()


def test_a_normal_start_opens_on_the_wizard(qtbot, tiny_run, make_window):
    window = make_window(opened=True)
    qtbot.waitUntil(lambda: window.wizard.ready, timeout=30_000)  # the offer is checked once it is
    assert window.stack.currentWidget() is window.wizard and not window.resumable.records
