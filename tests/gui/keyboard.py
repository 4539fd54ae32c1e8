"""Driving a screen without a mouse, as a keyboard user does: Tab through its controls, or Tab to one."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget

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
    """Press Tab until `target` has the focus."""
    root.activateWindow()
    qtbot.waitUntil(root.isActiveWindow, timeout=5000)
    for _ in range(TAB_LIMIT):
        if target.hasFocus():
            return
        qtbot.keyClick(QApplication.focusWidget() or root, Qt.Key.Key_Tab)
    raise AssertionError(f"Tab never reached {target.accessibleName() or target}")


def names(widgets: list[QWidget]) -> list[str]:
    """What a screen reader announces for each widget: its accessible name, else its text."""
    return [widget.accessibleName() or getattr(widget, "text", lambda: "")() for widget in widgets]
