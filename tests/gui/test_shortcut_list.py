"""Ctrl+/ lists the keyboard shortcuts, read from the window's real actions, so the list cannot drift."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication

from studio.gui.shortcuts import ShortcutsDialog, shortcut_rows
from studio.wizard.state import WizardState


def _native(keys: str) -> str:
    return QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText)


def test_ctrl_slash_lists_the_real_shortcuts(make_window, qtbot):
    window = make_window(state=WizardState(onboarding_done=True))
    window.wizard.start()
    qtbot.waitUntil(lambda: window.wizard.ready, timeout=60_000)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_Slash, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.findChild(ShortcutsDialog) is not None)
    dialog = window.findChild(ShortcutsDialog)
    assert dialog.isVisible()
    rows = {(row.keys, row.does) for row in dialog.rows}
    for keys, does in (("F1", "Help on this screen"), ("Ctrl+/", "Keyboard shortcuts"),
                       ("Ctrl+1", "New training"), ("Ctrl+2", "Runs")):
        assert (_native(keys), does) in rows, (keys, rows)
    assert (_native("Alt+N"), "Next") in rows  # the wizard's Next button, on this screen
    assert dialog.shown_keys() == [row.keys for row in dialog.rows]
    dialog.close()


def test_the_list_follows_the_actions_the_window_has(make_window, qtbot):
    window = make_window()
    before = shortcut_rows(window)
    assert _native("Ctrl+3") not in {row.keys for row in before}
    window.ensure_dashboard()  # a new section brings its own shortcut
    assert (_native("Ctrl+3"), "Training") in {(row.keys, row.does) for row in shortcut_rows(window)}
    extra = QAction("Do something", window)
    extra.setShortcut(QKeySequence("Ctrl+Shift+D"))
    window.addAction(extra)
    shortcut = QShortcut(QKeySequence("Ctrl+Shift+E"), window)
    shortcut.setWhatsThis("Something else")
    keys = {(row.keys, row.does) for row in shortcut_rows(window)}
    assert (_native("Ctrl+Shift+D"), "Do something") in keys and (_native("Ctrl+Shift+E"), "Something else") in keys


def test_every_shortcut_works_the_way_the_list_says(make_window, qtbot):
    window = make_window()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    window.ensure_dashboard()
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.stack.currentWidget() is window.dashboard
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.stack.currentWidget() is window.wizard
