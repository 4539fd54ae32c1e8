"""The active version in the library: marked in the Version column, switched with one click (recorded), retrains
that lost their comparison marked, and Export / Playground starting from it when a model line is meant."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from studio.engine.runs.active import NOT_ACTIVATED_TAG, activate, active_run
from studio.library.library_page import COLUMNS, LibraryPage


@pytest.fixture
def page(open_library_page, library):
    activate(library.registry, library.parent.id, reason="the test starts here")  # (unless it was already)
    return open_library_page(library.registry)


def version_cell(page: LibraryPage, run_id: str) -> str:
    model = page.table.model()
    for row in range(model.rowCount()):
        if model.index(row, 0).data(Qt.ItemDataRole.UserRole) == run_id:
            return model.index(row, COLUMNS.index("Version")).data()
    raise AssertionError(run_id)


def test_make_active_moves_the_marker_and_records_the_switch(page, library, qtbot, click):
    assert version_cell(page, library.parent.id) == "1.0.0  ★ active"
    assert version_cell(page, library.child.id) == "1.1.0"
    page.select([library.parent.id])
    assert not page.activate_button.isEnabled()  # already the active one
    assert "Active version: this one" in page.details_body.text()

    page.select([library.child.id])
    assert "Active version of pip: 1.0.0" in page.details_body.text()
    with qtbot.waitSignal(page.refreshed, timeout=20000):
        click(page.activate_button)
    assert active_run(library.registry, "pip").id == library.child.id
    assert version_cell(page, library.child.id) == "1.1.0  ★ active"
    assert version_cell(page, library.parent.id) == "1.0.0"
    assert "pip 1.1.0 is now the active version (it was 1.0.0)" in page.banner.text()
    details = page.details_body.text()
    assert "Active version: this one" in details
    assert details.index("→ 1.1.0: chosen by you") < details.index("→ 1.0.0: ")  # the newest switch first
    assert not page.activate_button.isEnabled()


def test_a_retrain_that_was_not_made_active_is_marked(page, library, qtbot):
    library.registry.add_tag(library.child.id, NOT_ACTIVATED_TAG)
    with qtbot.waitSignal(page.refreshed, timeout=20000):
        page.refresh()
    assert version_cell(page, library.child.id) == "1.1.0  not made active"
    page.select([library.child.id])
    assert "Not made active: an automatic retrain" in page.details_body.text()


def test_export_and_playground_start_from_the_active_version_of_a_line(page, library, qtbot, click):
    page.select([library.parent.id, library.child.id])  # two versions of one model line
    assert page.export_button.isEnabled()
    assert "Export and Playground use pip 1.0.0, the active version" in page.hint.text()
    with qtbot.waitSignal(page.exportRequested) as exported:
        click(page.export_button)
    assert exported.args == [library.parent.id]

    activate(library.registry, library.child.id)
    with qtbot.waitSignal(page.refreshed, timeout=20000):
        page.refresh()
    page.table.clearSelection()  # nothing selected, and the library holds one model line
    with qtbot.waitSignal(page.playgroundRequested) as opened:
        click(page.playground_button)
    assert opened.args == [[library.child.id]]
    assert page.stack.currentWidget() is page.playground_view

    page.show_list()
    page.select([library.parent.id])  # one run chosen: exactly that one, active or not
    with qtbot.waitSignal(page.exportRequested) as exported:
        click(page.export_button)
    assert exported.args == [library.parent.id]
