"""Small widgets shared by the wizard, the dashboard and the library: cards, badges, banners, "why?"."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

KINDS = ("ok", "warn", "bad", "info")


def wrapped_label(text: str = "", name: str | None = None, selectable: bool = False) -> QLabel:
    """A label that wraps instead of truncating, so nothing is cut at 1280x800 or at 200% scaling."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    if name:
        label.setObjectName(name)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class Badge(QLabel):
    """A short coloured verdict ("fits", "needs 4-bit") whose colour the theme chooses."""

    def __init__(self, text: str = "", kind: str = "info", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.set_kind(kind)

    def set_kind(self, kind: str) -> None:
        self.setObjectName(f"badge_{kind if kind in KINDS else 'info'}")
        self.style().unpolish(self)
        self.style().polish(self)


class Banner(QFrame):
    """A message shown inside a page (never a modal dialog) so the reason Next is blocked stays visible; an
    error has a Get Help button, like the error dialogs, that opens the offline page on its kind."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        self.title = wrapped_label(name="sectionTitle")
        self.body = wrapped_label(selectable=True)
        self.get_help = QPushButton("Get Help")
        self.get_help.setAccessibleName("Get help on this error")
        self.get_help.setToolTip("What this error means, why it happens and what to do, on a page that works "
                                 "offline")
        self.get_help.hide()
        self.get_help.clicked.connect(self._open_help)
        self.error: object = None
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.get_help, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(top)
        layout.addWidget(self.body)
        self.setAccessibleName("Message")
        self.hide()

    def show_message(self, kind: str, title: str, body: str = "") -> None:
        self.setObjectName(f"banner_{kind if kind in KINDS else 'info'}")
        self.style().unpolish(self)
        self.style().polish(self)
        self.title.setText(title)
        self.body.setText(body)
        self.body.setVisible(bool(body))
        self.setAccessibleDescription(f"{title} {body}".strip())
        self.error = None
        self.get_help.hide()
        self.show()

    def show_error(self, error: object) -> None:
        """Show a StudioError (what, why, actions) or any other exception's text."""
        what = getattr(error, "what", None) or str(error)
        lines = []
        if getattr(error, "why", ""):
            lines.append(error.why)  # type: ignore[attr-defined]
        lines.extend(f"• {action}" for action in getattr(error, "actions", []) or [])
        self.show_message("bad", what, "\n".join(lines))
        self.error = error
        self.get_help.show()

    def _open_help(self) -> None:
        from studio.gui.error_help import open_error_help  # (it imports the help pages' module)

        open_error_help(self.error, self)

    def text(self) -> str:
        return f"{self.title.text()}\n{self.body.text()}".strip()


class Card(QFrame):
    """A focusable, selectable card: click, Space or Enter selects it; the page handles arrow keys.

    Signals:
        activated(): the user chose this card.
    """

    activated = Signal()

    def __init__(self, accessible_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName(accessible_name)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._selected = False
        self.setProperty("selected", False)

    @property
    def selected(self) -> bool:
        return self._selected

    def set_selected(self, selected: bool) -> None:
        self._selected = selected
        self.setProperty("selected", selected)
        self.setAccessibleDescription("selected" if selected else "")
        self.style().unpolish(self)
        self.style().polish(self)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.setFocus(Qt.FocusReason.MouseFocusReason)
            self.activated.emit()
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.activated.emit()
            return
        super().keyPressEvent(event)


class WhyToggle(QWidget):
    """An editor with a "Why?" button beside it that reveals the explanation in place (keyboard reachable)."""

    def __init__(
        self, subject: str, explanation: str, editor: QWidget | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        if editor is not None:
            row.addWidget(editor, 1)
        self.button = QToolButton()
        self.button.setText("Why?")
        self.button.setCheckable(True)
        self.button.setAccessibleName(f"Why this value for {subject}?")
        row.addWidget(self.button)
        if editor is None:
            row.addStretch(1)
        layout.addLayout(row)
        self.label = wrapped_label(explanation, name="muted")
        self.label.hide()
        layout.addWidget(self.label)
        self.button.toggled.connect(self.label.setVisible)
        self.set_explanation(explanation)

    def set_explanation(self, text: str) -> None:
        self.label.setText(text)
        self.button.setToolTip(text)
