"""The runs library without a mouse: Tab reaches every control with a name, the arrow keys choose runs,
Shift extends the choice, Space presses Compare, the menu key opens a run's actions, typing searches."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication

from tests.gui.keyboard import focus_chain, names, tab_to


def test_every_control_tab_reaches_has_a_name(open_library_page, library, qtbot):
    page = open_library_page(library.registry)
    chain = focus_chain(qtbot, page)
    announced = names(chain)
    assert all(announced), [type(widget).__name__ for widget, name in zip(chain, announced, strict=True) if not name]
    assert {"Search runs", "Runs"} <= set(announced)


def test_runs_are_chosen_compared_and_acted_on_with_keys(open_library_page, library, qtbot):
    page = open_library_page(library.registry)
    tab_to(qtbot, page, page.table)
    qtbot.keyClick(page.table, Qt.Key.Key_Down)
    second = page.selected_ids()
    assert len(second) == 1 and page.details_title.text().startswith(page.rows[second[0]].run.name)
    qtbot.keyClick(page.table, Qt.Key.Key_Up)
    first = page.selected_ids()
    assert len(first) == 1 and first != second

    qtbot.keyClick(page.table, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert sorted(page.selected_ids()) == sorted(first + second)
    tab_to(qtbot, page, page.compare_button)
    with qtbot.waitSignal(page.compareRequested) as compared:
        qtbot.keyClick(page.compare_button, Qt.Key.Key_Space)
    assert sorted(compared.args[0]) == sorted(first + second)
    page.show_list()

    tab_to(qtbot, page, page.table)
    current = page.table.visualRect(page.table.currentIndex()).center()
    viewport = page.table.viewport()
    # What the window system sends for the menu key (or Shift+F10): a keyboard context-menu event at the
    # current row.
    QApplication.sendEvent(viewport, QContextMenuEvent(QContextMenuEvent.Reason.Keyboard, current,
                                                       viewport.mapToGlobal(current)))
    qtbot.waitUntil(lambda: page.context_menu is not None and page.context_menu.isVisible(), timeout=5000)
    assert "Export…" in [action.text() for action in page.context_menu.actions()]
    qtbot.keyClick(page.context_menu, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not page.context_menu.isVisible(), timeout=5000)

    tab_to(qtbot, page, page.search)
    qtbot.keyClicks(page.search, library.child.id)
    qtbot.waitUntil(lambda: page.visible_ids() == [library.child.id], timeout=5000)
