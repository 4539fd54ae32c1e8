"""What the queue and the schedules report, at the top of the Runs section: a queued run failed, an automatic
retrain was kept but not made active, a watched dataset changed but no longer validates.

The main window reads the registry's unseen notices and hands them here (and to the desktop notifier); they
stay listed until the user dismisses them, the worst level setting the banner's colour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from studio.gui.widgets import wrapped_label
from studio.library.times import clock_iso

if TYPE_CHECKING:  # built with the window: the registry is read later, after start-up
    from studio.engine.runs.notices import Notice

KIND = {"error": "bad", "warning": "warn", "info": "ok"}
RANK = ("info", "warning", "error")
SHOWN = 6  # the newest; older ones are counted
TITLE = "From the queue and automatic retraining"


class NoticesPanel(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.notices: list[Notice] = []
        self.setAccessibleName(TITLE)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        text = QVBoxLayout()
        self.title = wrapped_label(name="sectionTitle")
        self.body = wrapped_label(selectable=True)
        text.addWidget(self.title)
        text.addWidget(self.body)
        layout.addLayout(text, 1)
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.setAccessibleName("Dismiss these messages")
        self.dismiss_button.clicked.connect(self.dismiss)
        layout.addWidget(self.dismiss_button)
        self.hide()

    def add(self, notices: list[Notice]) -> None:
        if not notices:
            return
        self.notices.extend(notices)
        worst = max((n.level for n in self.notices), key=lambda level: RANK.index(level) if level in RANK else 0)
        self.setObjectName(f"banner_{KIND.get(worst, 'info')}")
        self.style().unpolish(self)
        self.style().polish(self)
        count = len(self.notices)
        self.title.setText(TITLE if count == 1 else f"{TITLE}: {count} messages")
        lines = [f"• {clock_iso(n.created_at)}  {n.title}. {n.message}" for n in self.notices[-SHOWN:]]
        if count > SHOWN:
            lines.insert(0, f"({count - SHOWN} older messages not shown)")
        self.body.setText("\n".join(lines))
        self.show()

    def text(self) -> str:
        return f"{self.title.text()}\n{self.body.text()}"

    def dismiss(self) -> None:
        self.notices.clear()
        self.hide()
