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
    watchRequested(str): run id of the queued run now training, to follow in the dashboard.
    refreshed(): the table was reloaded.

Above the table sits the run queue (studio.library.queue_view). The active version of each model line is
marked in the Version column; Export and Playground start from it when the selection names a model line
rather than one run (several versions of one line, or nothing in a library of one line).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, Qt, Signal, SignalInstance
from PySide6.QtGui import QBrush, QColor, QFont, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMenu,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.errors import StudioError
from studio.engine.library.catalog import RESUMABLE, USABLE, LibraryRow, library_rows, remove_tag
from studio.engine.library.disk import format_bytes
from studio.engine.runs.active import NOT_ACTIVATED_TAG, activate, activation_history, active_ids
from studio.engine.runs.lineage import LineageNode, lineage_forest
from studio.engine.runs.registry import Registry
from studio.gui.help import help_button
from studio.gui.tasks import TaskRunner
from studio.gui.theme import colors
from studio.gui.widgets import Banner, wrapped_label
from studio.library.compare_view import CompareView
from studio.library.confirm import ask
from studio.library.hardest_view import HardestView
from studio.library.playground_view import PlaygroundView
from studio.library.queue_view import QueueView
from studio.library.schedules_view import ScheduleDialog, trigger_words

COLUMNS = ("Name", "Version", "Status", "Base model", "Dataset", "Date", "Best eval loss", "Size on disk",
           "Tags")
STATUSES = ("completed", "running", "paused", "interrupted", "stopped", "failed", "queued")
TREE_WORDS = {"new": "first run", "continued": "continued training", "branched": "new data or model",
              "rerun": "re-run, other settings"}
ID_ROLE = Qt.ItemDataRole.UserRole
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def _date(iso: str) -> str:
    return iso[:16].replace("T", " ")


def _version_key(version: str) -> tuple[int, ...]:
    """1.10.0 after 1.9.0."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


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
    watchRequested = Signal(str)  # noqa: N815
    refreshed = Signal()

    def __init__(self, registry: Registry | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry or Registry()
        self.rows: dict[str, LibraryRow] = {}
        self.active: set[str] = set()  # run ids of the active versions
        self.schedule_dialog: ScheduleDialog | None = None
        self._sorted_once = False
        self.confirm: Callable[[str, str], bool] = lambda title, text: ask(self, title, text)
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
        self.hardest_view = HardestView()
        self.hardest_view.backRequested.connect(self.show_list)
        self.hardest_view.queueRequested.connect(self._queue_next_version)
        self.hardest_view.wizardRequested.connect(self.newRunRequested)
        self.stack.addWidget(self.hardest_view)
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
        top.addWidget(help_button("library", "the runs library"))
        top.addWidget(self.search, 1)
        top.addWidget(self.status_filter)
        top.addWidget(self.tag_filter)
        top.addWidget(self.refresh_button)
        top.addWidget(self.clean_button)
        layout.addLayout(top)
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.queue_view = QueueView(self.registry)
        self.queue_view.watchRequested.connect(self.watchRequested)
        self.queue_view.added.connect(lambda _entry: self.refresh())
        layout.addWidget(self.queue_view)

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
        header.setStretchLastSection(True)  # names stay readable; tags take what is left
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self.show_context_menu)
        self.context_menu: QMenu | None = None
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
        details_scroll = QScrollArea()  # the details never force the window taller than the screen
        details_scroll.setWidgetResizable(True)
        details_scroll.setFrameShape(QFrame.Shape.NoFrame)
        details_scroll.setAccessibleName("Details of the selected run")
        details_scroll.setWidget(details)
        splitter.addWidget(details_scroll)
        splitter.setSizes([820, 420])
        runs_title = QLabel("Runs")
        runs_title.setObjectName("sectionTitle")
        layout.addWidget(runs_title)
        layout.addWidget(splitter, 1)

        actions = QHBoxLayout()
        self.resume_button = QPushButton("Resume")
        self.continue_button = QPushButton("Continue training")
        self.compare_button = QPushButton("Compare")
        self.playground_button = QPushButton("Playground")
        self.quality_button = QPushButton("Check quality")
        self.export_button = QPushButton("Export…")
        self.delete_button = QPushButton("Delete…")
        self.activate_button = QPushButton("Make active")
        self.activate_button.setToolTip("Make this version the one export and the playground start from.")
        self.hardest_button = QPushButton("Hardest examples…")
        self.hardest_button.setToolTip("The examples this model fits worst: find broken rows and leave them out.")
        self.schedule_button = QPushButton("Retrain automatically…")
        self.schedule_button.setToolTip("Retrain this model on a schedule or whenever its data file changes.")
        self.resume_button.clicked.connect(lambda: self._emit_single(self.resumeRequested))
        self.continue_button.clicked.connect(lambda: self._emit_single(self.continueRequested))
        self.export_button.clicked.connect(self._export)
        self.compare_button.clicked.connect(lambda: self.open_compare(self.selected_ids()))
        self.playground_button.clicked.connect(lambda: self.open_playground(self.playground_ids()))
        self.quality_button.clicked.connect(self.check_quality)
        self.delete_button.clicked.connect(self.delete_selected)
        self.activate_button.clicked.connect(self.make_active)
        self.hardest_button.clicked.connect(lambda: self.open_hardest(self.selected_ids()[0]))
        self.schedule_button.clicked.connect(self.open_schedule_dialog)
        self.hint = wrapped_label("", name="muted")
        layout.addWidget(self.hint)
        actions.addStretch(1)
        self.action_buttons = (self.resume_button, self.continue_button, self.activate_button, self.compare_button,
                               self.playground_button, self.quality_button, self.hardest_button,
                               self.schedule_button, self.export_button, self.delete_button)
        for button in self.action_buttons:
            actions.addWidget(button)
        layout.addLayout(actions)
        return page

    # ---- loading ---------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the runs in the background; `refreshed` follows."""
        registry = self.registry
        self.loader.start(lambda _state: (library_rows(registry), active_ids(registry)), "reading the runs library")

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        """Coming back to the library shows runs that finished meanwhile."""
        super().showEvent(event)
        self.refresh()

    def _on_loaded(self, result: object) -> None:
        rows: list[LibraryRow]
        rows, self.active = result  # type: ignore[misc]
        selected = set(self.selected_ids())
        self.rows = {row.run.id: row for row in rows}
        self.table.setSortingEnabled(False)
        self.table.clearSelection()
        self.table.setRowCount(len(self.rows))
        for index, row in enumerate(self.rows.values()):
            run = row.run
            best = row.best_eval_loss
            cells = [
                (run.name, None), (self._version_text(row), _version_key(run.version)), (run.status, None),
                (row.model_name, None),
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
                if column == 1:
                    self._mark_version(item, row)
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
        lines.extend(self._activation_lines(run.id, run.name))
        self.details_body.setText("\n".join(lines))
        self.tags_label.setText(", ".join(row.tags) or "–")
        self.notes.clear()
        self.notes.addItems(list(row.notes))
        self._fill_lineage(run.id)

    def _activation_lines(self, run_id: str, name: str) -> list[str]:
        """Which version of the line is active, and the last switches (newest first) with their reasons."""
        active = self._active_of(name)
        if run_id in self.active:
            lines = ["Active version: this one ★ (export and the playground start from it)"]
        else:
            lines = [f"Active version of {name}: {active.run.version if active else 'none yet'}"]
            if NOT_ACTIVATED_TAG in self.rows[run_id].tags:
                lines.append("Not made active: an automatic retrain that did worse than the active version "
                             "(its notes say by how much).")
        history = activation_history(self.registry, name)
        if history:
            lines.append("Switches of the active version:")
            for switch in reversed(history[-5:]):
                row = self.rows.get(switch.run_id or "")
                version = row.run.version if row is not None else "a deleted run"
                lines.append(f"  {_date(switch.at)} → {version}: {switch.reason}")
        return lines

    def _active_of(self, name: str) -> LibraryRow | None:
        return next((self.rows[rid] for rid in self.active if rid in self.rows and self.rows[rid].run.name == name),
                    None)

    def _version_text(self, row: LibraryRow) -> str:
        if row.run.id in self.active:
            return f"{row.run.version}  ★ active"
        if NOT_ACTIVATED_TAG in row.tags:
            return f"{row.run.version}  not made active"
        return row.run.version

    def _mark_version(self, item: QTableWidgetItem, row: LibraryRow) -> None:
        if row.run.id in self.active:
            font = item.font()
            font.setBold(True)
            item.setFont(font)
            item.setToolTip(f"The active version of {row.run.name}: export and the playground start from it.")
        elif NOT_ACTIVATED_TAG in row.tags:
            item.setForeground(QBrush(QColor(colors().warn)))
            item.setToolTip("An automatic retrain that was kept but not made active: its held-out loss was worse "
                            "than the active version's. Compare them, or make it active by hand.")

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
        self.resume_button.setEnabled(one is not None and one.status in RESUMABLE)
        finished = one is not None and one.status == "completed"
        self.continue_button.setEnabled(one is not None and one.status in USABLE)
        self.activate_button.setEnabled(finished and one.id not in self.active)  # type: ignore[union-attr]
        self.hardest_button.setEnabled(finished)
        self.schedule_button.setEnabled(finished)
        pick = self.line_choice(self.selected_ids())
        self.export_button.setEnabled(pick is not None)
        self.quality_button.setEnabled(finished and not self.jobs.busy)
        self.compare_button.setEnabled(2 <= len(runs) <= 5)
        self.playground_button.setEnabled(bool(self.playground_ids()))
        self.delete_button.setEnabled(one is not None and one.status not in ("running", "paused"))
        if pick is not None and one is None:
            run = self.rows[pick].run
            self.hint.setText(f"Export and Playground use {run.name} {run.version}, the active version.")
        elif one is not None and one.status in USABLE - {"completed"}:
            self.hint.setText(f"This run was {one.status} before the end. Export, Playground and Continue use "
                              "what it learned up to its last saved checkpoint; Resume finishes it.")
        else:
            self.hint.setText("" if runs else
                              "Select a run to see what you can do with it; select several to compare them.")
        self.hint.setVisible(bool(self.hint.text()))

    def show_context_menu(self, pos: QPoint) -> None:
        """Right-click on a run: the actions of the buttons below, for the run under the pointer (added to
        the selection only when it is not already part of it)."""
        row = self.table.rowAt(pos.y())
        if row < 0:
            return
        if row not in {index.row() for index in self.table.selectionModel().selectedRows()}:
            self.table.clearSelection()
            self.table.selectRow(row)
        menu = QMenu(self)
        for button in self.action_buttons:
            if button.isEnabled():
                menu.addAction(button.text(), button.click)
        self.context_menu = menu
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def line_choice(self, run_ids: list[str]) -> str | None:
        """The run Export starts from: the one selected (finished, or stopped with a checkpoint), or else the
        active version of the one model line that the selection (or, with nothing selected, the library) holds."""
        if len(run_ids) == 1:
            row = self.rows.get(run_ids[0])
            return run_ids[0] if row is not None and row.run.status in USABLE else None
        names = {self.rows[rid].run.name for rid in (run_ids or self.rows) if rid in self.rows}
        active = self._active_of(names.pop()) if len(names) == 1 else None
        return active.run.id if active is not None and active.run.status == "completed" else None

    def playground_ids(self) -> list[str]:
        """One or two finished runs side by side; otherwise the model line's active version."""
        ids = self.selected_ids()
        if 1 <= len(ids) <= 2 and all(self.rows[rid].run.status in USABLE for rid in ids if rid in self.rows):
            return ids
        pick = self.line_choice(ids)
        return [pick] if pick is not None else []

    def _emit_single(self, signal: SignalInstance) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            signal.emit(ids[0])

    def _export(self) -> None:
        pick = self.line_choice(self.selected_ids())
        if pick is not None:
            self.exportRequested.emit(pick)

    def make_active(self) -> None:
        """One click: the selected version becomes the one in use; the switch is recorded with its reason."""
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        run = self.rows[ids[0]].run
        before = self._active_of(run.name)
        try:
            activate(self.registry, run.id)
        except StudioError as error:
            self.banner.show_error(error)
            return
        was = f" (it was {before.run.version})" if before is not None else ""
        self.banner.show_message("ok", f"{run.name} {run.version} is now the active version{was}.",
                                 "Export and the playground start from it; the switch is listed in its details.")
        self.refresh()

    def open_hardest(self, run_id: str) -> None:
        self.hardest_view.set_run(self.rows[run_id].run)
        self.stack.setCurrentWidget(self.hardest_view)

    def _queue_next_version(self, config: object, name: str) -> None:
        """"Exclude and queue": the next version of the same model line joins the queue, shown at the top."""
        self.show_list()
        self.queue_view.add(config, name)  # type: ignore[arg-type]

    def open_schedule_dialog(self) -> None:
        """"Retrain automatically…" for the selected finished run (window-modal; `schedule_dialog` while open)."""
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        dialog = ScheduleDialog(self.rows[ids[0]].run, self.registry, self)
        dialog.accepted.connect(lambda: self._on_scheduled(dialog))
        dialog.finished.connect(lambda _code: self._forget_schedule_dialog(dialog))
        self.schedule_dialog = dialog
        dialog.open()

    def _on_scheduled(self, dialog: ScheduleDialog) -> None:
        schedule = dialog.schedule
        if schedule is None:
            return
        self.banner.show_message(
            "ok", f"{schedule.name} is retrained {trigger_words(schedule)}.",
            "Each retrain joins the queue as a new version and becomes the active one only if it is not worse. "
            "The queue must be running to train them.")
        self.queue_view.refresh()

    def _forget_schedule_dialog(self, dialog: ScheduleDialog) -> None:
        if self.schedule_dialog is dialog:
            self.schedule_dialog = None
        dialog.deleteLater()

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
        self.jobs.start(lambda state: evaluate_quality(run, task=state), "checking the model's quality")
        self._update_actions()

    def _on_job_done(self, result: object) -> None:
        verdict = getattr(result, "verdict", None)
        if verdict:
            self.banner.show_message("ok", "Quality check finished.", verdict)
        self.refresh()

    def delete_selected(self) -> None:
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

    def shutdown(self) -> None:
        """Stop background work (loading, quality check, generation, scoring, the queue's refresh); call before
        the page goes away."""
        self.queue_view.shutdown()
        self.hardest_view.shutdown()
        self.playground_view.shutdown()
        self.jobs.shutdown()
        self.loader.shutdown()
