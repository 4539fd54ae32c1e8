"""The help panel: F1 (or the "?" beside a title) shows the page on the screen in front, read from
resources/help/pages; its links lead to other pages and into the glossary."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QApplication

from studio.gui.help import HelpDialog, help_dir, page_title, show_help
from studio.wizard.state import WizardState
from studio.wizard.wizard import PAGE_CLASSES

TOPICS = ["profile", "dataset", "model", "settings", "review"]


def _title(topic: str) -> str:
    return page_title((help_dir() / "pages" / f"{topic}.md").read_text(encoding="utf-8"))


def _press_f1(qtbot, window) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_F1)


@pytest.mark.parametrize("index", range(len(PAGE_CLASSES)))
def test_f1_on_a_wizard_page_shows_that_page_s_help(make_window, qtbot, index):
    window = make_window(state=WizardState(onboarding_done=True))
    window.wizard.start()
    qtbot.waitUntil(lambda: window.wizard.ready, timeout=60_000)
    window.wizard.go_to(index)
    panel = window.help_panel
    assert not panel.isVisible()
    _press_f1(qtbot, window)
    qtbot.waitUntil(panel.isVisible)
    assert panel.browser.topic == TOPICS[index]
    assert panel.windowTitle() == f"Help: {_title(TOPICS[index])}"
    shown = panel.browser.toPlainText()
    assert _title(TOPICS[index]) in shown and len(shown) > 300  # the page itself, not a stub


def test_f1_follows_the_section_shown(make_window, qtbot):
    window = make_window(state=WizardState())  # the welcome screen
    window.wizard.start()
    qtbot.waitUntil(lambda: window.wizard.ready, timeout=60_000)
    _press_f1(qtbot, window)
    qtbot.waitUntil(window.help_panel.isVisible)
    assert window.help_panel.browser.topic == "welcome"
    window.show_section(window.ensure_dashboard())
    _press_f1(qtbot, window)
    qtbot.waitUntil(lambda: window.help_panel.browser.topic == "dashboard")
    library = window.show_runs()
    qtbot.waitUntil(lambda: not library.loader.busy, timeout=20_000)
    _press_f1(qtbot, window)
    qtbot.waitUntil(lambda: window.help_panel.browser.topic == "library")


def test_the_question_mark_beside_a_title_opens_its_page(make_window, qtbot, click):
    window = make_window()
    window.wizard.start()
    qtbot.waitUntil(lambda: window.wizard.ready, timeout=60_000)
    window.wizard.go_to(3)
    button = next(b for b in window.wizard.page.findChildren(type(window.help_button), "helpButton"))
    assert button.accessibleName() == "Help on Training settings"
    click(button)
    assert window.help_panel.isVisible() and window.help_panel.browser.topic == "settings"
    dashboard = window.ensure_dashboard()
    window.show_section(dashboard)
    click(dashboard.findChild(type(window.help_button), "helpButton"))
    assert window.help_panel.browser.topic == "dashboard"


def test_links_lead_to_other_pages_and_into_the_glossary(make_window, qtbot):
    window = make_window()
    browser = show_help(window, "welcome").browser
    browser.anchorClicked.emit(QUrl("overview.md"))
    assert browser.topic == "overview" and "Studio at a glance" in browser.toPlainText()
    browser.anchorClicked.emit(QUrl("glossary#lora"))
    assert browser.topic == "glossary" and "Low-Rank Adaptation" in browser.toPlainText()
    assert browser.verticalScrollBar().value() > 0  # scrolled down to LoRA


def test_every_help_link_leads_to_a_page_or_a_glossary_term():
    import re

    from studio.gui.glossary import glossary

    anchors = {term.anchor for term in glossary()}
    pages = {path.stem for path in (help_dir() / "pages").glob("*.md")}
    for folder in ("pages", "errors"):
        for path in (help_dir() / folder).glob("*.md"):
            for target in re.findall(r"\]\(([^)]+)\)", path.read_text(encoding="utf-8")):
                name, _, anchor = target.partition("#")
                if name == "glossary":
                    assert not anchor or anchor in anchors, (path.name, target)
                else:
                    assert name.removesuffix(".md") in pages, (path.name, target)


def test_a_dialog_gets_its_own_help_window(make_window, qtbot, tiny_run):
    window = make_window()
    dialog = window.open_export(tiny_run.id)
    help_window = show_help(dialog)
    assert isinstance(help_window, HelpDialog) and help_window.parent() is dialog
    assert help_window.browser.topic == "export"
    assert show_help(dialog) is help_window  # one help window per dialog, reused
    help_window.close()
    qtbot.mouseClick(dialog.findChild(type(window.help_button), "helpButton"), Qt.MouseButton.LeftButton)
    assert help_window.isVisible() and help_window.browser.topic == "export"


def test_each_library_view_has_its_question_mark(make_window, qtbot, click, tiny_run):
    window = make_window()
    library = window.show_runs()
    qtbot.waitUntil(lambda: tiny_run.id in library.rows and not library.loader.busy, timeout=30_000)
    for open_view, topic in ((None, "library"), (library.open_playground, "playground"),
                             (library.open_compare, "compare")):
        if open_view is not None:
            open_view([tiny_run.id])
        button = next(b for b in library.findChildren(type(window.help_button), "helpButton") if b.isVisible())
        click(button)
        assert window.help_panel.browser.topic == topic
        library.show_list()
