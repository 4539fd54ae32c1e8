"""What every wizard page shares: the session it reads and writes, and how it tells the wizard it is done."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from studio.gui.help import help_button, set_help_topic
from studio.gui.widgets import wrapped_label
from studio.wizard.session import WizardSession


class WizardPage(QWidget):
    """A page in a scroll area (so nothing is cut at 200% scaling) with a title, its "?" help button and an
    intro line. Its help page is resources/help/pages/<module name less _page>.md (F1 shows it too).

    Signals:
        completeChanged(): whether Next may be pressed may have changed.
    """

    completeChanged = Signal()  # noqa: N815 - Qt signal naming
    title = ""
    intro = ""

    def __init__(self, session: WizardSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setAccessibleName(self.title)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        self.body = QVBoxLayout(body)
        self.body.setContentsMargins(24, 18, 24, 18)
        self.body.setSpacing(12)
        heading = QLabel(self.title)
        heading.setObjectName("pageTitle")
        heading.setAccessibleName(self.title)
        topic = type(self).__module__.rsplit(".", 1)[-1].removesuffix("_page")
        set_help_topic(self, topic)
        title_row = QHBoxLayout()
        title_row.addWidget(heading)
        title_row.addWidget(help_button(topic, self.title), 0, Qt.AlignmentFlag.AlignVCenter)
        title_row.addStretch(1)
        self.body.addLayout(title_row)
        if self.intro:
            self.body.addWidget(wrapped_label(self.intro, name="muted"))

    def enter(self) -> None:
        """Called each time the page is shown; refresh from the session."""

    def blocker(self) -> str | None:
        """Why Next is not allowed yet, in plain words, or None when it is."""
        return None

    def shutdown(self) -> None:
        """Stop background work before the page goes away."""
