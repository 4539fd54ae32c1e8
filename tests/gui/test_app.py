"""The main window: fast start without torch, theme following the system, and launch into a real run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from studio.app import app_icon
from studio.engine.config import TrainConfig
from studio.gui.theme import DARK, LIGHT, apply_theme, is_dark
from studio.wizard.state import WizardState

STARTUP_PROBE = """
import sys
from studio.app import create_app, open_main_window
app = create_app(sys.argv[:1])
window = open_main_window()
app.processEvents()
assert window.isVisible() and window.wizard.isVisible()
heavy = sorted(m for m in ("torch", "transformers", "datasets", "peft", "trl") if m in sys.modules)
window.wizard.shutdown()
print("HEAVY", heavy)
"""


def test_window_shows_without_importing_torch(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", STARTUP_PROBE], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


def test_icon_and_sections(make_window):
    assert not app_icon().isNull()
    window = make_window()
    assert window.stack.currentWidget() is window.wizard
    assert [a.text() for a in window.nav.actions()] == ["New training", "Runs"]
    assert window.dashboard is None  # built on the first launch only


def test_theme_follows_the_system_colour_scheme(qapp: QApplication):
    hints = qapp.styleHints()
    apply_theme(qapp)
    try:
        # What the platform does when the user switches the desktop to dark (offscreen has no desktop).
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
        assert is_dark()
        assert qapp.palette().color(QPalette.ColorRole.Window).name() == DARK.window
        assert DARK.base in qapp.styleSheet()
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
        assert qapp.palette().color(QPalette.ColorRole.Window).name() == LIGHT.window
    finally:
        hints.colorSchemeChanged.disconnect()
        qapp.setStyleSheet("")


@pytest.mark.slow
def test_launch_opens_the_dashboard_and_a_real_run_completes(
    qtbot, make_window, tiny_model_dir: Path, tiny_chat_file: Path
):
    from studio.monitor.state import RunStatus

    state = WizardState(
        onboarding_done=True, profile_id="chatbot", dataset_path=str(tiny_chat_file),
        model_ref=str(tiny_model_dir), overrides={"max_steps": 2, "eval_fraction": 0.0}, page=1,
    )
    window = make_window(state=state)
    wizard = window.wizard
    wizard.start()
    qtbot.waitUntil(lambda: wizard.ready and wizard.next_button.isEnabled(), timeout=120_000)  # data checked
    for _ in range(3):  # model, settings, review
        wizard.next()
        qtbot.waitUntil(lambda: wizard.next_button.isEnabled(), timeout=60_000)
    assert wizard.index == 4
    with qtbot.waitSignal(wizard.launchRequested, timeout=5000) as launched:
        qtbot.mouseClick(wizard.next_button, Qt.MouseButton.LeftButton)
    config: TrainConfig = launched.args[0]
    assert config.max_steps == 2 and config.base_model == str(tiny_model_dir)
    dashboard = window.dashboard
    assert dashboard is not None and window.stack.currentWidget() is dashboard
    assert window.dashboard_action is not None and window.dashboard_action.isChecked()
    finished = {RunStatus.COMPLETED, RunStatus.FAILED}
    qtbot.waitUntil(lambda: dashboard.state.status in finished, timeout=240_000)
    assert dashboard.state.status is RunStatus.COMPLETED, dashboard.state
    run_dir = dashboard.run_dir
    assert run_dir is not None and (run_dir / "events.jsonl").is_file()
    assert TrainConfig.load(run_dir / "config.json").max_steps == 2
