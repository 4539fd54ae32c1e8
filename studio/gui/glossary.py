"""The glossary (resources/help/glossary.yaml): every technical word Studio shows, explained in plain words.

`explain_terms` gives each widget that shows such a word, and has no tooltip of its own, a tooltip with the
glossary's explanation, so hovering any "LoRA rank" or "GGUF" on screen says what it means. The main window
runs it over a screen when the screen is shown and when its content changes (`TermExplainer`).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import cache

import yaml
from PySide6.QtCore import QObject, QTimer, SignalInstance
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QLabel,
    QStackedWidget,
    QTabWidget,
    QWidget,
)

from studio.engine.paths import resources_dir  # not studio.gui.help, which imports this module

_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Term:
    """One glossary entry: the word as shown, its other spellings, and what it means."""

    term: str
    text: str
    also: tuple[str, ...] = field(default=())

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.term.lower()).strip("-")


@cache
def glossary() -> tuple[Term, ...]:
    """The entries, in the file's (alphabetical) order; read once."""
    data = yaml.safe_load((resources_dir() / "help" / "glossary.yaml").read_text(encoding="utf-8"))
    return tuple(Term(str(e["term"]), " ".join(str(e["text"]).split()), tuple(map(str, e.get("also", []))))
                 for e in data)


@cache
def _pattern() -> tuple[re.Pattern[str], dict[str, Term]]:
    """One expression for every spelling, the longest first, so "access token" is not also "token"."""
    spellings: dict[str, Term] = {}
    for entry in glossary():
        for spelling in (entry.term, *entry.also):
            spellings[spelling.lower()] = entry
    words = sorted(spellings, key=len, reverse=True)
    alternatives = "|".join(re.escape(word) + r"(?:e?s)?" for word in words)
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE), spellings


def terms_in(text: str) -> list[Term]:
    """The glossary entries named in `text` (markup removed), each once, in order of appearance."""
    pattern, spellings = _pattern()
    found: list[Term] = []
    for match in pattern.finditer(_TAG.sub(" ", text)):
        word = match.group(0).lower()
        entry = spellings.get(word) or spellings.get(word.removesuffix("s")) or spellings.get(word[:-2])
        if entry is not None and entry not in found:
            found.append(entry)
    return found


def shown_text(widget: QWidget) -> str:
    """The words a widget puts on screen (its label, caption, title or choices)."""
    if isinstance(widget, QLabel):
        return widget.text()
    if isinstance(widget, QAbstractButton):
        return widget.text().replace("&", "")
    if isinstance(widget, QGroupBox):
        return widget.title()
    if isinstance(widget, QComboBox):
        return " · ".join(widget.itemText(i) for i in range(widget.count()))
    return ""


def explaining_widget(widget: QWidget, labels: dict[int, QLabel] | None = None) -> QWidget | None:
    """The widget whose tooltip explains `widget`: itself, its label's buddy (or the label of a control), or
    the group box around it; None when none of them has a tooltip. `labels` maps a control to its label."""
    candidates: list[QWidget | None] = [widget]
    if isinstance(widget, QLabel):
        candidates.append(widget.buddy())
    candidates.append((labels if labels is not None else buddy_labels(widget.window())).get(id(widget)))
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QGroupBox):
        parent = parent.parentWidget()
    candidates.append(parent)
    return next((c for c in candidates if c is not None and c.toolTip()), None)


def buddy_labels(root: QWidget) -> dict[int, QLabel]:
    """Each control under `root` that a label names (a form row's field), mapped to that label."""
    return {id(buddy): label for label in root.findChildren(QLabel) if (buddy := label.buddy()) is not None}


def tooltip_for(terms: list[Term]) -> str:
    return "<br>".join(f"<b>{html.escape(t.term)}</b>: {html.escape(t.text)}" for t in terms)


def explain_terms(root: QWidget) -> int:
    """Give every widget under `root` that shows a glossary term, and is not explained yet, the glossary's
    tooltip; returns how many got one."""
    count = 0
    labels = buddy_labels(root)
    for widget in [root, *root.findChildren(QWidget)]:
        text = shown_text(widget)
        if not text or explaining_widget(widget, labels) is not None:
            continue
        terms = terms_in(text)
        if terms:
            widget.setToolTip(tooltip_for(terms))
            count += 1
    return count


class TermExplainer(QObject):
    """Runs `explain_terms` over a screen after it is shown or changes (once per burst of changes, after the
    change has been drawn: a page fills in its texts after it becomes current)."""

    def __init__(self, root: QWidget) -> None:
        super().__init__(root)
        self.root = root
        self._pending = False

    def watch(self, screen: QWidget, *changes: SignalInstance) -> None:
        """Explain again whenever `screen` shows another of its pages or tabs, a selection in one of its lists
        changes (details are shown for it), or one of `changes` fires."""
        for widget in [screen, *screen.findChildren(QWidget)]:
            if isinstance(widget, QStackedWidget | QTabWidget):
                widget.currentChanged.connect(self.schedule)
            elif isinstance(widget, QAbstractItemView) and widget.selectionModel() is not None:
                widget.selectionModel().selectionChanged.connect(self.schedule)
        for signal in changes:
            signal.connect(self.schedule)
        self.schedule()

    def schedule(self, *_args: object) -> None:
        if not self._pending:
            self._pending = True
            QTimer.singleShot(0, self, self.run)

    def run(self) -> None:
        self._pending = False
        explain_terms(self.root)


def glossary_html() -> str:
    """The whole glossary as a help page, one anchor per term (help pages link to "glossary#lora")."""
    parts = ["<h1>Glossary</h1>", "<p>The words Studio uses, in plain language.</p>"]
    for entry in sorted(glossary(), key=lambda t: t.term.lower()):
        parts.append(f'<h3><a name="{entry.anchor}"></a>{html.escape(entry.term)}</h3>'
                     f"<p>{html.escape(entry.text)}</p>")
    return "\n".join(parts)
