"""The one yes/no question the library's views ask before anything is deleted, stopped or removed.

Each view keeps it in a replaceable `confirm` attribute, so tests and automation answer without a dialog.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def ask(parent: QWidget, title: str, text: str) -> bool:
    """True when the user answers Yes; No is the default, so Enter never destroys anything."""
    answer = QMessageBox.question(parent, title, text, QMessageBox.StandardButton.Yes |
                                  QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes
