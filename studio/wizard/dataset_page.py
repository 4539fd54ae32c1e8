"""Step 2: the user's data. Drop or browse a file; it is checked in the background with progress and cancel,
and the result is shown as plain-language issues, a token-length histogram and a preview of what the model
will actually be trained on.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.gui.tasks import TaskRunner, TaskState
from studio.gui.theme import colors
from studio.gui.widgets import Badge, Banner, wrapped_label
from studio.wizard.base import WizardPage
from studio.wizard.session import WizardSession

if TYPE_CHECKING:
    from studio.engine.datasets import DatasetCheck

FILE_FILTER = "Data files (*.jsonl *.json *.csv *.tsv *.txt *.parquet);;All files (*)"
ROLE_LABELS = (
    ("", "Not used"),
    ("user", "The request (prompt, question)"),
    ("assistant", "The answer the model should give"),
    ("system", "System instructions"),
    ("input", "Extra input for the request"),
    ("context", "Context or source text"),
    ("text", "Plain text to learn from"),
)


def _check_dataset(
    task: TaskState, path: str, mapping: dict[str, str] | None, model_ref: str | None, profile_id: str | None
) -> DatasetCheck:
    from studio.engine.datasets import DatasetOptions, check
    from studio.engine.errors import StudioError
    from studio.engine.models.resolve import resolve_model
    from studio.engine.progress import Span

    task.report("Preparing the model's tokenizer", 0.01)
    try:
        tokenizer_path: Path | None = resolve_model(model_ref)
    except StudioError:
        tokenizer_path = None  # still validate; token statistics need the model and come later
    options = DatasetOptions(mapping=mapping, tokenizer_path=tokenizer_path, profile=profile_id)
    return check(path, options, task=Span(task, 0.05, 1.0))


class DropZone(QFrame):
    """Accepts one dropped file.

    Signals:
        fileDropped(str): the local path of the dropped file.
    """

    fileDropped = Signal(str)  # noqa: N815 - Qt signal naming

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setAcceptDrops(True)
        self.setAccessibleName("Drop zone for your data file")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        self.label = QLabel("Drop your data file here")
        self.label.setObjectName("sectionTitle")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.label)
        hint = wrapped_label(
            "JSONL, JSON, CSV, TSV, plain text or Parquet. Studio works out the format itself."
        )
        hint.setObjectName("muted")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(hint)
        self.buttons = QHBoxLayout()
        self.buttons.addStretch(1)
        layout.addLayout(self.buttons)

    def _set_hover(self, hover: bool) -> None:
        self.setProperty("hover", hover)
        self.style().unpolish(self)
        self.style().polish(self)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if _local_file(event.mimeData().urls()) is not None:
            event.acceptProposedAction()
            self._set_hover(True)

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802 - Qt override
        self._set_hover(False)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self._set_hover(False)
        path = _local_file(event.mimeData().urls())
        if path is not None:
            event.acceptProposedAction()
            self.fileDropped.emit(path)


def _local_file(urls: list[Any]) -> str | None:
    locals_ = [url.toLocalFile() for url in urls if url.isLocalFile()]
    return locals_[0] if len(locals_) >= 1 else None


class IssueRow(QWidget):
    """One kind of problem in plain words, how many rows have it, what to do, and the rows on request."""

    SYMBOLS: ClassVar[dict[str, tuple[str, str]]] = {
        "error": ("Problem", "bad"),
        "warning": ("Warning", "warn"),
        "info": ("Note", "info"),
    }

    def __init__(self, issue: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.issue = issue
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 4)
        row = QHBoxLayout()
        label, kind = self.SYMBOLS.get(issue.severity, ("Note", "info"))
        badge = Badge(label, kind)
        row.addWidget(badge, 0, Qt.AlignmentFlag.AlignTop)
        text = issue.message
        if str(issue.count) not in text and f"{issue.count:,}" not in text:
            text += f" ({issue.count:,} {'row' if issue.count == 1 else 'rows'})"
        self.message = wrapped_label(text, selectable=True)
        row.addWidget(self.message, 1)
        self.show_rows = QPushButton("Show rows")
        self.show_rows.setCheckable(True)
        self.show_rows.setAccessibleName(f"Show the rows for: {issue.message}")
        self.show_rows.setVisible(bool(issue.examples))
        row.addWidget(self.show_rows, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(row)
        if issue.suggestion:
            layout.addWidget(wrapped_label(f"What to do: {issue.suggestion}", name="muted"))
        self.rows_view = QPlainTextEdit()
        self.rows_view.setReadOnly(True)
        self.rows_view.setAccessibleName(f"Rows with this issue: {issue.message}")
        self.rows_view.setMaximumHeight(140)
        self.rows_view.setPlainText(rows_text(issue))
        self.rows_view.hide()
        layout.addWidget(self.rows_view)
        self.show_rows.toggled.connect(self.rows_view.setVisible)


def rows_text(issue: Any) -> str:
    """The first rows with an issue as the validator recorded them (line, excerpt, detail)."""
    lines = []
    for example in issue.examples:
        detail = f"  ({example['detail']})" if example.get("detail") else ""
        lines.append(f"line {example.get('line', '?')}: {example.get('excerpt', '')}{detail}")
    if issue.count > len(lines):
        lines.append(f"… and {issue.count - len(lines):,} more.")
    return "\n".join(lines)


class DatasetPage(WizardPage):
    title = "Your data"
    intro = (
        "Give Studio examples of what the model should learn. "
        "It checks them and tells you how to fix any problems."
    )

    def __init__(self, session: WizardSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.check: DatasetCheck | None = None
        self.error: object = None
        self.switched_to_preference = False  # this file's pairs made Studio choose "Make answers better"
        self.runner = TaskRunner(self)

        self.drop = DropZone()
        self.browse = QPushButton("Browse…")
        self.browse.setAccessibleName("Browse for a data file")
        self.sample = QPushButton("Use the sample dataset")
        self.sample.setAccessibleName("Use the sample dataset for this use case")
        self.drop.buttons.insertWidget(1, self.browse)
        self.drop.buttons.insertWidget(2, self.sample)
        self.drop.buttons.addStretch(1)
        self.body.addWidget(self.drop)

        self.file_label = wrapped_label(name="sectionTitle", selectable=True)
        self.body.addWidget(self.file_label)
        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setAccessibleName("Checking progress")
        self.status = wrapped_label(name="muted")
        self.cancel = QPushButton("Cancel")
        self.cancel.setAccessibleName("Cancel the check")
        progress_row.addWidget(self.progress, 2)
        progress_row.addWidget(self.status, 3)
        progress_row.addWidget(self.cancel)
        self.progress_box = QWidget()
        self.progress_box.setLayout(progress_row)
        self.progress_box.hide()
        self.body.addWidget(self.progress_box)

        self.banner = Banner()
        self.body.addWidget(self.banner)

        self.mapping_box = QGroupBox("Which column holds what?")
        self.mapping_form = QFormLayout(self.mapping_box)
        self.mapping_combos: dict[str, QComboBox] = {}
        self.mapping_box.hide()
        self.body.addWidget(self.mapping_box)

        self.issues_box = QGroupBox("What Studio found")
        issues_layout = QVBoxLayout(self.issues_box)
        self.summary = wrapped_label(selectable=True)
        issues_layout.addWidget(self.summary)
        self.issue_rows = QVBoxLayout()
        issues_layout.addLayout(self.issue_rows)
        self.issue_widgets: list[IssueRow] = []
        self.issues_box.hide()
        self.body.addWidget(self.issues_box)

        lower = QHBoxLayout()
        self.histogram_box = QGroupBox("Example length (tokens)")
        self.histogram_layout = QVBoxLayout(self.histogram_box)
        self.histogram_note = wrapped_label(name="muted")
        self.histogram_layout.addWidget(self.histogram_note)
        self.plot: Any = None
        self.preview_box = QGroupBox("What the model will see")
        preview_layout = QVBoxLayout(self.preview_box)
        preview_layout.addWidget(
            wrapped_label(
                "Highlighted text is what the model learns to write; the rest is context.", name="muted"
            )
        )
        self.preview = QTextBrowser()
        self.preview.setAccessibleName("Preview of training examples")
        self.preview.setFixedHeight(260)
        preview_layout.addWidget(self.preview)
        lower.addWidget(self.histogram_box, 2)
        lower.addWidget(self.preview_box, 3)
        self.results = QWidget()
        self.results.setLayout(lower)
        self.results.hide()
        self.body.addWidget(self.results)
        self.body.addStretch(1)

        self.drop.fileDropped.connect(self.set_file)
        self.browse.clicked.connect(self._browse)
        self.sample.clicked.connect(self.use_sample)
        self.cancel.clicked.connect(self.runner.cancel)
        self.runner.progressChanged.connect(lambda f: self.progress.setValue(int(f * 1000)))
        self.runner.statusChanged.connect(self.status.setText)
        self.runner.finished.connect(self._on_checked)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.busyChanged.connect(self._on_busy)
        session.stateChanged.connect(self._on_state_changed)
        self._checked_for: tuple[Any, ...] | None = None

    # ---- actions ---------------------------------------------------------------------------------

    def set_file(self, path: str) -> None:
        """Take a file (dropped, browsed or the sample) and check it, again if it is the same one."""
        self._checked_for = None
        self.switched_to_preference = False
        self.session.update(dataset_path=str(Path(path)), column_mapping=None)
        if self._checked_for != self._key():  # unchanged choices: no state signal re-checked it
            self.revalidate()

    def use_sample(self) -> None:
        from studio.engine.datasets import sample_path

        self.set_file(str(sample_path(self.session.state.profile_id or "chatbot")))

    def revalidate(self) -> None:
        state = self.session.state
        if not state.dataset_path:
            return
        self.check, self.error = None, None
        self.session.set_report(None)
        self._checked_for = self._key()
        self.file_label.setText(Path(state.dataset_path).name)
        self.banner.hide()
        self.issues_box.hide()
        self.results.hide()
        path, mapping, model, profile = (
            state.dataset_path,
            state.column_mapping,
            state.model_ref,
            state.profile_id,
        )
        self.runner.start(
            lambda task: _check_dataset(task, path, mapping, model, profile), "checking your data"
        )
        self.completeChanged.emit()

    def enter(self) -> None:
        if self.session.state.dataset_path and self._checked_for != self._key() and not self.runner.busy:
            self.revalidate()
        self.sample.setFocus(Qt.FocusReason.OtherFocusReason)

    def blocker(self) -> str | None:
        if not self.session.state.dataset_path:
            return "Choose a data file (drop it here or press Browse), or use the sample dataset."
        if self.runner.busy:
            return "Studio is still checking your data. Wait a moment or press Cancel."
        if self.error is not None:
            return f"Studio could not use this file: {getattr(self.error, 'what', self.error)}"
        if self.check is None:
            return "The data has not been checked yet. Drop the file again to check it."
        if not self.check.report.usable:
            return "This data cannot be used yet. Fix the problems listed below, then drop the file again."
        return self.session.use_case_mismatch()

    def shutdown(self) -> None:
        self.runner.shutdown()
        if self.plot is not None:  # pyqtgraph's own teardown frees its parentless popup menus
            self.plot.close()
            self.plot.deleteLater()
            self.plot = None

    # ---- results ---------------------------------------------------------------------------------

    def _key(self) -> tuple[Any, ...]:
        s = self.session.state
        return (s.dataset_path, s.column_mapping, s.model_ref, s.profile_id)

    def _on_state_changed(self) -> None:
        """A new file, mapping, model or use case changes the report (its tokens, its advice): check again."""
        if self.session.state.dataset_path and self._checked_for != self._key():
            self.revalidate()

    def _browse(self) -> None:
        start = str(Path(self.session.state.dataset_path).parent) if self.session.state.dataset_path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Choose your data file", start, FILE_FILTER)
        if path:
            self.set_file(path)

    def _on_busy(self, busy: bool) -> None:
        self.session.data_checking = busy
        self.progress_box.setVisible(busy)
        if busy:
            self.progress.setValue(0)
            self.status.setText("Starting the check")
        self.completeChanged.emit()

    def _on_cancelled(self) -> None:
        self._checked_for = None
        self.banner.show_message(
            "info", "Check cancelled.", "Drop the file again or press Browse to check it."
        )
        self.completeChanged.emit()

    def _on_failed(self, error: object) -> None:
        self.error = error
        self.banner.show_error(error)
        self.completeChanged.emit()

    def _on_checked(self, check: DatasetCheck) -> None:
        from studio.engine.objectives import PREFERENCE_KINDS, PREFERENCE_PROFILE

        self.check = check
        report = check.report
        if report.usable and report.kind in PREFERENCE_KINDS and self.session.state.profile_id != PREFERENCE_PROFILE:
            # Pairs of better and worse answers can only teach a preference: choose that use case for the user.
            self.switched_to_preference = True
            self.session.update(profile_id=PREFERENCE_PROFILE)  # checks the file again for that use case
            return
        self.session.set_report(report)
        self._show_mapping(check.inspection)
        self._show_issues(report)
        self._show_histogram(report)
        self._show_preview(check.preview)
        mismatch = self.session.use_case_mismatch()
        if mismatch is not None:
            self.banner.show_message("bad", "This data does not fit the use case you chose.", mismatch)
        elif report.usable:
            switched = (" It holds pairs of a better and a worse answer, so Studio chose the use case "
                        "“Make answers better” (preference tuning) for it.") if self.switched_to_preference else ""
            self.banner.show_message(
                "ok",
                f"Ready: {report.rows_usable:,} of {report.rows_read:,} examples can be used for training.",
                switched.strip(),
            )
        else:
            first = next((i for i in report.issues if i.severity == "error"), None)
            detail = f"{first.message} {first.suggestion or ''}".strip() if first is not None else ""
            self.banner.show_message("bad", "This data cannot be used yet.", detail)
        self.completeChanged.emit()

    def _show_mapping(self, inspection: Any) -> None:
        """Offer a role for every column when Studio had to guess or could not tell, or the user chose."""
        while self.mapping_form.rowCount():
            self.mapping_form.removeRow(0)
        self.mapping_combos.clear()
        chosen = self.session.state.column_mapping or inspection.mapping
        unsure = inspection.guessed or inspection.schema is None or bool(self.session.state.column_mapping)
        if not (unsure and inspection.columns):
            self.mapping_box.hide()
            return
        intro = "Studio guessed which columns to use. Check its guess:" if chosen else (
            "Studio cannot tell which columns hold the prompt and the answer. Choose them:"
        )
        self.mapping_form.addRow(wrapped_label(intro))
        for column in inspection.columns:
            combo = QComboBox()
            for role, label in ROLE_LABELS:
                combo.addItem(label, role)
            combo.setCurrentIndex(max(0, combo.findData(chosen.get(column, ""))))
            combo.setAccessibleName(f"Role of the column {column}")
            combo.activated.connect(self._on_mapping_changed)
            self.mapping_combos[column] = combo
            self.mapping_form.addRow(f"“{column}”:", combo)
        self.mapping_box.show()

    def _on_mapping_changed(self) -> None:
        combos = self.mapping_combos.items()
        mapping = {column: combo.currentData() for column, combo in combos if combo.currentData()}
        self.session.update(column_mapping=mapping or None)  # the state change starts a new check

    def _show_issues(self, report: Any) -> None:
        skipped = report.rows_read - report.rows_usable
        read_as = ", ".join(part for part in ((report.format or "").upper(), report.encoding) if part)
        self.summary.setText(
            (f"Read as {read_as}. " if read_as else "")
            + f"{report.rows_read:,} rows read, {report.rows_usable:,} usable"
            + (f", {skipped:,} skipped." if skipped > 0 else ".")
        )
        for widget in self.issue_widgets:
            self.issue_rows.removeWidget(widget)
            widget.deleteLater()
        self.issue_widgets = [IssueRow(issue) for issue in report.issues]
        for widget in self.issue_widgets:
            self.issue_rows.addWidget(widget)
        if not self.issue_widgets:
            self.summary.setText(self.summary.text() + " No problems found.")
        self.issues_box.show()

    def _show_histogram(self, report: Any) -> None:
        stats = report.stats
        histogram = stats.histogram if stats is not None else {}
        bins, counts = list(histogram.get("edges", [])), list(histogram.get("counts", []))
        if not counts or len(bins) < len(counts) + 1:
            self.histogram_note.setText("Token statistics appear once the model's tokenizer is available.")
            if self.plot is not None:
                self.plot.hide()
            self.results.show()
            return
        import pyqtgraph as pg

        if self.plot is None:
            self.plot = pg.PlotWidget()
            self.plot.setAccessibleName("Histogram of example lengths in tokens")
            self.plot.setFixedHeight(220)
            self.plot.setMouseEnabled(x=False, y=False)
            self.plot.setMenuEnabled(False)
            self.plot.setLabel("bottom", "tokens per example")
            self.plot.setLabel("left", "examples")
            self.histogram_layout.addWidget(self.plot)
        c = colors()
        self.plot.setBackground(c.base)
        self.plot.clear()
        widths = [bins[i + 1] - bins[i] for i in range(len(counts))]
        centers = [bins[i] + widths[i] / 2 for i in range(len(counts))]
        self.plot.addItem(
            pg.BarGraphItem(x=centers, height=counts, width=widths, brush=c.highlight, pen=c.border)
        )
        self.plot.show()
        note = (
            f"Typical example: {stats.p50} tokens. 90% are at most {stats.p90}, 99% at most {stats.p99}; "
            f"the longest has {stats.max}."
        )
        if stats.over_max_length:
            note += (
                f" {stats.over_max_length:,} examples ({stats.over_max_length_share:.0%}) are longer than "
                f"{stats.max_length} tokens and would be cut."
            )
        self.histogram_note.setText(note)
        self.results.show()

    def _show_preview(self, preview: list[Any]) -> None:
        if not preview:
            self.preview.setPlainText("A preview appears once the data is usable.")
            return
        trained = colors().trained
        blocks = []
        for number, example in enumerate(preview, start=1):
            segments = example.segments
            parts = [
                f'<span style="background:{trained}">{html.escape(text)}</span>'
                if is_trained
                else html.escape(text)
                for text, is_trained in segments
            ]
            blocks.append(
                f"<p><b>Example {number}</b> ({example.tokens} tokens)</p>"
                f"<pre style='white-space:pre-wrap'>{''.join(parts)}</pre>"
            )
        self.preview.setHtml("".join(blocks))
