"""One model's side of a playground conversation: its turns, the answer streaming in, and a note when the model
no longer sees its oldest turns.

The transcript is drawn from the message list (never edited in place), so what is shown is always what the
model was given plus the answer it is writing now.
"""

from __future__ import annotations

import html

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from studio.engine.library.conversations import Message
from studio.gui.glossary import terms_in, tooltip_for
from studio.gui.widgets import wrapped_label


class TranscriptColumn(QWidget):
    """The conversation as one model (`key`) had it; a tuned model's column offers to correct its last answer."""

    def __init__(self, key: str, label: str, tuned: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key, self.label = key, label
        self._turns: list[Message] = []
        self._pending: tuple[str, str] | None = None  # (prompt, the answer so far) while it answers
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        what = "your trained version" if tuned else "the model you started from"
        self.header = QLabel(f"<b>{html.escape(label)}</b> <span style='color: gray'>({what})</span>")
        self._top = top = QHBoxLayout()
        top.addWidget(self.header, 1)
        box.addLayout(top)
        self.view = QTextBrowser()
        self.view.setAccessibleName(f"Conversation with {label}")
        self.view.setOpenLinks(False)
        box.addWidget(self.view, 1)
        self.trim_note = wrapped_label("", name="muted")
        self.trim_note.hide()
        box.addWidget(self.trim_note)
        self.correct_button: QPushButton | None = None
        if tuned:
            self.correct_button = QPushButton("Correct this answer…")
            self.correct_button.setAccessibleName(f"Correct the last answer of {label}")
            self.correct_button.setToolTip("Write the answer you wanted instead; Studio can add it to a copy of "
                                           "your dataset, so the next version learns it.")
            self.correct_button.setEnabled(False)
            top.addWidget(self.correct_button)  # in the header row, so both transcripts stay the same height
        self._render()

    def align_header(self, height: int) -> None:
        """Make the header row `height` high, so transcripts side by side start at the same line."""
        self.header.setMinimumHeight(max(height, self._top.sizeHint().height()))

    def header_height(self) -> int:
        return self._top.sizeHint().height()

    def set_turns(self, turns: list[Message]) -> None:
        """Show these turns (the model's side of the conversation) and nothing pending."""
        self._turns = [dict(message) for message in turns]
        self._pending = None
        self._render()

    def begin_answer(self, prompt: str) -> None:
        self._pending = (prompt, "")
        self._render()

    def add_text(self, text: str) -> None:
        if self._pending is None:
            return
        self._pending = (self._pending[0], self._pending[1] + text)
        self._render()

    def last_answer(self) -> str:
        """The answer streaming in now, else the last answer shown."""
        if self._pending is not None:
            return self._pending[1].strip()
        answers = [m["content"] for m in self._turns if m["role"] == "assistant"]
        return answers[-1] if answers else ""

    def set_dropped(self, dropped: int) -> None:
        """Say that the model answered without its `dropped` oldest messages (they did not fit)."""
        if dropped <= 0:
            self.trim_note.hide()
            return
        text = (f"The conversation is longer than this model can read at once (its context length), so it "
                f"answered without the {dropped} oldest messages. They are still saved here.")
        self.trim_note.setText(text)
        self.trim_note.setToolTip(tooltip_for(terms_in(text)))
        self.trim_note.show()

    def _render(self) -> None:
        parts = []
        for message in self._turns:
            parts.append(self._bubble(message["role"], message["content"]))
        if self._pending is not None:
            prompt, answer = self._pending
            parts.append(self._bubble("user", prompt))
            parts.append(self._bubble("assistant", answer + " ▍"))
        if not parts:
            parts.append("<p style='color: gray'>No messages yet. Type one below and press Send.</p>")
        self.view.setHtml("".join(parts))
        bar = self.view.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _bubble(self, role: str, content: str) -> str:
        who = {"user": "You", "assistant": self.label}.get(role, role.capitalize())
        text = html.escape(content).replace("\n", "<br>") or "<i>(no answer)</i>"
        return f"<p><b>{html.escape(who)}:</b><br>{text}</p>"
