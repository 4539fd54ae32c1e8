"""What a person would see as broken on any screen: controls a keyboard reaches without a name, and labels
or buttons whose text is cut off."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLabel, QWidget


def layout_problems(root: QWidget) -> list[str]:
    problems = []
    for widget in root.findChildren(QWidget):
        if not widget.isVisibleTo(root) or not widget.isVisible():
            continue
        if isinstance(widget.parent(), (QAbstractSpinBox, QComboBox)):
            continue  # the line edit inside a named spin box or combo box
        tab_focus = bool(widget.focusPolicy() & Qt.FocusPolicy.TabFocus)
        text = widget.text() if isinstance(widget, (QLabel, QAbstractButton)) else ""
        if tab_focus and widget.isEnabled() and not (widget.accessibleName() or text):
            if widget.parent() is not None and type(widget).__name__ in {"QScrollBar", "QWidget"}:
                continue
            problems.append(f"no accessible name: {type(widget).__name__} in {type(widget.parent()).__name__}")
        single_line = isinstance(widget, QLabel) and text and not widget.wordWrap() and "\n" not in text
        if single_line and not _rich(widget, text) and widget.pixmap().isNull():
            needed = widget.fontMetrics().horizontalAdvance(text)
            if needed > widget.contentsRect().width() + 1:
                problems.append(f"cut label: {text!r} needs {needed}px, has {widget.contentsRect().width()}")
        if isinstance(widget, QAbstractButton) and text:
            needed = widget.fontMetrics().horizontalAdvance(text.replace("&", ""))
            if needed > widget.width():
                problems.append(f"cut button: {text!r} needs {needed}px, has {widget.width()}")
    return problems


def _rich(label: QLabel, text: str) -> bool:
    """Whether Qt draws the label's text as markup (so its width is not that of the raw string)."""
    shown = label.textFormat()
    return shown == Qt.TextFormat.RichText or (shown == Qt.TextFormat.AutoText and "<" in text)
