"""The details of the runs selected in the library: the run's facts, its quality verdict and the active version
of its line with the last switches, its lineage timeline, its tags and its notes, with fields to add a tag
(or remove one, with a leading -) and a note. It only shows a LibrarySnapshot and asks for changes by signal;
the page writes them to the registry in the background.

Signals:
    tagAdded(str, str): run id and the tag to add.
    tagRemoved(str, str): run id and the tag to remove.
    noteAdded(str, str): run id and the note's text.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.library.catalog import LibraryRow
from studio.engine.library.disk import format_bytes
from studio.engine.runs.active import NOT_ACTIVATED_TAG
from studio.engine.runs.lineage import LineageNode, lineage_forest
from studio.gui.widgets import wrapped_label
from studio.library.runs_table import LibrarySnapshot, short_date

TREE_WORDS = {"new": "first run", "continued": "continued training", "branched": "new data or model",
              "rerun": "re-run, other settings"}
ID_ROLE = Qt.ItemDataRole.UserRole
SWITCHES_SHOWN = 5


def activation_lines(snapshot: LibrarySnapshot, run_id: str) -> list[str]:
    """Which version of the line is active, and the last switches (newest first) with their reasons."""
    rows = snapshot.by_id()
    name = rows[run_id].run.name
    if run_id in snapshot.active:
        lines = ["Active version: this one ★ (export and the playground start from it)"]
    else:
        active = snapshot.active_of(name)
        lines = [f"Active version of {name}: {active.run.version if active else 'none yet'}"]
        if NOT_ACTIVATED_TAG in rows[run_id].tags:
            lines.append("Not made active: an automatic retrain that did worse than the active version "
                         "(its notes say by how much).")
    history = snapshot.history.get(name, ())
    if history:
        lines.append("Switches of the active version:")
        for switch in reversed(history[-SWITCHES_SHOWN:]):
            row = rows.get(switch.run_id or "")
            version = row.run.version if row is not None else "a deleted run"
            lines.append(f"  {short_date(switch.at)} → {version}: {switch.reason}")
    return lines


class RunDetails(QWidget):
    tagAdded = Signal(str, str)  # noqa: N815 - Qt signal naming
    tagRemoved = Signal(str, str)  # noqa: N815
    noteAdded = Signal(str, str)  # noqa: N815

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_id: str | None = None  # the run shown, when exactly one is selected
        side = QVBoxLayout(self)
        side.setContentsMargins(6, 0, 0, 0)
        self.title = QLabel("Select a run")
        self.title.setObjectName("sectionTitle")
        self.body = wrapped_label(selectable=True)
        side.addWidget(self.title)
        side.addWidget(self.body)
        side.addWidget(QLabel("<b>Lineage</b>"))
        self.lineage = QTreeWidget()
        self.lineage.setHeaderLabels(["Run", "How it came about", "Date"])
        self.lineage.setAccessibleName("Lineage timeline")
        self.lineage.setRootIsDecorated(True)
        side.addWidget(self.lineage, 1)
        tags = QHBoxLayout()
        self.tags_label = wrapped_label("")
        self.tag_edit = QLineEdit()
        self.tag_edit.setPlaceholderText("Add a tag (prefix with - to remove)")
        self.tag_edit.setAccessibleName("Tag")
        self.tag_edit.returnPressed.connect(self._edit_tag)
        tags.addWidget(QLabel("<b>Tags</b>"))
        tags.addWidget(self.tags_label, 1)
        side.addLayout(tags)
        side.addWidget(self.tag_edit)
        side.addWidget(QLabel("<b>Notes</b>"))
        self.notes = QListWidget()
        self.notes.setAccessibleName("Notes")
        side.addWidget(self.notes, 1)
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("Write a note and press Enter")
        self.note_edit.setAccessibleName("New note")
        self.note_edit.returnPressed.connect(self._add_note)
        side.addWidget(self.note_edit)

    def show_selection(self, snapshot: LibrarySnapshot, run_ids: list[str]) -> None:
        """The one run selected in full; for none or several, a line on what a selection offers."""
        rows = snapshot.by_id()
        shown = [rid for rid in run_ids if rid in rows]
        self.run_id = shown[0] if len(shown) == 1 else None
        if self.run_id is None:
            self.title.setText("Select a run" if not shown else f"{len(shown)} runs selected")
            self.body.setText("Select two to five runs to compare them." if len(shown) > 1 else "")
            self.lineage.clear()
            self.tags_label.setText("")
            self.notes.clear()
            return
        row = rows[self.run_id]
        run = row.run
        self.title.setText(f"{run.name} {run.version} · {run.status}")
        self.body.setText("\n".join(self._fact_lines(snapshot, row)))
        self.tags_label.setText(", ".join(row.tags) or "–")
        self.notes.clear()
        self.notes.addItems(list(row.notes))
        self._fill_lineage(snapshot, run.id)

    def set_busy(self, busy: bool) -> None:
        """While a change is being written, the fields keep their text (and focus) but take no new one."""
        self.tag_edit.setReadOnly(busy)
        self.note_edit.setReadOnly(busy)

    @staticmethod
    def _fact_lines(snapshot: LibrarySnapshot, row: LibraryRow) -> list[str]:
        run = row.run
        lines = [f"Id: {run.id}", f"Base model: {run.base_model}", f"Dataset: {run.dataset or '–'}",
                 f"Created: {run.created_at}", f"Size on disk: {format_bytes(row.size_bytes)}"]
        metrics = run.metrics or {}
        if metrics.get("steps") is not None:
            lines.append(f"Steps: {metrics['steps']}, wall time {metrics.get('wall_s', '–')} s")
        verdict = snapshot.verdicts.get(run.id)
        if verdict is not None:
            lines.append(f"Quality check: {verdict}")
        return lines + activation_lines(snapshot, run.id)

    def _fill_lineage(self, snapshot: LibrarySnapshot, run_id: str) -> None:
        """The selected run's whole family, oldest first; each child under the run it came from."""
        self.lineage.clear()
        bold = QFont()
        bold.setBold(True)

        def contains(node: LineageNode) -> bool:
            return node.run.id == run_id or any(contains(child) for child in node.children)

        def add(node: LineageNode, parent: QTreeWidget | QTreeWidgetItem) -> None:
            run = node.run
            how = TREE_WORDS[node.relation] if run.parent_id else TREE_WORDS["new"]
            item = QTreeWidgetItem(parent, [f"{run.name} {run.version}", how, short_date(run.created_at)])
            item.setData(0, ID_ROLE, run.id)
            if run.id == run_id:
                for column in range(3):
                    item.setFont(column, bold)
            for child in node.children:
                add(child, item)
            item.setExpanded(True)

        for root in lineage_forest([row.run for row in snapshot.rows]):
            if contains(root):
                add(root, self.lineage)
        for column in range(3):
            self.lineage.resizeColumnToContents(column)

    def _edit_tag(self) -> None:
        text = self.tag_edit.text().strip()
        if self.run_id is None or self.tag_edit.isReadOnly() or not text.lstrip("-").strip():
            return
        if text.startswith("-"):
            self.tagRemoved.emit(self.run_id, text[1:].strip())
        else:
            self.tagAdded.emit(self.run_id, text)

    def _add_note(self) -> None:
        text = self.note_edit.text().strip()
        if self.run_id is not None and not self.note_edit.isReadOnly() and text:
            self.noteAdded.emit(self.run_id, text)
