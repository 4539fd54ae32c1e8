"""The dashboard without a mouse: Tab reaches every control, each with a name, and a real run is paused,
resumed and stopped with the keyboard alone."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget

from studio.monitor.state import RunStatus
from tests.gui.monitor.test_live_run import SLOW, tiny_config, wait_status

TAB_LIMIT = 120


def focus_chain(qtbot, root: QWidget) -> list[QWidget]:
    """Every widget Tab visits inside `root`, in order, from the first one until the focus comes round."""
    root.activateWindow()
    qtbot.waitUntil(root.isActiveWindow, timeout=5000)
    root.setFocus(Qt.FocusReason.OtherFocusReason)
    seen: list[QWidget] = []
    for _ in range(TAB_LIMIT):
        qtbot.keyClick(QApplication.focusWidget() or root, Qt.Key.Key_Tab)
        focused = QApplication.focusWidget()
        if focused is None or focused in seen:
            break
        if focused is root or root.isAncestorOf(focused):
            seen.append(focused)
    return seen


def tab_to(qtbot, root: QWidget, target: QWidget) -> None:
    """Press Tab until `target` has the focus, as someone without a mouse does."""
    root.activateWindow()
    qtbot.waitUntil(root.isActiveWindow, timeout=5000)
    for _ in range(TAB_LIMIT):
        if target.hasFocus():
            return
        qtbot.keyClick(QApplication.focusWidget() or root, Qt.Key.Key_Tab)
    raise AssertionError(f"Tab never reached {target.accessibleName() or target}")


def test_every_control_tab_reaches_has_a_name(qtbot, dashboard, recorded_run_dir: Path):
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=20000):
        dashboard.open_run(recorded_run_dir)
    chain = focus_chain(qtbot, dashboard)
    names = [widget.accessibleName() or getattr(widget, "text", lambda: "")() for widget in chain]
    assert all(names), [type(widget).__name__ for widget, name in zip(chain, names, strict=True) if not name]
    assert "Notification settings" in names and "Loss smoothing" in names
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
