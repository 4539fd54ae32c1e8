"""The dashboard without a mouse: Tab reaches every control, each with a name, and a real run is paused,
resumed and stopped with the keyboard alone."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from studio.monitor.state import RunStatus
from tests.gui.keyboard import focus_chain, names, tab_to
from tests.gui.monitor.test_live_run import SLOW, tiny_config, wait_status


def test_every_control_tab_reaches_has_a_name(qtbot, dashboard, recorded_run_dir: Path):
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=20000):
        dashboard.open_run(recorded_run_dir)
    chain = focus_chain(qtbot, dashboard)
    announced = names(chain)
    assert all(announced), [type(widget).__name__ for widget, name in zip(chain, announced, strict=True) if not name]
    assert "Notification settings" in announced and "Loss smoothing" in announced
    before = dashboard.charts.smoothing.value()
    tab_to(qtbot, dashboard, dashboard.charts.smoothing)
    qtbot.keyClick(dashboard.charts.smoothing, Qt.Key.Key_PageUp)
    assert dashboard.charts.smoothing.value() > before
    assert dashboard.buffers.smoothing == dashboard.charts.smoothing.value() / 100


def test_a_real_run_is_paused_resumed_and_stopped_from_the_keyboard(qtbot, dashboard, tiny_model_dir: Path,
                                                                     tiny_chat_file: Path, slow_steps: None):
    dashboard.controls.confirm_stop = lambda parent: True
    dashboard.start_run(tiny_config(tiny_model_dir, tiny_chat_file))
    qtbot.waitUntil(lambda: dashboard.state.step >= 2, timeout=SLOW)
    wait_status(qtbot, dashboard, RunStatus.RUNNING)
    buttons = dashboard.controls.buttons

    tab_to(qtbot, dashboard, buttons["pause"])
    qtbot.keyClick(buttons["pause"], Qt.Key.Key_Space)
    wait_status(qtbot, dashboard, RunStatus.PAUSED)
    paused_at = dashboard.state.step

    tab_to(qtbot, dashboard, buttons["resume"])
    qtbot.keyClick(buttons["resume"], Qt.Key.Key_Space)
    wait_status(qtbot, dashboard, RunStatus.RUNNING)
    qtbot.waitUntil(lambda: dashboard.state.step > paused_at, timeout=60_000)

    tab_to(qtbot, dashboard, buttons["stop"])
    qtbot.keyClick(buttons["stop"], Qt.Key.Key_Space)
    wait_status(qtbot, dashboard, RunStatus.STOPPED)
    qtbot.waitUntil(lambda: dashboard.supervisor is None, timeout=60_000)
    qtbot.waitUntil(dashboard.summary.isVisible)
    assert dashboard.summary.title.text() == "Training stopped"
