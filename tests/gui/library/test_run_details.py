"""The details panel of the library: the selected run's facts, quality verdict, active version and its switches,
lineage, tags and notes; and the tag and note fields, which ask the page for a change."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import Qt

from studio.engine.runs.active import NOT_ACTIVATED_TAG, Activation
from studio.library.run_details import RunDetails
from studio.library.runs_table import LibrarySnapshot
from tests.gui.library.test_runs_table import make_row


@pytest.fixture
def snapshot() -> LibrarySnapshot:
    parent = make_row("p1", "1.0.0", created="2026-01-01T10:00:00", size=3 * 1024 * 1024, tags=("favourite",),
                      notes=("first try",))
    child = make_row("c1", "1.1.0", created="2026-01-02T10:00:00", tags=(NOT_ACTIVATED_TAG,))
    child = dataclasses.replace(child, run=dataclasses.replace(child.run, parent_id="p1", metrics={"steps": 3}))
    other = make_row("o1", "1.0.0", name="owl", created="2026-01-03T10:00:00")
    history = {"pip": (Activation("pip", "p1", None, "2026-01-01T11:00:00", "the first finished version"),
                       Activation("pip", "gone", "p1", "2026-01-01T12:00:00", "chosen by you"),
                       Activation("pip", "p1", "gone", "2026-01-01T13:00:00", "chosen by you"))}
    return LibrarySnapshot((parent, child, other), frozenset({"p1"}), history, {"p1": "Better than the base."})


@pytest.fixture
def details(qtbot) -> RunDetails:
    panel = RunDetails()
    qtbot.addWidget(panel)
    panel.show()
    return panel


def test_shows_the_one_selected_run(details, snapshot):
    details.show_selection(snapshot, ["p1"])
    assert details.title.text() == "pip 1.0.0 · completed"
    body = details.body.text()
    assert "Id: p1" in body and "Base model: tiny-llama-test" in body and "Size on disk: 3.0 MB" in body
    assert "Quality check: Better than the base." in body
    assert "Active version: this one ★" in body
    assert body.index("13:00 → 1.0.0") < body.index("12:00 → a deleted run") < body.index("11:00 → 1.0.0")
    assert details.tags_label.text() == "favourite"
    assert [details.notes.item(i).text() for i in range(details.notes.count())] == ["first try"]
    root = details.lineage.topLevelItem(0)
    assert details.lineage.topLevelItemCount() == 1  # owl is another family
    assert (root.text(0), root.text(1)) == ("pip 1.0.0", "first run")
    assert (root.child(0).text(0), root.child(0).text(1)) == ("pip 1.1.0", "continued training")
    assert root.font(0).bold() and not root.child(0).font(0).bold()


def test_a_retrain_not_made_active_says_so(details, snapshot):
    details.show_selection(snapshot, ["c1"])
    body = details.body.text()
    assert "Active version of pip: 1.0.0" in body and "Not made active: an automatic retrain" in body
    assert "Steps: 3" in body and "Quality check" not in body
    assert details.tags_label.text() == NOT_ACTIVATED_TAG and details.notes.count() == 0
    assert details.lineage.topLevelItem(0).child(0).font(0).bold()
    details.show_selection(snapshot, ["o1"])
    assert "Active version of owl: none yet" in details.body.text()
    assert "Switches" not in details.body.text() and details.tags_label.text() == "–"


def test_none_or_several_selected(details, snapshot):
    details.show_selection(snapshot, ["p1"])
    details.show_selection(snapshot, ["p1", "c1"])
    assert details.title.text() == "2 runs selected"
    assert details.body.text() == "Select two to five runs to compare them."
    assert details.lineage.topLevelItemCount() == 0 and details.notes.count() == 0
    details.show_selection(snapshot, [])
    assert details.title.text() == "Select a run" and details.body.text() == ""


def test_tag_and_note_fields_ask_for_changes(details, snapshot, qtbot):
    details.show_selection(snapshot, ["p1"])
    qtbot.keyClicks(details.tag_edit, "keeper")
    with qtbot.waitSignal(details.tagAdded) as added:
        qtbot.keyClick(details.tag_edit, Qt.Key.Key_Return)
    assert added.args == ["p1", "keeper"]
    details.tag_edit.clear()
    qtbot.keyClicks(details.tag_edit, "- favourite")
    with qtbot.waitSignal(details.tagRemoved) as removed:
        qtbot.keyClick(details.tag_edit, Qt.Key.Key_Return)
    assert removed.args == ["p1", "favourite"]
    qtbot.keyClicks(details.note_edit, "  steadier  ")
    with qtbot.waitSignal(details.noteAdded) as noted:
        qtbot.keyClick(details.note_edit, Qt.Key.Key_Return)
    assert noted.args == ["p1", "steadier"]

    details.set_busy(True)  # a change is being written: Enter asks for nothing more
    with qtbot.assertNotEmitted(details.noteAdded):
        qtbot.keyClick(details.note_edit, Qt.Key.Key_Return)
    details.set_busy(False)
    details.show_selection(snapshot, ["p1", "c1"])  # no one run: nothing to tag
    with qtbot.assertNotEmitted(details.noteAdded):
        qtbot.keyClick(details.note_edit, Qt.Key.Key_Return)
