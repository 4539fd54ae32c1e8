"""The playground's settings in plain language: the system prompt and how the models pick their words.

Each setting has a name a newcomer understands, the technical name in brackets (explained in the glossary)
and one line saying what changing it does.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.engine.library.playground import GenerationSettings
from studio.gui.glossary import terms_in, tooltip_for
from studio.gui.widgets import wrapped_label


def _explained(text: str) -> QWidget:
    label = wrapped_label(text, name="muted")
    label.setToolTip(tooltip_for(terms_in(text)) or text)
    return label


class SystemPromptBox(QGroupBox):
    """The instruction both models get before the conversation; a change applies from the next message."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Instructions for both models (system prompt)", parent)
        self.setToolTip(tooltip_for(terms_in("system prompt")))
        layout = QVBoxLayout(self)
        self.edit = QPlainTextEdit()
        self.edit.setAccessibleName("System prompt")
        self.edit.setPlaceholderText("For example: You are a friendly support agent. Answer in two sentences.")
        self.edit.setToolTip("Both models read this before every message. A change applies from the next "
                             "message on.")
        self.edit.setMaximumHeight(70)
        layout.addWidget(self.edit)

    def text(self) -> str:
        return self.edit.toPlainText().strip()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)


class GenerationBox(QGroupBox):
    """Temperature, top-p and the longest answer, each with what it does."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("How the models answer", parent)
        self.setToolTip("These settings change how the next answers are written, not the models themselves.")
        form = QFormLayout(self)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.7)
        self.temperature.setAccessibleName("Creativity (temperature)")
        self.temperature.setToolTip("0 gives the same answer every time; higher values vary more.")
        form.addRow("Creativity (temperature)", self.temperature)
        form.addRow(_explained("0 = the same answer every time; 1 or more = varied, sometimes odd."))
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.05, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(0.9)
        self.top_p.setAccessibleName("Word choice (top-p)")
        self.top_p.setToolTip("Only the most likely words that together make up this share are considered.")
        form.addRow("Word choice (top-p)", self.top_p)
        form.addRow(_explained("Lower = only the most likely words; 1 = any word may be picked."))
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 2048)
        self.max_tokens.setValue(128)
        self.max_tokens.setAccessibleName("Longest answer (max new tokens)")
        self.max_tokens.setToolTip("The longest answer, in tokens (about ¾ of a word each).")
        form.addRow("Longest answer (tokens)", self.max_tokens)
        form.addRow(_explained("An answer stops here even mid-sentence; 100 tokens are about 75 words."))

    def settings(self) -> GenerationSettings:
        """The settings as chosen (a StudioError when out of range)."""
        return GenerationSettings(self.temperature.value(), self.top_p.value(), self.max_tokens.value())
