"""Error dialogs with "Get Help": every error Studio shows in a window goes through `show_error`.

The button opens an offline page on that kind of error (what happened, why, what to do), read from
resources/help/errors/<page>.md; resources/help/errors/index.yaml maps error codes to pages with
wildcards ("download_*"), and an unknown code gets the generic page. The page starts with the error as it
happened this time, so the dialog and the page tell one story.
"""

from __future__ import annotations

import fnmatch
from functools import cache
from pathlib import Path

import yaml
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from studio.engine.errors import StudioError
from studio.gui.help import HelpDialog, help_dir

GENERIC_PAGE = "generic"
GET_HELP = "Get Help"


def errors_dir() -> Path:
    return help_dir() / "errors"


@cache
def _index() -> tuple[tuple[str, tuple[str, ...]], ...]:
    data = yaml.safe_load((errors_dir() / "index.yaml").read_text(encoding="utf-8"))
    return tuple((str(page), tuple(map(str, codes))) for page, codes in data.items())


def listed_page(code: str) -> str | None:
    """The page the index names for this code (the first page whose patterns match it), if any."""
    for page, patterns in _index():
        if any(fnmatch.fnmatchcase(code, pattern) for pattern in patterns):
            return page
    return None


def error_page(code: str) -> str:
    """The page that explains errors with this code; the generic page for a code the index does not name."""
    return listed_page(code) or GENERIC_PAGE


def as_error(error: object) -> StudioError:
    """A StudioError as it is, anything else (an exception, a message) as a generic one."""
    return error if isinstance(error, StudioError) else StudioError(what=str(error), code="internal_error")


def error_help_markdown(error: object) -> str:
    """The error's page, with this occurrence (its message and reason) under the page's title."""
    failure = as_error(error)
    text = (errors_dir() / f"{error_page(failure.code)}.md").read_text(encoding="utf-8")
    title, _, rest = text.partition("\n")
    occurrence = [f"> **This time:** {failure.what}"]
    if failure.why:
        occurrence.append(f">\n> {failure.why}")
    return "\n".join([title, "", *occurrence, "", rest.lstrip("\n")])


def open_error_help(error: object, near: QWidget) -> HelpDialog:
    """The error's help page in a window of its own beside `near` (no network: it ships with Studio)."""
    dialog = HelpDialog(near.window())
    dialog.setObjectName("errorHelp")
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.browser.topic = error_page(as_error(error).code)
    dialog.show_page(error_help_markdown(error))
    return dialog


def show_error(parent: QWidget, title: str, error: object) -> QMessageBox:
    """The one way Studio shows an error in a dialog: its message, a Get Help button and OK.

    Window-modal and not blocking (`open`), so the window behind keeps drawing; Get Help leaves the message
    open beside its page.
    """
    failure = as_error(error)
    box = QMessageBox(QMessageBox.Icon.Warning, title, failure.render(), QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setObjectName("errorDialog")
    helper = box.addButton(GET_HELP, QMessageBox.ButtonRole.HelpRole)
    helper.setToolTip("What this error means, why it happens and what to do, on a page that works offline")
    helper.setAccessibleName("Get help on this error")
    helper.clicked.disconnect()  # a button's default click closes the box; the message should stay
    helper.clicked.connect(lambda: open_error_help(failure, box))
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.open()
    return box
