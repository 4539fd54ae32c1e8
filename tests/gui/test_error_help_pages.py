"""Get Help on errors: every error dialog and every in-page error has the button; it opens the offline page
on that kind of error (what happened, why, what to do), with this error's own message on top; every error
code Studio raises has its page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from studio.engine.errors import StudioError
from studio.gui.error_help import GENERIC_PAGE, error_page, errors_dir, listed_page, show_error
from studio.gui.help import HelpDialog
from studio.gui.widgets import Banner

ROOT = Path(__file__).resolve().parents[2]


def _codes_in_studio() -> set[str]:
    codes = set()
    for path in (ROOT / "studio").rglob("*.py"):
        codes |= set(re.findall(r'code="([a-z0-9_]+)"', path.read_text(encoding="utf-8")))
    return codes


def _get_help(qtbot, box: QMessageBox) -> HelpDialog:
    button = next(b for b in box.buttons() if b.text() == "Get Help")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialogs = [d for d in box.findChildren(HelpDialog) if d.isVisible()]
    assert len(dialogs) == 1
    return dialogs[0]


def _error_box(window) -> QMessageBox:
    boxes = [b for b in window.findChildren(QMessageBox, "errorDialog") if b.isVisible()]
    assert len(boxes) == 1
    return boxes[0]


def test_get_help_on_an_error_dialog_opens_the_page_on_that_error(make_window, qtbot):
    window = make_window()
    window.continue_run("no-such-run")  # the library asks to continue a run that has gone
    box = _error_box(window)
    assert box.windowTitle() == "Training could not continue"
    assert "no-such-run" in box.text()
    page = _get_help(qtbot, box)
    assert page.browser.topic == "training"
    shown = page.browser.toPlainText()
    assert "This time:" in shown and "no-such-run" in shown  # this error, then what it means in general
    for section in ("What happened", "Why", "What to do"):
        assert section in shown
    assert box.isVisible()  # the message stays beside its page
    box.close()


def test_every_error_code_studio_raises_has_its_page():
    codes = _codes_in_studio()
    assert len(codes) > 50  # the scan found the codes
    unplaced = sorted(code for code in codes if listed_page(code) is None)
    assert unplaced == [], f"give these error codes a page in resources/help/errors/index.yaml: {unplaced}"
    generic = [code for code in codes if error_page(code) == GENERIC_PAGE]
    assert len(generic) < 5, generic  # the generic page is for the truly general failures only
    assert error_page("something_new") == GENERIC_PAGE


def test_every_error_page_says_what_happened_why_and_what_to_do():
    pages = sorted(errors_dir().glob("*.md"))
    assert len(pages) > 5
    for path in pages:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# "), path.name
        headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
        assert headings == ["What happened", "Why", "What to do"], path.name
        steps = re.findall(r"^\d\. ", text.split("## What to do", 1)[1], re.MULTILINE)
        assert len(steps) >= 2, path.name  # concrete actions, not one vague line


@pytest.mark.parametrize(("code", "page"), [("out_of_memory", "memory"), ("download_needs_token", "model"),
                                            ("gguf_conversion_failed", "export"), ("dataset_empty", "dataset")])
def test_an_error_dialog_shows_the_page_of_its_kind(make_window, qtbot, code, page):
    window = make_window()
    box = show_error(window, "Studio", StudioError(what="It failed.", why="Because.", code=code))
    assert box.text().startswith("It failed.")
    assert _get_help(qtbot, box).browser.topic == page
    box.close()


def test_an_unknown_error_gets_the_generic_page(make_window, qtbot):
    window = make_window()
    box = show_error(window, "Studio", RuntimeError("the disk said no"))
    help_page = _get_help(qtbot, box)
    assert help_page.browser.topic == GENERIC_PAGE and "the disk said no" in help_page.browser.toPlainText()
    box.close()


def test_an_error_shown_in_a_page_has_get_help_too(qtbot, click):
    banner = Banner()
    qtbot.addWidget(banner)
    banner.show()
    banner.show_message("info", "Checking…")
    assert not banner.get_help.isVisible()  # only errors have it
    banner.show_error(StudioError(what="The file is empty.", code="dataset_empty"))
    assert banner.get_help.isVisible()
    click(banner.get_help)
    dialog = banner.window().findChild(HelpDialog, "errorHelp")
    assert dialog is not None and dialog.browser.topic == "dataset"
    assert "The file is empty." in dialog.browser.toPlainText()
    dialog.close()
    banner.show_message("ok", "Fixed.")
    assert not banner.get_help.isVisible()


def test_no_error_dialog_bypasses_the_one_with_get_help():
    """Every warning or critical box in the GUI goes through show_error (questions are not errors)."""
    offenders = []
    for folder in ("gui", "wizard", "monitor", "library", "exporting"):
        for path in (ROOT / "studio" / folder).rglob("*.py"):
            if re.search(r"QMessageBox\.(warning|critical)\(", path.read_text(encoding="utf-8")):
                offenders.append(path.name)
    app = (ROOT / "studio" / "app.py").read_text(encoding="utf-8")
    assert offenders == [] and "QMessageBox.warning(" not in app
