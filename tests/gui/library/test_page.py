"""The library page driven as a person would: search, filter, tag, note, lineage, actions, compare, delete."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication

from studio.library.library_page import COLUMNS


@pytest.fixture
def page(open_library_page, library):
    return open_library_page(library.registry)


def _row(page, run_id):
    """The row of the table that shows this run, as the table is sorted and filtered now."""
    model = page.table.model()
    for row in range(model.rowCount()):
        if model.index(row, 0).data(Qt.ItemDataRole.UserRole) == run_id:
            return row
    raise AssertionError(run_id)


def _cell(page, run_id, column):
    model = page.table.model()
    return model.index(_row(page, run_id), COLUMNS.index(column)).data()


def test_lists_runs_with_their_facts(page, library):
    assert sorted(page.visible_ids()) == sorted([library.parent.id, library.child.id])
    assert _cell(page, library.child.id, "Version").split()[0] == "1.1.0"
    assert sum("★ active" in _cell(page, run.id, "Version") for run in (library.parent, library.child)) == 1
    assert _cell(page, library.parent.id, "Status") == "completed"
    assert _cell(page, library.parent.id, "Base model") == "tiny-llama-test"
    assert _cell(page, library.parent.id, "Dataset") == "qa.jsonl"
    assert float(_cell(page, library.parent.id, "Best eval loss")) > 0
    assert _cell(page, library.parent.id, "Size on disk").endswith("MB")


def test_search_filter_tags_and_notes(page, library, qtbot):
    page.select([library.parent.id])
    qtbot.keyClicks(page.tag_edit, "favourite")
    with qtbot.waitSignal(page.refreshed, timeout=20000):
        qtbot.keyClick(page.tag_edit, Qt.Key.Key_Return)
    assert library.registry.tags(library.parent.id) == ["favourite"]
    assert _cell(page, library.parent.id, "Tags") == "favourite"
    page.tag_filter.setCurrentIndex(page.tag_filter.findData("favourite"))
    assert page.visible_ids() == [library.parent.id]
    page.tag_filter.setCurrentIndex(0)

    page.select([library.child.id])
    qtbot.keyClicks(page.note_edit, "lower rate, steadier")
    with qtbot.waitSignal(page.refreshed, timeout=20000):
        qtbot.keyClick(page.note_edit, Qt.Key.Key_Return)
    assert page.notes.item(0).text() == "lower rate, steadier"
    qtbot.keyClicks(page.search, "steadier")
    assert page.visible_ids() == [library.child.id]
    page.search.clear()
    page.status_filter.setCurrentIndex(page.status_filter.findData("failed"))
    assert page.visible_ids() == []


def test_lineage_and_actions_follow_the_selection(page, library, qtbot):
    page.select([library.child.id])
    root = page.lineage.topLevelItem(0)
    assert root.text(0) == "pip 1.0.0" and root.child(0).text(0) == "pip 1.1.0"
    assert root.child(0).text(1) == "continued training"
    assert page.continue_button.isEnabled() and page.export_button.isEnabled()
    assert not page.resume_button.isEnabled() and not page.compare_button.isEnabled()
    with qtbot.waitSignal(page.continueRequested) as continued:
        qtbot.mouseClick(page.continue_button, Qt.MouseButton.LeftButton)
    assert continued.args == [library.child.id]

    library.registry.set_status(library.parent.id, "interrupted")
    with qtbot.waitSignal(page.refreshed, timeout=20000):
        page.refresh()
    page.select([library.parent.id])
    # An interrupted run resumes, and what it learned up to its last checkpoint can be used meanwhile.
    assert page.resume_button.isEnabled() and page.continue_button.isEnabled() and page.export_button.isEnabled()
    assert "last saved checkpoint" in page.hint.text() and not page.hint.isHidden()
    with qtbot.waitSignal(page.resumeRequested) as resumed:
        qtbot.mouseClick(page.resume_button, Qt.MouseButton.LeftButton)
    assert resumed.args == [library.parent.id]

    library.registry.set_status(library.parent.id, "failed")
    with qtbot.waitSignal(page.refreshed, timeout=20000):
        page.refresh()
    page.select([library.parent.id])
    assert not page.export_button.isEnabled() and not page.continue_button.isEnabled()


def test_compare_two_runs(page, library, qtbot):
    page.select([library.parent.id, library.child.id])
    assert page.compare_button.isEnabled()
    view = page.compare_view
    with qtbot.waitSignal(view.loaded, timeout=30000), qtbot.waitSignal(page.compareRequested) as opened:
        qtbot.mouseClick(page.compare_button, Qt.MouseButton.LeftButton)
    assert sorted(opened.args[0]) == sorted([library.parent.id, library.child.id])
    assert page.stack.currentWidget() is view
    curves = view.plot.getPlotItem().listDataItems()
    assert len(curves) == 4  # training and held-out loss of each run
    assert all(len(item.xData) == 3 for item in curves)
    fields = [view.diff.verticalHeaderItem(i).text() for i in range(view.diff.rowCount())]
    assert fields == ["lora_r", "learning_rate"]
    labels = [view.metrics.verticalHeaderItem(i).text() for i in range(view.metrics.rowCount())]
    best_row = labels.index("Best held-out loss")
    stars = [view.metrics.item(best_row, c).text().startswith("★") for c in range(2)]
    assert stars.count(True) == 1
    with qtbot.waitSignal(view.loaded, timeout=30000):  # the curves are read again, in the background
        view.axis.setCurrentIndex(1)  # by tokens seen
    assert view.plot.getPlotItem().getAxis("bottom").labelText == "tokens seen"
    assert max(view.plot.getPlotItem().listDataItems()[0].xData) > 3
    view.source.setCurrentIndex(1)
    with qtbot.waitSignal(page.newRunRequested) as new_run:
        qtbot.mouseClick(view.new_run_button, Qt.MouseButton.LeftButton)
    assert new_run.args[0]["learning_rate"] == view.comparison.runs[1].config["learning_rate"]
    qtbot.mouseClick(view.back_button, Qt.MouseButton.LeftButton)
    assert page.stack.currentIndex() == 0


def test_delete_asks_first_and_removes_run(page, library, qtbot):
    asked = []
    page.confirm = lambda title, text: asked.append(text) or False
    page.select([library.child.id])
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert asked and library.child.run_dir.exists()
    page.confirm = lambda title, text: True
    with qtbot.waitSignal(page.refreshed, timeout=20000), qtbot.waitSignal(page.runDeleted):
        qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert not library.child.run_dir.exists()
    assert page.visible_ids() == [library.parent.id]


def test_free_disk_space_removes_intermediate_checkpoints(page, library, qtbot):
    page.confirm = lambda title, text: "Free" in text
    with qtbot.waitSignal(page.refreshed, timeout=20000):
        qtbot.mouseClick(page.clean_button, Qt.MouseButton.LeftButton)
    names = sorted(p.name for p in (library.parent.run_dir / "checkpoints").iterdir())
    assert names == ["step-00000003"]  # held-out loss fell at every step: best and last are the same
    assert "Freed" in page.banner.title.text()


def test_right_click_on_a_run_offers_its_actions(page, library, qtbot):
    pos = page.table.visualRect(page.table.model().index(_row(page, library.child.id), 0)).center()
    viewport = page.table.viewport()
    # What the window system sends on a right-click (QTest's clicks go straight to the widget and skip it).
    QApplication.sendEvent(viewport, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos,
                                                       viewport.mapToGlobal(pos)))
    qtbot.waitUntil(lambda: page.context_menu is not None and page.context_menu.isVisible(), timeout=5000)
    assert page.selected_ids() == [library.child.id]
    entries = {action.text(): action for action in page.context_menu.actions()}
    assert {"Continue training", "Export…", "Playground", "Delete…"} <= set(entries)
    assert "Resume" not in entries  # a completed run has nothing to resume
    with qtbot.waitSignal(page.continueRequested) as continued:
        entries["Continue training"].trigger()
    assert continued.args == [library.child.id]
    page.context_menu.close()


def test_clicking_a_run_shows_its_details(page, library, qtbot):
    index = page.table.model().index(_row(page, library.child.id), 0)
    qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=page.table.visualRect(index).center())
    assert page.selected_ids() == [library.child.id]
    assert page.details_title.text() == "pip 1.1.0 · completed"
    assert f"Id: {library.child.id}" in page.details_body.text()
    assert page.lineage.topLevelItem(0).child(0).text(0) == "pip 1.1.0"


def test_a_filter_keeps_a_hidden_selection_for_when_the_run_is_shown_again(page, library, qtbot):
    page.select([library.child.id])
    qtbot.keyClicks(page.search, "1.0.0")
    assert page.visible_ids() == [library.parent.id] and page.selected_ids() == []
    assert page.details_title.text() == "Select a run"
    page.search.clear()
    assert page.selected_ids() == [library.child.id]


def test_changes_run_off_the_gui_thread_and_the_page_waits_for_them(page, library, qtbot, monkeypatch):
    """A tag, and a delete, are written by the worker thread; meanwhile the page says it is busy."""
    threads = []
    release = threading.Event()
    add_tag = library.registry.add_tag

    def slow_add_tag(run_id, tag):
        threads.append(threading.current_thread())
        release.wait(10)
        add_tag(run_id, tag)

    monkeypatch.setattr(library.registry, "add_tag", slow_add_tag)
    page.select([library.child.id])
    qtbot.keyClicks(page.tag_edit, "keeper")
    try:
        qtbot.keyClick(page.tag_edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: bool(threads), timeout=10000)
        assert page.tag_edit.isReadOnly() and page.note_edit.isReadOnly()
        assert not page.delete_button.isEnabled() and not page.clean_button.isEnabled()
        assert page.cursor().shape() == Qt.CursorShape.BusyCursor
    finally:
        with qtbot.waitSignal(page.refreshed, timeout=20000):
            release.set()
    assert threads[0] is not threading.main_thread()
    assert library.registry.tags(library.child.id) == ["keeper"] and _cell(page, library.child.id, "Tags") == "keeper"
    assert page.tag_edit.text() == "" and not page.tag_edit.isReadOnly() and page.delete_button.isEnabled()

    import studio.library.library_page as library_page

    deleted_in = []

    def delete_run(registry, run_id, *, confirm=False):
        deleted_in.append(threading.current_thread())
        return real_delete(registry, run_id, confirm=confirm)

    real_delete = library_page.delete_run
    monkeypatch.setattr(library_page, "delete_run", delete_run)
    page.confirm = lambda title, text: True
    with qtbot.waitSignal(page.refreshed, timeout=20000):
        qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert deleted_in and deleted_in[0] is not threading.main_thread()
    assert page.visible_ids() == [library.parent.id]


def test_a_change_that_fails_is_explained_and_keeps_what_was_typed(page, library, qtbot, monkeypatch):
    def locked(run_id, text):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(library.registry, "add_note", locked)
    page.select([library.parent.id])
    qtbot.keyClicks(page.note_edit, "try again later")
    with qtbot.waitSignal(page.changes.failed, timeout=20000):
        qtbot.keyClick(page.note_edit, Qt.Key.Key_Return)
    assert page.banner.title.text() == "Something went wrong while adding the note."
    assert "database is locked" in page.banner.text()
    assert page.note_edit.text() == "try again later" and not page.note_edit.isReadOnly()
