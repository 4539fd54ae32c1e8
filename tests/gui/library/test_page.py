"""The library page driven as a person would: search, filter, tag, note, lineage, actions, compare, delete."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication

from studio.library.library_page import COLUMNS


@pytest.fixture
def page(open_library_page, library):
    return open_library_page(library.registry)


def _cell(page, run_id, column):
    for row in range(page.table.rowCount()):
        if page.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == run_id:
            return page.table.item(row, COLUMNS.index(column)).text()
    raise AssertionError(run_id)


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
    with qtbot.waitSignal(page.compareRequested) as opened:
        qtbot.mouseClick(page.compare_button, Qt.MouseButton.LeftButton)
    assert sorted(opened.args[0]) == sorted([library.parent.id, library.child.id])
    view = page.compare_view
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
    row = next(r for r in range(page.table.rowCount())
               if page.table.item(r, 0).data(Qt.ItemDataRole.UserRole) == library.child.id)
    pos = page.table.visualItemRect(page.table.item(row, 0)).center()
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
