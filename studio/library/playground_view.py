"""The playground: the base model and one or two tuned runs answer the same prompt side by side, streamed.

Models load and generate in the background (studio.gui.tasks); each new piece of text arrives as a queued
signal and is appended to its column, so the window stays responsive and Stop works mid-answer.

Signals:
    backRequested(): the user wants to go back to the list.
    answered(object): a dict {target label: answer} once every model has answered (or Stop was pressed).
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.engine.library.playground import (
    GenerationSettings,
    Playground,
    Target,
    example_prompts,
    load_history,
    targets_for,
)
from studio.engine.progress import Callbacks
from studio.engine.runs.registry import RunRecord
from studio.gui.help import help_button
from studio.gui.tasks import TaskRunner, TaskState
from studio.gui.widgets import Banner, wrapped_label


class PlaygroundView(QWidget):
    backRequested = Signal()  # noqa: N815 - Qt signal naming
    answered = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._playground: Playground | None = None
        self._runs: list[RunRecord] = []
        self._columns: dict[str, QPlainTextEdit] = {}
        self._cancel = threading.Event()
        self._prompt_sent = ""
        self.runner = TaskRunner(self)
        self.runner.partialResult.connect(self._on_chunk)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(lambda: self._on_finished(None))
        self.runner.busyChanged.connect(self._on_busy)

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.back_button = QPushButton("← Library")
        self.back_button.clicked.connect(self.backRequested)
        self.title = QLabel("Playground")
        self.title.setObjectName("pageTitle")
        top.addWidget(self.back_button)
        top.addWidget(self.title, 1)
        top.addWidget(help_button("playground", "the playground"))
        layout.addLayout(top)
        self.banner = Banner()
        layout.addWidget(self.banner)

        self.answers_row = QHBoxLayout()
        answers = QWidget()
        answers.setLayout(self.answers_row)

        controls = QWidget()
        controls_layout = QHBoxLayout(controls)
        controls_layout.setContentsMargins(0, 0, 0, 0)
        ask = QVBoxLayout()
        self.examples = QComboBox()
        self.examples.setAccessibleName("Example prompts")
        self.examples.activated.connect(self._use_example)
        ask.addWidget(self.examples)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Ask something, then press Send. Every model answers the same prompt.")
        self.prompt.setAccessibleName("Prompt")
        self.prompt.setMaximumHeight(90)
        ask.addWidget(self.prompt)
        buttons = QHBoxLayout()
        self.status = wrapped_label("", name="muted")
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.runner.statusChanged.connect(self.status.setText)
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        ask.addLayout(buttons)
        controls_layout.addLayout(ask, 3)

        settings = QGroupBox("Generation")
        form = QFormLayout(settings)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.7)
        self.temperature.setToolTip("0 gives the same answer every time; higher values vary more.")
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.05, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(0.9)
        self.top_p.setToolTip("Only the most likely words that together make up this share are considered.")
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 2048)
        self.max_tokens.setValue(128)
        self.max_tokens.setToolTip("The longest answer, in tokens (about ¾ of a word each).")
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Max tokens", self.max_tokens)
        controls_layout.addWidget(settings, 1)

        history_box = QGroupBox("History")
        history_layout = QVBoxLayout(history_box)
        self.history = QListWidget()
        self.history.setAccessibleName("Earlier prompts")
        self.history.itemActivated.connect(self._show_history)
        self.history.itemClicked.connect(self._show_history)
        history_layout.addWidget(self.history)
        controls_layout.addWidget(history_box, 2)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(answers)
        splitter.addWidget(controls)
        splitter.setSizes([380, 200])
        layout.addWidget(splitter, 1)

    # ---- set-up --------------------------------------------------------------------------------------

    def set_runs(self, runs: list[RunRecord]) -> None:
        """Answer with the base model and these one or two trained runs."""
        from studio.engine.errors import StudioError

        self.stop()
        self._runs = list(runs)
        try:
            targets = targets_for(self._runs)
        except StudioError as error:
            self.banner.show_error(error)
            self.send_button.setEnabled(False)
            return
        self.banner.hide()
        self.send_button.setEnabled(True)
        self._playground = Playground(targets)
        self.title.setText("Playground: " + ", ".join(t.label for t in targets if t.run is not None))
        self._build_columns(targets)
        self.examples.clear()
        self.examples.addItem("Example prompts…")
        self.examples.addItems(example_prompts(self._runs[0]))
        self._load_history()

    def _build_columns(self, targets: list[Target]) -> None:
        while self.answers_row.count():
            item = self.answers_row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self._columns.clear()
        for target in targets:
            column = QWidget()
            box = QVBoxLayout(column)
            box.setContentsMargins(0, 0, 0, 0)
            header = QLabel(f"<b>{target.label}</b>")
            text = QPlainTextEdit()
            text.setReadOnly(True)
            text.setAccessibleName(f"Answer of {target.label}")
            box.addWidget(header)
            box.addWidget(text)
            self.answers_row.addWidget(column, 1)
            self._columns[target.key] = text

    def _load_history(self) -> None:
        self.history.clear()
        for entry in reversed(load_history(self._runs[0].run_dir)):
            item = QListWidgetItem(entry["prompt"].splitlines()[0][:80] if entry["prompt"] else "(empty)")
            item.setData(Qt.ItemDataRole.UserRole, entry)
            item.setToolTip(entry["ts"])
            self.history.addItem(item)

    # ---- asking ---------------------------------------------------------------------------------------

    def answer_text(self, key: str) -> str:
        """What the column of `key` ("base" or a run id) shows now."""
        return self._columns[key].toPlainText()

    def send(self) -> None:
        from studio.engine.errors import StudioError

        if self._playground is None or self.runner.busy:
            return
        try:
            settings = GenerationSettings(self.temperature.value(), self.top_p.value(),
                                          self.max_tokens.value())
        except StudioError as error:
            self.banner.show_error(error)
            return
        prompt = self.prompt.toPlainText().strip()
        if not prompt:
            self.banner.show_message("info", "Type a prompt first.", "Or pick one of the example prompts.")
            return
        self.banner.hide()
        for column in self._columns.values():
            column.clear()
        self._cancel = threading.Event()
        self._prompt_sent = prompt
        playground, cancel = self._playground, self._cancel

        def task(state: TaskState) -> dict[str, str]:
            playground.load(Callbacks(lambda message, _fraction: state.set_status(message + "…")))
            state.set_status("Answering…")
            return playground.ask(prompt, settings, lambda key, text: state.set_partial_result((key, text)),
                                  cancel)

        self.runner.start(task, "generating answers")

    def stop(self) -> None:
        self._cancel.set()

    def shutdown(self) -> None:
        """Stop generating and wait for the background thread; call before the view goes away."""
        self._cancel.set()
        self.runner.shutdown()

    def _on_chunk(self, value: Any) -> None:
        key, text = value
        column = self._columns.get(key)
        if column is not None:
            cursor = column.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(text)
            column.setTextCursor(cursor)

    def _on_finished(self, answers: object) -> None:
        self.status.setText("Stopped." if self._cancel.is_set() else "")
        self._load_history()
        labels = {t.key: t.label for t in (self._playground.targets if self._playground else [])}
        given: dict[str, str] = answers if isinstance(answers, dict) else {}
        self.answered.emit({labels.get(k, k): v for k, v in given.items()})

    def _on_failed(self, error: object) -> None:
        self.status.setText("")
        self.banner.show_error(error)

    def _on_busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)

    def _use_example(self, index: int) -> None:
        if index > 0:
            self.prompt.setPlainText(self.examples.itemText(index))

    def _show_history(self, item: QListWidgetItem) -> None:
        entry = item.data(Qt.ItemDataRole.UserRole)
        if self.runner.busy or not isinstance(entry, dict):
            return
        self.prompt.setPlainText(entry["prompt"])
        by_label = entry.get("answers", {})
        for target in self._playground.targets if self._playground else []:
            self._columns[target.key].setPlainText(by_label.get(target.label, ""))
