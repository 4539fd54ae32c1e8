"""The help panel: a plain-language page for each screen, read from resources/help/pages/<topic>.md.

Texts are data, not code, so they can be corrected without touching a widget. A screen says which page
explains it by a `helpTopic` property (`set_help_topic`); F1 and the "?" buttons open the page of the deepest
visible screen that has one, in the main window's help panel, or in a small window beside a dialog.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.paths import resources_dir

TOPIC_PROPERTY = "helpTopic"
FALLBACK_TOPIC = "overview"
GLOSSARY_LINK = "glossary"  # a link "glossary#lora" opens the glossary at LoRA


def help_dir() -> Path:
    return resources_dir() / "help"


def page_path(topic: str) -> Path:
    """The page for `topic`, or the overview when there is none (a new screen is never a dead F1)."""
    path = help_dir() / "pages" / f"{topic}.md"
    return path if path.is_file() else help_dir() / "pages" / f"{FALLBACK_TOPIC}.md"


def page_title(markdown: str) -> str:
    """The page's first heading, which names it in the panel's title and the window title."""
    match = re.search(r"^#\s+(.+)$", markdown, re.MULTILINE)
    return match.group(1).strip() if match else "Help"


def set_help_topic(widget: QWidget, topic: str) -> None:
    widget.setProperty(TOPIC_PROPERTY, topic)


def topic_at(root: QWidget) -> str:
    """The topic of the innermost screen shown under `root` (a stacked page hides the ones behind it)."""
    best, depth = FALLBACK_TOPIC, -1
    for widget in [root, *root.findChildren(QWidget)]:
        topic = widget.property(TOPIC_PROPERTY)
        if not topic or not (widget is root or widget.isVisibleTo(root)):
            continue
        level, parent = 0, widget.parentWidget()
        while parent is not None and parent is not root:
            level, parent = level + 1, parent.parentWidget()
        if level > depth:
            best, depth = str(topic), level
    return best


class HelpBrowser(QTextBrowser):
    """Shows help pages and follows their links: another page, the glossary, or (rarely) a web address in
    the system browser. Everything it shows ships with Studio, so it works offline."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setAccessibleName("Help text")
        self.topic = ""
        self.anchorClicked.connect(self.follow)

    def show_topic(self, topic: str, anchor: str = "") -> None:
        """A page by its topic; "glossary" is the glossary, at the term `anchor` names."""
        if topic == GLOSSARY_LINK:
            from studio.gui.glossary import glossary_html

            self.topic = GLOSSARY_LINK
            self.setHtml(glossary_html())
            self.setDocumentTitle("Glossary")
            if anchor:
                self.scrollToAnchor(anchor)
            return
        path = page_path(topic)
        self.topic = path.stem
        self.setSearchPaths([str(path.parent)])
        self.set_page(path.read_text(encoding="utf-8"))

    def set_page(self, markdown: str) -> None:
        self.setMarkdown(markdown)
        self.setDocumentTitle(page_title(markdown))

    def follow(self, url: QUrl) -> None:
        if url.scheme() in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)
            return
        name = url.path().removesuffix(".md")
        if name:
            self.show_topic(name, url.fragment())


class HelpPanel(QDockWidget):
    """The main window's help panel, docked on the right; F1 fills it with the page of the current screen."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Help", parent)
        self.setObjectName("helpPanel")
        self.setAccessibleName("Help panel")
        self.browser = HelpBrowser()
        self.browser.document().setDocumentMargin(12)
        self.setWidget(self.browser)
        self.setMinimumWidth(300)
        self.hide()

    def show_topic(self, topic: str) -> None:
        self.browser.show_topic(topic)
        self.setWindowTitle(f"Help: {self.browser.documentTitle()}")
        self.show()
        self.raise_()


class HelpDialog(QDialog):
    """A help page in its own small window, for screens that are dialogs (export) or have no main window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(520, 480)
        layout = QVBoxLayout(self)
        self.browser = HelpBrowser()
        layout.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)

    def show_page(self, markdown: str) -> None:
        self.browser.set_page(markdown)
        self.setWindowTitle(self.browser.documentTitle())
        self.show()
        self.raise_()

    def show_topic(self, topic: str) -> None:
        self.browser.show_topic(topic)
        self.setWindowTitle(self.browser.documentTitle())
        self.show()
        self.raise_()


def help_window(near: QWidget) -> HelpPanel | HelpDialog:
    """Where help for `near` is shown: the main window's panel, else one help window per dialog (reused)."""
    window = near.window()
    panel = window.findChild(HelpPanel)
    if panel is not None:
        return panel
    dialog = window.findChild(HelpDialog, "help")
    if dialog is None:
        dialog = HelpDialog(window)
        dialog.setObjectName("help")
    return dialog


def show_help(near: QWidget, topic: str | None = None) -> HelpPanel | HelpDialog:
    """Open the page on `topic`, or on whatever screen `near`'s window shows now (F1)."""
    target = help_window(near)
    target.show_topic(topic or topic_at(near.window()))
    return target


def help_button(topic: str, subject: str) -> QToolButton:
    """The "?" beside a title: opens the page on that screen (F1 does the same from anywhere on it)."""
    button = QToolButton()
    button.setText("?")
    button.setObjectName("helpButton")
    button.setToolTip("What is on this screen, in plain words (F1)")
    button.setAccessibleName(f"Help on {subject}")
    button.clicked.connect(lambda: show_help(button, topic))
    return button
