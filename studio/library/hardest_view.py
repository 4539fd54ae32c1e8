"""The hardest-examples report of a finished run, inside the runs library: every example's loss under the
trained model, worst first, over the training and held-out data. Mislabeled, cut-off or broken rows rise
to the top; the user reads them in full, ticks the bad ones and queues the next version without them.

Reports can hold tens of thousands of rows, so the table is a model/view pair (sorting and the split filter
happen in a proxy, never by rebuilding items), and the report file is read in the background. A run without
a report can be scored here (the trained model measures every example: minutes, with progress and Cancel).

Signals:
    backRequested(): the user wants the list of runs again.
    queueRequested(object, str): the next version's TrainConfig (ticked examples excluded) and its model line.
    wizardRequested(object): the same config as a dict, to adjust in the wizard before training.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QItemSelection,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.engine.errors import StudioError
from studio.engine.library.hardest import HardestReport, ScoredExample, load_report
from studio.engine.runs.registry import RunRecord
from studio.engine.training.example_loss import preview
from studio.gui.help import help_button
from studio.gui.previews import without_shared_start
from studio.gui.table_model import ColumnsModel, Index
from studio.gui.tasks import TaskRunner, TaskState
from studio.gui.widgets import Banner, wrapped_label

COLUMNS = ("Leave out", "Rank", "Split", "Loss", "Tokens", "Example")
LEAVE_OUT, RANK, SPLIT, LOSS, TOKENS, EXAMPLE = range(len(COLUMNS))
SPLIT_WORDS = {"train": "training", "eval": "held-out"}
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


class HardestModel(ColumnsModel):
    """The report's examples, ranked by loss (1 = the worst fit), with a tick per example to leave out.

    Signals:
        pickedChanged(): an example was ticked or unticked.
    """

    pickedChanged = Signal()  # noqa: N815 - Qt signal naming

    def __init__(self) -> None:
        super().__init__(COLUMNS)
        self.examples: list[ScoredExample] = []
        self.previews: list[str] = []
        self.picked: set[str] = set()  # fingerprints

    def set_report(self, report: HardestReport | None) -> None:
        self.beginResetModel()
        self.examples = report.sorted_by("loss") if report is not None else []
        self.previews = without_shared_start([preview(example.text) for example in self.examples])
        self.picked = set()
        self.endResetModel()
        self.pickedChanged.emit()

    def picked_fingerprints(self) -> list[str]:
        """The ticked examples, worst first."""
        return [e.fingerprint for e in self.examples if e.fingerprint in self.picked]

    def row_count(self) -> int:
        return len(self.examples)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        example = self.examples[row]
        if role == Qt.ItemDataRole.CheckStateRole and column == LEAVE_OUT:
            return Qt.CheckState.Checked if example.fingerprint in self.picked else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DisplayRole:
            return {RANK: str(row + 1), SPLIT: SPLIT_WORDS.get(example.split, example.split),
                    LOSS: f"{example.loss:.4f}", TOKENS: str(example.tokens), EXAMPLE: self.previews[row]}.get(column)
        if role == SORT_ROLE:
            return (int(example.fingerprint in self.picked), row, example.split, example.loss, example.tokens,
                    self.previews[row])[column]
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (RANK, LOSS, TOKENS):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and column == EXAMPLE:
            return "Select the row to read the whole example below."
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        flags = super().flags(index)
        return flags | Qt.ItemFlag.ItemIsUserCheckable if index.column() == LEAVE_OUT else flags

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if role != Qt.ItemDataRole.CheckStateRole or index.column() != LEAVE_OUT:
            return False
        fingerprint = self.examples[index.row()].fingerprint
        if Qt.CheckState(value) == Qt.CheckState.Checked:
            self.picked.add(fingerprint)
        else:
            self.picked.discard(fingerprint)
        self.dataChanged.emit(index, index, [role])
        self.pickedChanged.emit()
        return True


class SplitFilter(QSortFilterProxyModel):
    """Sorts by number where a column holds numbers, and shows one split or all."""

    def __init__(self, source: HardestModel) -> None:
        super().__init__()
        self.source = source
        self.split = ""
        self.setSourceModel(source)
        self.setSortRole(SORT_ROLE)

    def show_split(self, split: str) -> None:
        self.beginFilterChange()
        self.split = split
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:  # noqa: N802 - Qt override
        return not self.split or self.source.examples[source_row].split == self.split


class HardestView(QWidget):
    backRequested = Signal()  # noqa: N815 - Qt signal naming
    queueRequested = Signal(object, str)  # noqa: N815
    wizardRequested = Signal(object)  # noqa: N815

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run: RunRecord | None = None
        self.report: HardestReport | None = None
        self.runner = TaskRunner(self)
        self.runner.finished.connect(self._on_report)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.busyChanged.connect(self._on_busy)
        self.model = HardestModel()
        self.proxy = SplitFilter(self.model)
        self.model.pickedChanged.connect(self._update_picked)

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.back_button = QPushButton("← Library")
        self.back_button.clicked.connect(self.backRequested)
        self.title = QLabel("Hardest examples")
        self.title.setObjectName("pageTitle")
        top.addWidget(self.back_button)
        top.addWidget(self.title, 1)
        top.addWidget(help_button("hardest", "the hardest examples"))
        layout.addLayout(top)
        layout.addWidget(wrapped_label(
            "How well the trained model fits each example: the higher the loss, the worse. Rows far above the "
            "rest are often mislabeled, cut off or broken. Read them below, tick the bad ones, and train the "
            "next version without them.", name="muted"))
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_report_page())
        self.pages.addWidget(self._build_scoring_page())
        layout.addWidget(self.pages, 1)

    def _build_report_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        filters = QHBoxLayout()
        self.summary = wrapped_label(selectable=True)
        self.split_filter = QComboBox()
        self.split_filter.setAccessibleName("Show examples of")
        self.split_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.split_filter.currentIndexChanged.connect(lambda _i: self.proxy.show_split(
            self.split_filter.currentData() or ""))
        filters.addWidget(self.summary, 1)
        filters.addWidget(QLabel("Show"))
        filters.addWidget(self.split_filter)
        layout.addLayout(filters)

        self.table = QTableView()
        self.table.setTabKeyNavigation(False)  # Tab moves on to the next control; arrows move in it
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(LOSS, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.setAccessibleName("Examples by loss")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(EXAMPLE, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().selectionChanged.connect(self._show_selected)
        self.detail = QLabel()
        self.detail.setObjectName("sectionTitle")
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setAccessibleName("The whole example")
        self.text.setPlaceholderText("Select a row to read the whole example as the model saw it.")
        below = QWidget()
        below_layout = QVBoxLayout(below)
        below_layout.setContentsMargins(0, 0, 0, 0)
        below_layout.addWidget(self.detail)
        below_layout.addWidget(self.text, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(below)
        splitter.setSizes([420, 220])
        layout.addWidget(splitter, 1)

        actions = QHBoxLayout()
        self.picked_label = wrapped_label(name="muted")
        self.clear_button = QPushButton("Untick all")
        self.clear_button.clicked.connect(self._untick_all)
        self.wizard_button = QPushButton("Exclude and open in the wizard")
        self.wizard_button.setToolTip("Start the next version in the wizard without the ticked examples, to change "
                                      "other settings too.")
        self.wizard_button.clicked.connect(self._to_wizard)
        self.queue_button = QPushButton("Exclude and queue the next version")
        self.queue_button.setObjectName("primary")
        self.queue_button.setToolTip("Queue the next version of this model with the same settings, without the "
                                     "ticked examples.")
        self.queue_button.clicked.connect(self._to_queue)
        actions.addWidget(self.picked_label, 1)
        for button in (self.clear_button, self.wizard_button, self.queue_button):
            actions.addWidget(button)
        layout.addLayout(actions)
        return page

    def _build_scoring_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.missing = wrapped_label()
        layout.addWidget(self.missing)
        row = QHBoxLayout()
        self.score_button = QPushButton("Score every example")
        self.score_button.setObjectName("primary")
        self.score_button.clicked.connect(self.score)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.runner.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setAccessibleName("Scoring progress")
        self.status = wrapped_label(name="muted")
        self.runner.progressChanged.connect(lambda fraction: self.progress.setValue(int(fraction * 1000)))
        self.runner.statusChanged.connect(self.status.setText)
        row.addWidget(self.score_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress, 1)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addStretch(1)
        return page

    # ---- loading ---------------------------------------------------------------------------------------

    def set_run(self, run: RunRecord) -> None:
        """Show a run's report, read in the background (the scoring page when it has none)."""
        self.run = run
        self.report = None
        self.title.setText(f"Hardest examples of {run.name} {run.version}")
        self.banner.hide()
        self.model.set_report(None)
        self.summary.setText("Reading the report…")
        self.pages.setCurrentIndex(0)
        run_dir = run.run_dir
        self.runner.start(lambda _state: load_report(run_dir), "reading the hardest-examples report")

    def score(self) -> None:
        """Measure every example with the trained model (the report is saved with the run)."""
        from studio.engine.library.hardest import score_run

        if self.run is None:
            return
        run_dir = self.run.run_dir
        self.banner.hide()
        self.progress.setValue(0)

        def work(state: TaskState) -> HardestReport:
            return score_run(run_dir, task=state)

        self.runner.start(work, "scoring every example")

    def _show_scoring(self, why: str) -> None:
        self.pages.setCurrentIndex(1)
        self.missing.setText(
            f"{why} Studio can measure every example now with the trained model. That loads the model and takes "
            "about as long as one pass over the data; the result is kept with the run.")
        self.status.setText("")

    def _on_report(self, report: object) -> None:
        if report is None:
            assert self.run is not None
            self._show_scoring(f"{self.run.name} {self.run.version} has no per-example report yet: it was trained "
                               "before Studio made one, or with scoring turned off.")
            return
        assert isinstance(report, HardestReport)
        self.report = report
        self.model.set_report(report)
        self.pages.setCurrentIndex(0)
        self.split_filter.blockSignals(True)
        self.split_filter.clear()
        self.split_filter.addItem("All examples", "")
        for split in ("train", "eval"):
            if split in report.splits:
                self.split_filter.addItem(f"{SPLIT_WORDS[split].capitalize()} data", split)
        self.split_filter.blockSignals(False)
        self.proxy.show_split("")
        self.table.sortByColumn(LOSS, Qt.SortOrder.DescendingOrder)
        self.summary.setText(_summary(report))
        self.text.clear()
        self.detail.setText("")
        if self.proxy.rowCount():
            self.table.selectRow(0)

    def _on_failed(self, error: object) -> None:
        """A report that cannot be read can be measured again; a failed scoring can be tried again."""
        self.banner.show_error(error)
        if self.report is None and self.pages.currentIndex() == 0:
            self._show_scoring("The report could not be read (see above).")

    def _on_cancelled(self) -> None:
        self.status.setText("Scoring was cancelled; nothing was saved.")
        self.progress.setValue(0)

    def _on_busy(self, busy: bool) -> None:
        self.score_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    # ---- reading and picking -----------------------------------------------------------------------------

    def _show_selected(self, _selected: QItemSelection | None = None, _deselected: QItemSelection | None = None
                       ) -> None:
        example = self.selected_example()
        if example is None:
            self.detail.setText("")
            self.text.clear()
            return
        self.detail.setText(f"Example {example.index + 1} of the {SPLIT_WORDS.get(example.split, example.split)} "
                            f"data · loss {example.loss:.4f} · {example.tokens} trained tokens · "
                            f"fingerprint {example.fingerprint}")
        self.text.setPlainText(example.text)

    def selected_example(self) -> ScoredExample | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.examples[self.proxy.mapToSource(rows[0]).row()]

    def _update_picked(self) -> None:
        count = len(self.model.picked)
        self.picked_label.setText(
            "Tick the examples to leave out of the next version." if not count else
            f"{count} example{'s' if count != 1 else ''} ticked: the next version trains without "
            f"{'them' if count != 1 else 'it'}.")
        for button in (self.clear_button, self.wizard_button, self.queue_button):
            button.setEnabled(bool(count))

    def _untick_all(self) -> None:
        self.model.picked.clear()
        self.model.dataChanged.emit(self.model.index(0, LEAVE_OUT),
                                    self.model.index(max(self.model.rowCount() - 1, 0), LEAVE_OUT))
        self.model.pickedChanged.emit()

    def next_config(self) -> Any:
        """The run's settings without the ticked examples, or None (and the reason shown) when that fails."""
        from studio.engine.library.hardest import next_version_config

        assert self.run is not None
        try:
            return next_version_config(self.run.config, self.model.picked_fingerprints())
        except StudioError as error:
            self.banner.show_error(error)
            return None

    def _to_queue(self) -> None:
        config = self.next_config()
        if config is not None and self.run is not None:
            self.queueRequested.emit(config, self.run.name)

    def _to_wizard(self) -> None:
        config = self.next_config()
        if config is not None:
            self.wizardRequested.emit(config.model_dump(mode="json"))

    def shutdown(self) -> None:
        """Cancel reading or scoring; call before the page goes away."""
        self.runner.shutdown()


def _summary(report: HardestReport) -> str:
    counts = ", ".join(f"{report.splits[split]['scored']:,} {SPLIT_WORDS[split]}" for split in ("train", "eval")
                       if split in report.splits)
    text = f"{counts} examples, measured after step {report.step}."
    for split, numbers in report.cut_splits().items():
        text += (f" Only {numbers['scored']:,} of the {numbers['total']:,} {SPLIT_WORDS.get(split, split)} examples "
                 "were measured (a sample, to keep it quick).")
    return text
