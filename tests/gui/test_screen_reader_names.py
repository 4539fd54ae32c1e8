"""Every control a person can operate has a name a screen reader announces (what Qt's accessibility layer
reports: the accessible name, else the text, else the label that names it), on every screen: the wizard's
steps, the dashboard, the library and its views, the export dialog, the tour, the error dialog with its help
page, and the shortcut list."""

from __future__ import annotations

from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QScrollBar,
    QTabBar,
    QTextEdit,
    QWidget,
)

from studio.engine.errors import StudioError
from studio.gui.error_help import open_error_help, show_error
from studio.wizard.state import WizardState
from tests.gui.every_screen import every_screen

CONTROLS = (QAbstractButton, QLineEdit, QTextEdit, QPlainTextEdit, QComboBox, QAbstractSpinBox, QAbstractSlider,
            QAbstractItemView, QTabBar)


def spoken_name(widget: QWidget) -> str:
    interface = QAccessible.queryAccessibleInterface(widget)
    return interface.text(QAccessible.Text.Name).strip() if interface is not None else ""


def nameless_controls(root: QWidget) -> list[str]:
    """Controls under `root` (shown or not yet: a hidden button appears later) that a screen reader would
    announce without a name."""
    problems = []
    for widget in [root, *root.findChildren(QWidget)]:
        if not isinstance(widget, CONTROLS) or isinstance(widget, QScrollBar | QHeaderView):
            continue
        if _inside(widget, (QAbstractSpinBox, QComboBox, QAbstractItemView, QLineEdit, QMenu)):
            continue  # a part of a named control (a spin box's editor, a combo's list, a field's clear
            # button), or of a menu (announced by its actions: pyqtgraph's chart menus)
        if widget.objectName().startswith("qt_"):
            continue  # Qt's internal parts (a scroll area's corner, a tab bar's arrows)
        if not spoken_name(widget):
            parent = widget.parentWidget()
            problems.append(f"{type(widget).__name__} {widget.objectName()!r} in {type(parent).__name__} "
                            f"{shown(widget)}")
    return problems


def tab_traps(root: QWidget) -> list[str]:
    """Lists and tables in which Tab moves from cell to cell, so a keyboard user cannot Tab past them."""
    return [f"Tab is trapped in {type(view).__name__} {view.accessibleName()!r}"
            for view in [root, *root.findChildren(QAbstractItemView)]
            if isinstance(view, QAbstractItemView) and view.tabKeyNavigation()]


def test_the_trap_check_finds_a_table_that_keeps_the_tab_key(qtbot):
    from PySide6.QtWidgets import QTableWidget

    table = QTableWidget(2, 2)
    qtbot.addWidget(table)
    assert tab_traps(table) == ["Tab is trapped in QTableWidget ''"]  # Qt's default for tables
    table.setTabKeyNavigation(False)
    assert tab_traps(table) == []


def _inside(widget: QWidget, kinds: tuple[type, ...]) -> bool:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, kinds):
            return True
        parent = parent.parentWidget()
    return False


def shown(widget: QWidget) -> str:
    for attribute in ("placeholderText", "toolTip", "currentText"):
        value = getattr(widget, attribute, None)
        if callable(value) and value():
            return f"({attribute}: {value()[:50]!r})"
    return ""


def test_every_control_on_every_screen_has_a_spoken_name(make_window, qtbot, tiny_run, builtin_model_dir):
    window = make_window(state=WizardState())
    window.resize(1280, 800)
    problems: dict[str, list[str]] = {}
    for name, root in every_screen(window, qtbot, tiny_run):
        found = nameless_controls(root) + tab_traps(root)
        if found:
            problems[name] = found
    window.start_tour()
    problems.update({"tour": nameless_controls(window.tour)} if nameless_controls(window.tour) else {})
    window.tour.end(completed=False)
    box = show_error(window, "Studio", StudioError(what="It failed.", code="disk_full"))
    page = open_error_help(StudioError(what="It failed.", code="disk_full"), box)
    for name, dialog in (("error dialog", box), ("error help", page)):
        if nameless_controls(dialog):
            problems[name] = nameless_controls(dialog)
    page.close()
    box.close()
    shortcuts = window.show_shortcuts()
    if nameless_controls(shortcuts) + tab_traps(shortcuts):
        problems["shortcuts"] = nameless_controls(shortcuts) + tab_traps(shortcuts)
    shortcuts.close()
    report = "\n".join(f"{screen}: {problem}" for screen, found in problems.items() for problem in found)
    assert problems == {}, report


def test_the_check_hears_a_nameless_control(qtbot):
    from PySide6.QtWidgets import QFormLayout, QSpinBox, QToolButton

    root = QWidget()
    qtbot.addWidget(root)
    form = QFormLayout(root)
    named_by_label = QSpinBox()
    form.addRow("Epochs:", named_by_label)
    icon_only = QToolButton()
    form.addRow(icon_only)
    assert spoken_name(named_by_label) == "Epochs:"
    assert nameless_controls(root) == ["QToolButton '' in QWidget "]
    icon_only.setAccessibleName("Open")
    assert nameless_controls(root) == []
