"""The runs library: every run with its version, status, base model, dataset, date, best held-out loss and
size on disk; search, status and tag filters; tags and notes; the lineage timeline; and the actions a run's
state allows. Compare and Playground open inside the page; the rest is asked of the main window by signal.

Signals:
    resumeRequested(str): run id of a paused, interrupted or stopped run to resume.
    continueRequested(str): run id of a completed run to continue training from (a new minor version).
    exportRequested(str): run id of a completed run to export.
    compareRequested(object): list of 2-5 run ids now shown in the comparison.
    playgroundRequested(object): list of 1-2 run ids now shown in the playground.
    newRunRequested(object): a TrainConfig dict ("New run with these settings" in the comparison).
    runDeleted(str): run id whose folder and registry row were removed.
    refreshed(): the table was reloaded.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal, SignalInstance
from PySide6.QtGui import QFont, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.library.catalog import RESUMABLE, LibraryRow, library_rows, remove_tag
from studio.engine.library.disk import format_bytes
from studio.engine.library.lineage import LineageNode, lineage_forest
from studio.engine.registry import Registry
from studio.gui.tasks import TaskRunner
from studio.gui.widgets import Banner, wrapped_label
from studio.library.compare_view import CompareView
from studio.library.playground_view import PlaygroundView

COLUMNS = ("Name", "Version", "Status", "Base model", "Dataset", "Date", "Best eval loss", "Size on disk",
           "Tags")
STATUSES = ("completed", "running", "paused", "interrupted", "stopped", "failed", "queued")
TREE_WORDS = {"new": "first run", "continued": "continued training", "branched": "new data or model",
              "rerun": "re-run, other settings"}
ID_ROLE = Qt.ItemDataRole.UserRole
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def _date(iso: str) -> str:
    return iso[:16].replace("T", " ")


class _Item(QTableWidgetItem):
    """A cell that sorts by its number (loss, bytes) rather than by its text."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if mine is not None and theirs is not None:
            return bool(mine < theirs)
        return self.text().lower() < other.text().lower()  # (QTableWidgetItem.__lt__ would call back here)


class LibraryPage(QWidget):
    resumeRequested = Signal(str)  # noqa: N815 - Qt signal naming
    continueRequested = Signal(str)  # noqa: N815
    exportRequested = Signal(str)  # noqa: N815
    compareRequested = Signal(object)  # noqa: N815
    playgroundRequested = Signal(object)  # noqa: N815
    newRunRequested = Signal(object)  # noqa: N815
    runDeleted = Signal(str)  # noqa: N815
    refreshed = Signal()

    def __init__(self, registry: Registry | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry or Registry()
        self.rows: dict[str, LibraryRow] = {}
        self._sorted_once = False
        self.confirm: Callable[[str, str], bool] = self._ask
        """Asks before anything is deleted; replaceable (tests, automation)."""
        self.loader = TaskRunner(self)
        self.loader.finished.connect(self._on_loaded)
        self.loader.failed.connect(lambda error: self.banner.show_error(error))
        self.jobs = TaskRunner(self)
        self.jobs.finished.connect(self._on_job_done)
        self.jobs.failed.connect(lambda error: self.banner.show_error(error))
        self.jobs.statusChanged.connect(lambda text: self.banner.show_message("info", text))

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.stack = QStackedWidget()
        outer.addWidget(self.stack)
        self.stack.addWidget(self._build_list())
        self.compare_view = CompareView()
        self.compare_view.backRequested.connect(self.show_list)
        self.compare_view.newRunRequested.connect(self.newRunRequested)
        self.stack.addWidget(self.compare_view)
        self.playground_view = PlaygroundView()
        self.playground_view.backRequested.connect(self.show_list)
        self.stack.addWidget(self.playground_view)
        self._update_actions()

    # ---- layout ----------------------------------------------------------------------------------------

    def _build_list(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        top = QHBoxLayout()
        title = QLabel("Runs library")
        title.setObjectName("pageTitle")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search name, model, dataset, tags, notes…")
        self.search.setAccessibleName("Search runs")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._apply_filter)
        self.status_filter = QComboBox()
        self.status_filter.setAccessibleName("Filter by status")
        self.status_filter.addItem("All statuses", "")
        for status in STATUSES:
            self.status_filter.addItem(status.capitalize(), status)
        self.status_filter.currentIndexChanged.connect(self._apply_filter)
        self.tag_filter = QComboBox()
        self.tag_filter.setAccessibleName("Filter by tag")
        self.tag_filter.addItem("All tags", "")
        self.tag_filter.currentIndexChanged.connect(self._apply_filter)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.clean_button = QPushButton("Free disk space…")
        self.clean_button.setToolTip("Remove intermediate checkpoints of completed runs; best and last stay.")
        self.clean_button.clicked.connect(self.clean_up)
        top.addWidget(title)
        top.addWidget(self.search, 1)
        top.addWidget(self.status_filter)
        top.addWidget(self.tag_filter)
        top.addWidget(self.refresh_button)
        top.addWidget(self.clean_button)
        layout.addLayout(top)
        self.banner = Banner()
        layout.addWidget(self.banner)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setAccessibleName("Runs")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.empty = wrapped_label("No runs yet. Train a model and it appears here.", name="muted")

        details = QWidget()
        side = QVBoxLayout(details)
        side.setContentsMargins(6, 0, 0, 0)
        self.details_title = QLabel("Select a run")
        self.details_title.setObjectName("sectionTitle")
        self.details_body = wrapped_label(selectable=True)
        side.addWidget(self.details_title)
        side.addWidget(self.details_body)
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

        splitter = QSplitter()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.empty)
        splitter.addWidget(left)
        splitter.addWidget(details)
        splitter.setSizes([820, 420])
        layout.addWidget(splitter, 1)

        actions = QHBoxLayout()
        self.resume_button = QPushButton("Resume")
        self.continue_button = QPushButton("Continue training")
        self.compare_button = QPushButton("Compare")
        self.playground_button = QPushButton("Playground")
        self.quality_button = QPushButton("Check quality")
        self.export_button = QPushButton("Export…")
        self.delete_button = QPushButton("Delete…")
        self.resume_button.clicked.connect(lambda: self._emit_single(self.resumeRequested))
        self.continue_button.clicked.connect(lambda: self._emit_single(self.continueRequested))
        self.export_button.clicked.connect(lambda: self._emit_single(self.exportRequested))
        self.compare_button.clicked.connect(lambda: self.open_compare(self.selected_ids()))
        self.playground_button.clicked.connect(lambda: self.open_playground(self.selected_ids()))
        self.quality_button.clicked.connect(self.check_quality)
        self.delete_button.clicked.connect(self.delete_selected)
        self.hint = wrapped_label("", name="muted")
        actions.addWidget(self.hint, 1)
        for button in (self.resume_button, self.continue_button, self.compare_button, self.playground_button,
                       self.quality_button, self.export_button, self.delete_button):
            actions.addWidget(button)
        layout.addLayout(actions)
        return page

    # ---- loading ---------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the runs in the background; `refreshed` follows."""
        registry = self.registry
        self.loader.start(lambda _state: library_rows(registry), "reading the runs library")

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        """Coming back to the library shows runs that finished meanwhile."""
        super().showEvent(event)
        self.refresh()

    def _on_loaded(self, rows: object) -> None:
        selected = set(self.selected_ids())
        self.rows = {row.run.id: row for row in rows}  # type: ignore[attr-defined]
        self.table.setSortingEnabled(False)
        self.table.clearSelection()
        self.table.setRowCount(len(self.rows))
        for index, row in enumerate(self.rows.values()):
            run = row.run
            best = row.best_eval_loss
            cells = [
                (run.name, None), (run.version, None), (run.status, None), (row.model_name, None),
                (row.dataset_name, None), (_date(run.created_at), run.created_at),
                ("–" if best is None else f"{best:.4f}", best if best is not None else float("inf")),
                (format_bytes(row.size_bytes), row.size_bytes), (", ".join(row.tags), None),
            ]
            for column, (text, key) in enumerate(cells):
                item = _Item(text)
                item.setData(ID_ROLE, run.id)
                if key is not None:
                    item.setData(SORT_ROLE, key)
                if column in (6, 7):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(index, column, item)
        self.table.setSortingEnabled(True)
        if not self._sorted_once:  # newest first until the user picks another order
            self.table.sortByColumn(COLUMNS.index("Date"), Qt.SortOrder.DescendingOrder)
            self._sorted_once = True
        tags = sorted({tag for row in self.rows.values() for tag in row.tags})
        current = self.tag_filter.currentData()
        self.tag_filter.blockSignals(True)
        self.tag_filter.clear()
        self.tag_filter.addItem("All tags", "")
        for tag in tags:
            self.tag_filter.addItem(tag, tag)
        self.tag_filter.setCurrentIndex(max(0, self.tag_filter.findData(current)))
        self.tag_filter.blockSignals(False)
        self.empty.setVisible(not self.rows)
        self._apply_filter()
        for index in range(self.table.rowCount()):
            if self._row_id(index) in selected:
                self.table.selectRow(index)
        self._on_selection()
        self.refreshed.emit()

    def _apply_filter(self) -> None:
        text, status = self.search.text(), self.status_filter.currentData()
        tag = self.tag_filter.currentData()
        for index in range(self.table.rowCount()):
            row = self.rows.get(self._row_id(index))
            self.table.setRowHidden(index, row is None or not row.matches(text, status or "", tag or ""))

    def _row_id(self, row: int) -> str:
        item = self.table.item(row, 0)
        return str(item.data(ID_ROLE)) if item is not None else ""

    def visible_ids(self) -> list[str]:
        return [self._row_id(i) for i in range(self.table.rowCount())
                if not self.table.isRowHidden(i)]

    def selected_ids(self) -> list[str]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self._row_id(row) for row in rows if not self.table.isRowHidden(row)]

    def select(self, run_ids: list[str]) -> None:
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for index in range(self.table.rowCount()):
            if self._row_id(index) in run_ids:
                self.table.selectRow(index)
        self.table.setSelectionMode(mode)

    # ---- details and actions ----------------------------------------------------------------------------

    def _on_selection(self) -> None:
        ids = self.selected_ids()
        self._update_actions()
        if len(ids) != 1:
            self.details_title.setText("Select a run" if not ids else f"{len(ids)} runs selected")
            self.details_body.setText("Select two to five runs to compare them." if len(ids) > 1 else "")
            self.lineage.clear()
            self.tags_label.setText("")
            self.notes.clear()
            return
        row = self.rows[ids[0]]
        run = row.run
        self.details_title.setText(f"{run.name} {run.version} · {run.status}")
        from studio.engine.library.quality import load_report

        lines = [f"Id: {run.id}", f"Base model: {run.base_model}", f"Dataset: {run.dataset or '–'}",
                 f"Created: {run.created_at}", f"Size on disk: {format_bytes(row.size_bytes)}"]
        metrics = run.metrics or {}
        if metrics.get("steps") is not None:
            lines.append(f"Steps: {metrics['steps']}, wall time {metrics.get('wall_s', '–')} s")
        report = load_report(run.run_dir)
        if report is not None:
            lines.append(f"Quality check: {report.verdict}")
        self.details_body.setText("\n".join(lines))
        self.tags_label.setText(", ".join(row.tags) or "–")
        self.notes.clear()
        self.notes.addItems(list(row.notes))
        self._fill_lineage(run.id)

    def _fill_lineage(self, run_id: str) -> None:
        """The selected run's whole family, oldest first; each child under the run it came from."""
        self.lineage.clear()
        bold = QFont()
        bold.setBold(True)

        def contains(node: LineageNode) -> bool:
            return node.run.id == run_id or any(contains(child) for child in node.children)

        def add(node: LineageNode, parent: QTreeWidget | QTreeWidgetItem) -> None:
            run = node.run
            how = TREE_WORDS[node.relation] if run.parent_id else TREE_WORDS["new"]
            item = QTreeWidgetItem(parent, [f"{run.name} {run.version}", how, _date(run.created_at)])
            item.setData(0, ID_ROLE, run.id)
            if run.id == run_id:
                for column in range(3):
                    item.setFont(column, bold)
            for child in node.children:
                add(child, item)
            item.setExpanded(True)

        for root in lineage_forest([row.run for row in self.rows.values()]):
            if contains(root):
                add(root, self.lineage)
        for column in range(3):
            self.lineage.resizeColumnToContents(column)

    def _update_actions(self) -> None:
        runs = [self.rows[rid].run for rid in self.selected_ids() if rid in self.rows]
        one = runs[0] if len(runs) == 1 else None
        completed = [run for run in runs if run.status == "completed"]
        self.resume_button.setEnabled(one is not None and one.status in RESUMABLE)
        self.continue_button.setEnabled(one is not None and one.status == "completed")
        self.export_button.setEnabled(one is not None and one.status == "completed")
        self.quality_button.setEnabled(one is not None and one.status == "completed" and not self.jobs.busy)
        self.compare_button.setEnabled(2 <= len(runs) <= 5)
        self.playground_button.setEnabled(1 <= len(runs) <= 2 and len(completed) == len(runs))
        self.delete_button.setEnabled(one is not None and one.status not in ("running", "paused"))
        hints = {
            0: "Select a run to see what you can do with it; select several to compare them.",
        }
        self.hint.setText(hints.get(len(runs), ""))

    def _emit_single(self, signal: SignalInstance) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            signal.emit(ids[0])

    def open_compare(self, run_ids: list[str]) -> None:
        self.compare_view.set_runs([self.rows[rid].run for rid in run_ids if rid in self.rows])
        self.stack.setCurrentWidget(self.compare_view)
        self.compareRequested.emit(list(run_ids))

    def open_playground(self, run_ids: list[str]) -> None:
        self.playground_view.set_runs([self.rows[rid].run for rid in run_ids if rid in self.rows])
        self.stack.setCurrentWidget(self.playground_view)
        self.playgroundRequested.emit(list(run_ids))

    def show_list(self) -> None:
        self.playground_view.stop()
        self.stack.setCurrentIndex(0)

    def _edit_tag(self) -> None:
        ids, text = self.selected_ids(), self.tag_edit.text().strip()
        if len(ids) != 1 or not text.lstrip("-").strip():
            return
        if text.startswith("-"):
            remove_tag(self.registry, ids[0], text[1:].strip())
        else:
            self.registry.add_tag(ids[0], text)
        self.tag_edit.clear()
        self.refresh()

    def _add_note(self) -> None:
        ids, text = self.selected_ids(), self.note_edit.text().strip()
        if len(ids) == 1 and text:
            self.registry.add_note(ids[0], text)
            self.note_edit.clear()
            self.refresh()

    def check_quality(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        from studio.engine.library.quality import evaluate_quality

        run = self.rows[ids[0]].run
        self.jobs.start(lambda state: evaluate_quality(run, progress=state.report,
                                                       cancelled=state.is_cancelled),
                        "checking the model's quality")
        self._update_actions()

    def _on_job_done(self, result: object) -> None:
        verdict = getattr(result, "verdict", None)
        if verdict:
            self.banner.show_message("ok", "Quality check finished.", verdict)
        self.refresh()

    def delete_selected(self) -> None:
        from studio.engine.errors import StudioError
        from studio.engine.library.disk import delete_run

        ids = self.selected_ids()
        if len(ids) != 1:
            return
        row = self.rows[ids[0]]
        label = f"{row.run.name} {row.run.version}"
        question = (f"Delete {label}? Its folder ({format_bytes(row.size_bytes)}) and its place in the "
                    "library are removed. This cannot be undone.")
        if not self.confirm("Delete run", question):
            return
        try:
            freed = delete_run(self.registry, row.run.id, confirm=True)
        except StudioError as error:
            self.banner.show_error(error)
            return
        self.banner.show_message("ok", f"Deleted {label}.", f"{format_bytes(freed)} freed.")
        self.runDeleted.emit(row.run.id)
        self.refresh()

    def clean_up(self) -> None:
        from studio.engine.library.disk import apply_cleanup, plan_cleanup

        plan = plan_cleanup([row.run for row in self.rows.values()])
        if not plan.items:
            self.banner.show_message("info", "Nothing to clean up.",
                                     "Completed runs hold only their best and final checkpoints.")
            return
        lines = [f"{format_bytes(item.bytes)}: {self.rows[item.run_id].run.name} "
                 f"{self.rows[item.run_id].run.version}, {item.reason}" for item in plan.items[:12]]
        if len(plan.items) > 12:
            lines.append(f"… and {len(plan.items) - 12} more")
        question = (f"Free {format_bytes(plan.total_bytes)}? These are removed (best and final checkpoints, "
                    "adapters and exports stay):\n\n" + "\n".join(lines))
        if not self.confirm("Free disk space", question):
            return
        freed = apply_cleanup(plan, self.registry, confirm=True)
        self.banner.show_message("ok", f"Freed {format_bytes(freed)}.")
        self.refresh()

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes |
                                      QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def shutdown(self) -> None:
        """Stop background work (loading, quality check, generation); call before the page goes away."""
        self.playground_view.shutdown()
        self.jobs.shutdown()
        self.loader.shutdown()
