"""The runs library's table: what the library shows, read in one go off the GUI thread (LibrarySnapshot), a Qt
model over its rows (RunsModel), and the proxy behind the search box, the status and tag filters and the
column sorting (RunsFilter): numbers sort by value and versions part by part, so 1.10.0 comes after 1.9.0.

The model never touches the disk or the registry: `read_library` does, in the page's background task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from studio.engine.library.catalog import LibraryRow, library_rows
from studio.engine.library.disk import format_bytes
from studio.engine.library.quality import load_report
from studio.engine.runs.active import NOT_ACTIVATED_TAG, Activation, activation_history, active_ids
from studio.engine.runs.registry import Registry
from studio.gui.table_model import ColumnsModel, Index
from studio.gui.theme import colors

COLUMNS = ("Name", "Version", "Status", "Base model", "Dataset", "Date", "Best eval loss", "Size on disk",
           "Tags")
NAME, VERSION, STATUS, MODEL, DATASET, DATE, LOSS, SIZE, TAGS = range(len(COLUMNS))
STATUSES = ("completed", "running", "paused", "interrupted", "stopped", "failed", "queued")
ID_ROLE = Qt.ItemDataRole.UserRole


def short_date(iso: str) -> str:
    """2026-03-01T12:34:56 as 2026-03-01 12:34."""
    return iso[:16].replace("T", " ")


def version_key(version: str) -> tuple[int, ...]:
    """1.10.0 after 1.9.0."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


@dataclass(frozen=True)
class LibrarySnapshot:
    """Every run with what its row and its details show, as read at one moment.

    history: each model line's switches of the active version, oldest first.
    verdicts: the quality check's one-sentence verdict of each run that has one.
    """

    rows: tuple[LibraryRow, ...] = ()
    active: frozenset[str] = frozenset()
    history: Mapping[str, tuple[Activation, ...]] = field(default_factory=dict)
    verdicts: Mapping[str, str] = field(default_factory=dict)

    def by_id(self) -> dict[str, LibraryRow]:
        return {row.run.id: row for row in self.rows}

    def active_of(self, name: str) -> LibraryRow | None:
        """The active version of the model line `name`, if it has one."""
        return next((row for row in self.rows if row.run.id in self.active and row.run.name == name), None)


def read_library(registry: Registry) -> LibrarySnapshot:
    """Walks every run folder and queries the registry: call it off the GUI thread."""
    rows = tuple(library_rows(registry))
    history = {name: tuple(activation_history(registry, name)) for name in {row.run.name for row in rows}}
    verdicts = {}
    for row in rows:
        report = load_report(row.run.run_dir)
        if report is not None:
            verdicts[row.run.id] = report.verdict
    return LibrarySnapshot(rows, frozenset(active_ids(registry)), history, verdicts)


class RunsModel(ColumnsModel):
    """One row per run, in the order read; the Version column marks the active version of each line (bold)
    and a retrain that was kept but not made active (warning colour)."""

    def __init__(self) -> None:
        super().__init__(COLUMNS)
        self.snapshot = LibrarySnapshot()

    def set_snapshot(self, snapshot: LibrarySnapshot) -> None:
        self.beginResetModel()
        self.snapshot = snapshot
        self.endResetModel()

    def row_at(self, index: int) -> LibraryRow:
        return self.snapshot.rows[index]

    def row_count(self) -> int:
        return len(self.snapshot.rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = self.snapshot.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(row, column)
        if role == ID_ROLE:
            return row.run.id
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (LOSS, SIZE):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if column != VERSION:
            return None
        active = row.run.id in self.snapshot.active
        if role == Qt.ItemDataRole.FontRole and active:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and not active and NOT_ACTIVATED_TAG in row.tags:
            return QBrush(QColor(colors().warn))
        if role == Qt.ItemDataRole.ToolTipRole:
            if active:
                return f"The active version of {row.run.name}: export and the playground start from it."
            if NOT_ACTIVATED_TAG in row.tags:
                return ("An automatic retrain that was kept but not made active: its held-out loss was worse "
                        "than the active version's. Compare them, or make it active by hand.")
        return None

    def text(self, row: LibraryRow, column: int) -> str:
        run = row.run
        if column == VERSION:
            if run.id in self.snapshot.active:
                return f"{run.version}  ★ active"
            if NOT_ACTIVATED_TAG in row.tags:
                return f"{run.version}  not made active"
            return run.version
        if column == LOSS:
            return "–" if row.best_eval_loss is None else f"{row.best_eval_loss:.4f}"
        cells = {NAME: run.name, STATUS: run.status, MODEL: row.model_name, DATASET: row.dataset_name,
                 DATE: short_date(run.created_at), SIZE: format_bytes(row.size_bytes), TAGS: ", ".join(row.tags)}
        return cells[column]

    def sort_key(self, index: int, column: int) -> tuple[int, ...] | float | int | str:
        """What a column sorts by: versions part by part, dates, losses and sizes by value, the rest by text."""
        row = self.snapshot.rows[index]
        if column == VERSION:
            return version_key(row.run.version)
        if column == DATE:
            return row.run.created_at
        if column == LOSS:
            return row.best_eval_loss if row.best_eval_loss is not None else float("inf")
        if column == SIZE:
            return row.size_bytes
        return self.text(row, column).lower()


class RunsFilter(QSortFilterProxyModel):
    """The rows that match the search words, the status and the tag chosen, in the order of the column sorted."""

    def __init__(self, source: RunsModel) -> None:
        super().__init__()
        self.source = source
        self.text, self.status, self.tag = "", "", ""
        self.setSourceModel(source)

    def set_filter(self, text: str = "", status: str = "", tag: str = "") -> None:
        self.beginFilterChange()
        self.text, self.status, self.tag = text, status, tag
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:  # noqa: N802 - Qt override
        return self.source.row_at(source_row).matches(self.text, self.status, self.tag)

    def lessThan(self, left: Index, right: Index) -> bool:  # noqa: N802 - Qt override
        column = left.column()
        mine, theirs = self.source.sort_key(left.row(), column), self.source.sort_key(right.row(), column)
        return bool(mine < theirs)  # type: ignore[operator]  # one column's keys share a type
