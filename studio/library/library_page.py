"""The runs library: every run with its version, status, base model, dataset, date, best held-out loss and
size on disk; search, status and tag filters; tags and notes; the lineage timeline; and the actions a run's
state allows. Compare and Playground open inside the page; the rest is asked of the main window by signal.

The page wires three parts together: the table (studio.library.runs_table: a model over the library's rows
and the proxy that filters and sorts it), the details of the selection (studio.library.run_details), and the
actions. It never reads or writes the registry or the run folders on the GUI thread: loading, deleting,
freeing disk space, tags, notes and the active version all run as background tasks, and the list is read
again when one finishes.

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

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QPoint, Qt, Signal, SignalInstance
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.engine.library.catalog import RESUMABLE, USABLE, LibraryRow, remove_tag
from studio.engine.library.disk import CleanupPlan, apply_cleanup, delete_run, format_bytes, plan_cleanup
from studio.engine.runs.active import activate
from studio.engine.runs.registry import Registry
from studio.gui.help import help_button
from studio.gui.tasks import TaskRunner
from studio.gui.widgets import Banner, wrapped_label
from studio.library.compare_view import CompareView
from studio.library.confirm import ask
from studio.library.hardest_view import HardestView
from studio.library.playground_view import PlaygroundView
from studio.library.queue_view import QueueView
from studio.library.run_details import RunDetails
from studio.library.runs_table import (
    COLUMNS,
    DATE,
    ID_ROLE,
    STATUSES,
    LibrarySnapshot,
    RunsFilter,
    RunsModel,
    read_library,
)
from studio.library.schedules_view import ScheduleDialog, trigger_words

__all__ = ["COLUMNS", "LibraryPage"]
CLEANUP_LINES = 12  # items of a clean-up plan listed in its question


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
        self.snapshot = LibrarySnapshot()
        self.rows: dict[str, LibraryRow] = {}
        self.active: set[str] = set()  # run ids of the active versions
        self.schedule_dialog: ScheduleDialog | None = None
        self._hidden_selection: set[str] = set()  # selected runs the filters hide: selected again when shown
        self._restoring = False  # the page itself is changing the selection
        self._after_change: Callable[[object], None] | None = None
        self.confirm: Callable[[str, str], bool] = lambda title, text: ask(self, title, text)
        """Asks before anything is deleted; replaceable (tests, automation)."""
        self.loader = TaskRunner(self)
        self.loader.finished.connect(self._on_loaded)
        self.loader.failed.connect(lambda error: self.banner.show_error(error))
        self.jobs = TaskRunner(self)  # the quality check
        self.jobs.finished.connect(self._on_job_done)
        self.jobs.failed.connect(lambda error: self.banner.show_error(error))
        self.jobs.statusChanged.connect(lambda text: self.banner.show_message("info", text))
        self.changes = TaskRunner(self)  # writes to the registry and the run folders, one at a time
        self.changes.finished.connect(self._on_changed)
        self.changes.failed.connect(self._on_change_failed)
        self.changes.busyChanged.connect(self._on_changes_busy)

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
        layout.addLayout(self._build_top())
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.queue_view = QueueView(self.registry)
        self.queue_view.watchRequested.connect(self.watchRequested)
        self.queue_view.added.connect(lambda _entry: self.refresh())
        layout.addWidget(self.queue_view)

        self._build_table()
        self.empty = wrapped_label("No runs yet. Train a model and it appears here.", name="muted")
        self.details = RunDetails()
        self.details.tagAdded.connect(self._add_tag)
        self.details.tagRemoved.connect(self._remove_tag)
        self.details.noteAdded.connect(self._add_note)
        # The panel's parts, by the names the page has always given them.
        self.details_title, self.details_body = self.details.title, self.details.body
        self.lineage = self.details.lineage
        self.tags_label, self.tag_edit = self.details.tags_label, self.details.tag_edit
        self.notes, self.note_edit = self.details.notes, self.details.note_edit

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
        details_scroll.setWidget(self.details)
        splitter.addWidget(details_scroll)
        splitter.setSizes([820, 420])
        runs_title = QLabel("Runs")
        runs_title.setObjectName("sectionTitle")
        layout.addWidget(runs_title)
        layout.addWidget(splitter, 1)
        self.hint = wrapped_label("", name="muted")
        layout.addWidget(self.hint)
        layout.addLayout(self._build_actions())
        return page

    def _build_top(self) -> QHBoxLayout:
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
        return top

    def _build_table(self) -> None:
        self.model = RunsModel()
        self.proxy = RunsFilter(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table for the next control; arrows move in it
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setAccessibleName("Runs")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)  # names stay readable; tags take what is left
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(DATE, Qt.SortOrder.DescendingOrder)  # newest first until the user picks another
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self.show_context_menu)
        self.context_menu: QMenu | None = None

    def _build_actions(self) -> QHBoxLayout:
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
        actions.addStretch(1)
        self.action_buttons = (self.resume_button, self.continue_button, self.activate_button, self.compare_button,
                               self.playground_button, self.quality_button, self.hardest_button,
                               self.schedule_button, self.export_button, self.delete_button)
        for button in self.action_buttons:
            actions.addWidget(button)
        return actions

    # ---- loading ---------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the runs in the background; `refreshed` follows."""
        registry = self.registry
        self.loader.start(lambda _state: read_library(registry), "reading the runs library")

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        """Coming back to the library shows runs that finished meanwhile."""
        super().showEvent(event)
        self.refresh()

    def _on_loaded(self, result: object) -> None:
        assert isinstance(result, LibrarySnapshot)
        selected = set(self.selected_ids())
        self.snapshot = result
        self.rows = result.by_id()
        self.active = set(result.active)
        self._restoring = True
        try:
            self.model.set_snapshot(result)
            self._fill_tag_filter()
            self._set_filter()
        finally:
            self._restoring = False
        self.empty.setVisible(not self.rows)
        self._reselect(selected & set(self.rows))
        self._on_selection()
        self.refreshed.emit()

    def _fill_tag_filter(self) -> None:
        """Every tag in use; the one chosen stays chosen while a run still has it."""
        tags = sorted({tag for row in self.rows.values() for tag in row.tags})
        current = self.tag_filter.currentData()
        self.tag_filter.blockSignals(True)
        self.tag_filter.clear()
        self.tag_filter.addItem("All tags", "")
        for tag in tags:
            self.tag_filter.addItem(tag, tag)
        self.tag_filter.setCurrentIndex(max(0, self.tag_filter.findData(current)))
        self.tag_filter.blockSignals(False)

    # ---- filter and selection ----------------------------------------------------------------------------

    def _set_filter(self) -> None:
        self.proxy.set_filter(self.search.text(), self.status_filter.currentData() or "",
                              self.tag_filter.currentData() or "")

    def _apply_filter(self) -> None:
        """The search words and filters chosen; a selected run they hide is selected again once shown."""
        keep = set(self.selected_ids()) | self._hidden_selection
        self._restoring = True
        try:
            self._set_filter()
        finally:
            self._restoring = False
        self._reselect(keep)
        self._on_selection()

    def _reselect(self, run_ids: set[str]) -> None:
        visible = set(self.visible_ids())
        self._restoring = True
        try:
            self.select(sorted(run_ids & visible))
        finally:
            self._restoring = False
        self._hidden_selection = run_ids - visible

    def _on_selection_changed(self) -> None:
        if not self._restoring:
            self._hidden_selection.clear()  # a person chose anew
            self._on_selection()

    def visible_ids(self) -> list[str]:
        """The runs the filters let through, in the order shown."""
        return [str(self.proxy.index(row, 0).data(ID_ROLE)) for row in range(self.proxy.rowCount())]

    def selected_ids(self) -> list[str]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [str(self.proxy.index(row, 0).data(ID_ROLE)) for row in rows]

    def select(self, run_ids: list[str]) -> None:
        """Select exactly these runs (those shown), as one change of the selection."""
        wanted = set(run_ids)
        selection = QItemSelection()
        first = None
        last_column = self.proxy.columnCount() - 1
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if index.data(ID_ROLE) in wanted:
                selection.select(index, self.proxy.index(row, last_column))
                first = index if first is None else first
        flags = QItemSelectionModel.SelectionFlag
        model = self.table.selectionModel()
        model.select(selection, flags.ClearAndSelect | flags.Rows)
        if first is not None:
            model.setCurrentIndex(first, flags.NoUpdate)

    # ---- details and actions ----------------------------------------------------------------------------

    def _on_selection(self) -> None:
        self._update_actions()
        self.details.show_selection(self.snapshot, self.selected_ids())

    def _active_of(self, name: str) -> LibraryRow | None:
        return self.snapshot.active_of(name)

    def _update_actions(self) -> None:
        runs = [self.rows[rid].run for rid in self.selected_ids() if rid in self.rows]
        one = runs[0] if len(runs) == 1 else None
        idle = not self.changes.busy  # one change at a time
        self.resume_button.setEnabled(one is not None and one.status in RESUMABLE)
        finished = one is not None and one.status == "completed"
        self.continue_button.setEnabled(one is not None and one.status in USABLE)
        self.activate_button.setEnabled(idle and finished and one.id not in self.active)  # type: ignore[union-attr]
        self.hardest_button.setEnabled(finished)
        self.schedule_button.setEnabled(finished)
        pick = self.line_choice(self.selected_ids())
        self.export_button.setEnabled(pick is not None)
        self.quality_button.setEnabled(finished and not self.jobs.busy)
        self.compare_button.setEnabled(2 <= len(runs) <= 5)
        self.playground_button.setEnabled(bool(self.playground_ids()))
        self.delete_button.setEnabled(idle and one is not None and one.status not in ("running", "paused"))
        self.clean_button.setEnabled(idle)
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

    # ---- changes to the registry and the run folders, in the background ------------------------------------

    def _change(self, work: Callable[[], object], what: str, then: Callable[[object], None],
                doing: str = "") -> None:
        """Run `work` on the worker thread (`what` completes "Something went wrong while …"); `then(result)`
        follows on the GUI thread, an error is shown in the banner. `doing`, when given, says what is going on
        meanwhile. One change at a time: the controls that start one wait while it runs."""
        if self.changes.busy:
            return
        self._after_change = then
        if doing:
            self.banner.show_message("info", doing)
        self.changes.start(lambda _state: work(), what)

    def _on_changed(self, result: object) -> None:
        then, self._after_change = self._after_change, None
        if then is not None:
            then(result)

    def _on_change_failed(self, error: object) -> None:
        self._after_change = None
        self.banner.show_error(error)

    def _on_changes_busy(self, busy: bool) -> None:
        self.details.set_busy(busy)
        if busy:
            self.setCursor(Qt.CursorShape.BusyCursor)
        else:
            self.unsetCursor()
        self._update_actions()

    def _add_tag(self, run_id: str, tag: str) -> None:
        registry = self.registry
        self._change(lambda: registry.add_tag(run_id, tag), "adding the tag",
                     lambda _result: self._edited(self.tag_edit))

    def _remove_tag(self, run_id: str, tag: str) -> None:
        registry = self.registry
        self._change(lambda: remove_tag(registry, run_id, tag), "removing the tag",
                     lambda _result: self._edited(self.tag_edit))

    def _add_note(self, run_id: str, text: str) -> None:
        registry = self.registry
        self._change(lambda: registry.add_note(run_id, text), "adding the note",
                     lambda _result: self._edited(self.note_edit))

    def _edited(self, field: QLineEdit) -> None:
        field.clear()
        self.refresh()

    def make_active(self) -> None:
        """One click: the selected version becomes the one in use; the switch is recorded with its reason."""
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        run = self.rows[ids[0]].run
        before = self._active_of(run.name)
        was = f" (it was {before.run.version})" if before is not None else ""
        registry = self.registry

        def done(_result: object) -> None:
            self.banner.show_message("ok", f"{run.name} {run.version} is now the active version{was}.",
                                     "Export and the playground start from it; the switch is listed in its details.")
            self.refresh()

        self._change(lambda: activate(registry, run.id), "making the version active", done,
                     f"Making {run.name} {run.version} the active version…")

    def delete_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        row = self.rows[ids[0]]
        run_id, label = row.run.id, f"{row.run.name} {row.run.version}"
        question = (f"Delete {label}? Its folder ({format_bytes(row.size_bytes)}) and its place in the "
                    "library are removed. This cannot be undone.")
        if not self.confirm("Delete run", question):
            return
        registry = self.registry

        def done(freed: object) -> None:
            self.banner.show_message("ok", f"Deleted {label}.", f"{format_bytes(freed)} freed.")  # type: ignore[arg-type]
            self.runDeleted.emit(run_id)
            self.refresh()

        self._change(lambda: delete_run(registry, run_id, confirm=True), "deleting the run", done,
                     f"Deleting {label}…")

    def clean_up(self) -> None:
        """What could go is measured in the background, asked about, then removed in the background."""
        runs = [row.run for row in self.rows.values()]
        labels = {run.id: f"{run.name} {run.version}" for run in runs}
        self._change(lambda: plan_cleanup(runs), "looking for disk space to free",
                     lambda plan: self._confirm_clean_up(plan, labels))  # type: ignore[arg-type]

    def _confirm_clean_up(self, plan: CleanupPlan, labels: dict[str, str]) -> None:
        if not plan.items:
            self.banner.show_message("info", "Nothing to clean up.",
                                     "Completed runs hold only their best and final checkpoints.")
            return
        lines = [f"{format_bytes(item.bytes)}: {labels.get(item.run_id, item.run_id)}, {item.reason}"
                 for item in plan.items[:CLEANUP_LINES]]
        if len(plan.items) > CLEANUP_LINES:
            lines.append(f"… and {len(plan.items) - CLEANUP_LINES} more")
        question = (f"Free {format_bytes(plan.total_bytes)}? These are removed (best and final checkpoints, "
                    "adapters and exports stay):\n\n" + "\n".join(lines))
        if not self.confirm("Free disk space", question):
            return
        registry = self.registry

        def done(freed: object) -> None:
            self.banner.show_message("ok", f"Freed {format_bytes(freed)}.")  # type: ignore[arg-type]
            self.refresh()

        self._change(lambda: apply_cleanup(plan, registry, confirm=True), "freeing disk space", done,
                     f"Freeing {format_bytes(plan.total_bytes)}…")

    def shutdown(self) -> None:
        """Stop background work (loading, changes, quality check, generation, scoring, the queue's refresh); call
        before the page goes away."""
        self.queue_view.shutdown()
        self.hardest_view.shutdown()
        self.playground_view.shutdown()
        self.compare_view.shutdown()
        self.jobs.shutdown()
        self.changes.shutdown()
        self.loader.shutdown()
