"""The keyboard-shortcut list (Ctrl+/), read from the window's real QActions and QShortcuts and from the
Alt+letter of the buttons on the current screen, so it lists exactly what the keys do and cannot drift."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class ShortcutRow:
    keys: str
    does: str
    where: str


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").removesuffix("…").strip()


def shortcut_rows(window: QWidget) -> list[ShortcutRow]:
    """Every shortcut `window` answers to now: its actions' and shortcuts' keys (everywhere), then the
    Alt+letter of the buttons shown on the current screen."""
    rows: list[ShortcutRow] = []
    for action in window.findChildren(QAction):
        for sequence in action.shortcuts():
            text = _plain(action.toolTip() if action.toolTip() and not action.text() else action.text())
            rows.append(ShortcutRow(sequence.toString(QKeySequence.SequenceFormat.NativeText), text, "Everywhere"))
    for shortcut in window.findChildren(QShortcut):
        if shortcut.isEnabled() and not shortcut.key().isEmpty():
            rows.append(ShortcutRow(shortcut.key().toString(QKeySequence.SequenceFormat.NativeText),
                                    shortcut.whatsThis() or shortcut.objectName(), "Everywhere"))
    for button in window.findChildren(QAbstractButton):
        key = button.shortcut()
        if not key.isEmpty() and button.isVisible():  # (a greyed-out one is still this screen's key)
            rows.append(ShortcutRow(key.toString(QKeySequence.SequenceFormat.NativeText), _plain(button.text()),
                                    "This screen"))
    unique = list(dict.fromkeys(rows))
    return sorted(unique, key=lambda r: (r.where != "Everywhere", r.keys))


class ShortcutsDialog(QDialog):
    """The list, as a table a screen reader reads row by row."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.setMinimumSize(480, 420)
        layout = QVBoxLayout(self)
        self.rows = shortcut_rows(window)
        self.table = QTableWidget(len(self.rows), 3)
        self.table.setTabKeyNavigation(False)  # Tab moves on to the next control; arrows move in it
        self.table.setAccessibleName("Keyboard shortcuts")
        self.table.setHorizontalHeaderLabels(["Keys", "What it does", "Where"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, entry in enumerate(self.rows):
            for column, text in enumerate((entry.keys, entry.does, entry.where)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.resizeColumnToContents(0)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)

    def shown_keys(self) -> list[str]:
        items = (self.table.item(row, 0) for row in range(self.table.rowCount()))
        return [item.text() if item is not None else "" for item in items]
