"""Step 1: what the user wants the model to do, as six cards with a plain description and an example.

The profiles come from the session, which reads them in the background while the window appears.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFormLayout, QGridLayout, QGroupBox, QVBoxLayout, QWidget

from studio.gui.widgets import Card, wrapped_label
from studio.wizard.base import WizardPage
from studio.wizard.session import WizardSession

if TYPE_CHECKING:
    from studio.engine.profiles import Profile

COLUMNS = 3


class ProfileCard(Card):
    def __init__(self, profile: Profile, parent: QWidget | None = None) -> None:
        super().__init__(f"{profile.name}: {profile.summary}", parent)
        self.profile = profile
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.addWidget(wrapped_label(profile.name, name="sectionTitle"))
        layout.addWidget(wrapped_label(profile.summary, name="muted"))
        layout.addStretch(1)


class ProfilePage(WizardPage):
    title = "What should your model do?"
    intro = (
        "Pick the use case closest to yours. "
        "Studio chooses sensible settings for it; you can change them later."
    )

    def __init__(self, session: WizardSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.profiles: dict[str, Profile] = session.profiles
        self.cards: list[ProfileCard] = []
        grid = QGridLayout()
        grid.setSpacing(12)
        for col in range(COLUMNS):
            grid.setColumnStretch(col, 1)
        for index, profile in enumerate(self.profiles.values()):
            card = ProfileCard(profile)
            card.activated.connect(lambda p=profile.id: self.select(p))
            card.installEventFilter(self)
            grid.addWidget(card, index // COLUMNS, index % COLUMNS)
            self.cards.append(card)
        self.body.addLayout(grid)

        self.details = QGroupBox("About this use case")
        form = QFormLayout(self.details)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.description = wrapped_label(selectable=True)
        self.example_in = wrapped_label(selectable=True)
        self.example_out = wrapped_label(selectable=True)
        self.data_needed = wrapped_label(selectable=True)
        form.addRow("What it does:", self.description)
        form.addRow("Example request:", self.example_in)
        form.addRow("Example answer:", self.example_out)
        form.addRow("Data you need:", self.data_needed)
        self.body.addWidget(self.details)
        self.body.addStretch(1)
        self.details.hide()
        if session.state.profile_id in self.profiles:
            self._show(session.state.profile_id)

    def select(self, profile_id: str) -> None:
        self.session.update(profile_id=profile_id)
        self._show(profile_id)
        self.completeChanged.emit()

    def selected_card(self) -> ProfileCard | None:
        return next((card for card in self.cards if card.selected), None)

    def _show(self, profile_id: str) -> None:
        for card in self.cards:
            card.set_selected(card.profile.id == profile_id)
        profile = self.profiles[profile_id]
        self.details.setTitle(f"About {profile.name}")
        self.description.setText(profile.description)
        self.example_in.setText(profile.example.input)
        self.example_out.setText(profile.example.output)
        self.data_needed.setText(profile.data_needed)
        self.details.show()

    def enter(self) -> None:
        target = self.selected_card() or (self.cards[0] if self.cards else None)
        if target is not None:
            target.setFocus(Qt.FocusReason.OtherFocusReason)

    def blocker(self) -> str | None:
        return None if self.session.state.profile_id in self.profiles else "Choose a use case to continue."

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Arrow keys move between cards and choose, like a group of radio buttons."""
        if event.type() == QEvent.Type.KeyPress and watched in self.cards:
            step = {
                Qt.Key.Key_Left: -1,
                Qt.Key.Key_Right: 1,
                Qt.Key.Key_Up: -COLUMNS,
                Qt.Key.Key_Down: COLUMNS,
            }
            key = event.key() if isinstance(event, QKeyEvent) else None
            if key in step:
                index = self.cards.index(watched) + step[key]  # type: ignore[arg-type]
                if 0 <= index < len(self.cards):
                    card = self.cards[index]
                    card.setFocus(Qt.FocusReason.OtherFocusReason)
                    self.select(card.profile.id)
                return True
        return super().eventFilter(watched, event)
