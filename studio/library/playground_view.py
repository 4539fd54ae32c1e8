"""The playground: a real conversation with the trained model, beside the base model it started from.

Both models get every message; each continues from its own earlier answers (trimmed to what it can read, with
a note when older turns were left out). Models load and answer in the background (studio.gui.tasks); each
new piece of text arrives as a queued signal and is appended to its transcript, so the window stays
responsive and Stop works mid-answer. Conversations are saved with the run, can be exported as JSONL, and a
corrected answer can be added to a copy of the run's dataset for its next version.

Opening runs reads their files (the adapter folders, the profile, the saved conversations) on the background
worker too, with "Loading…" shown meanwhile; afterwards the view keeps the saved conversations in memory,
updated as it saves them, so nothing reads the run folder on the GUI thread.

Signals:
    backRequested(): the user wants to go back to the list.
    answered(object): a dict {target label: answer} once every model has answered (or Stop was pressed).
    loaded(): the runs were opened (or why they could not be is shown).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.engine.library.conversations import (
    Conversation,
    add_correction,
    export_jsonl,
    load_conversations,
)
from studio.engine.library.playground import ChatTurn, Playground, Target, example_prompts, targets_for
from studio.engine.progress import Callbacks
from studio.engine.runs.registry import RunRecord
from studio.gui.glossary import explain_terms
from studio.gui.help import help_button
from studio.gui.tasks import TaskRunner, TaskState
from studio.gui.widgets import Banner, wrapped_label
from studio.library.chat_settings import GenerationBox, SystemPromptBox
from studio.library.chat_transcript import TranscriptColumn


@dataclass(frozen=True)
class Opened:
    """What opening runs reads from their folders (on the worker thread)."""

    targets: list[Target]
    prompts: list[str]
    conversations: list[Conversation]


def open_runs(runs: list[RunRecord]) -> Opened:
    targets = targets_for(runs)
    return Opened(targets, example_prompts(runs[0]), load_conversations(runs[0].run_dir))


class PlaygroundView(QWidget):
    backRequested = Signal()  # noqa: N815 - Qt signal naming
    answered = Signal(object)
    loaded = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._playground: Playground | None = None
        self._runs: list[RunRecord] = []
        self._saved: list[Conversation] = []  # the first run's saved conversations, oldest first
        self.loader = TaskRunner(self)  # opens runs: reads their folders in the background
        self.loader.finished.connect(self._on_opened)
        self.loader.failed.connect(self._on_open_failed)
        self._columns: dict[str, TranscriptColumn] = {}
        self._conversation = Conversation()
        self._correcting: str | None = None
        self._cancel = threading.Event()
        self.runner = TaskRunner(self)
        self.runner.partialResult.connect(self._on_partial)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(lambda: self._on_finished(None))
        self.runner.busyChanged.connect(self._on_busy)

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.back_button = QPushButton("← Library")
        self.back_button.setAccessibleName("Back to the library")
        self.back_button.clicked.connect(self.backRequested)
        self.title = QLabel("Playground")
        self.title.setObjectName("pageTitle")
        top.addWidget(self.back_button)
        top.addWidget(self.title, 1)
        top.addWidget(help_button("playground", "the playground"))
        layout.addLayout(top)
        self.banner = Banner()
        layout.addWidget(self.banner)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_chat())
        splitter.addWidget(self._build_side())
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([1000, 330])
        layout.addWidget(splitter, 1)
        explain_terms(self)

    def _build_chat(self) -> QWidget:
        chat = QWidget()
        box = QVBoxLayout(chat)
        box.setContentsMargins(0, 0, 0, 0)
        self.transcripts_row = QHBoxLayout()
        box.addLayout(self.transcripts_row, 1)

        self.correction = QGroupBox("Correct the answer")
        self.correction.setToolTip("The answer you wanted, added with the conversation so far to a copy of your "
                                   "dataset. Your original file is never changed.")
        fix = QVBoxLayout(self.correction)
        fix.addWidget(wrapped_label("Edit the answer into the one you wanted. Studio adds it, with the "
                                    "conversation so far, to a copy of your dataset; the next version of this "
                                    "model (Continue training in the library) trains on that copy.", name="muted"))
        self.correction_edit = QPlainTextEdit()
        self.correction_edit.setAccessibleName("Corrected answer")
        self.correction_edit.setMaximumHeight(80)
        fix.addWidget(self.correction_edit)
        fix_buttons = QHBoxLayout()
        fix_buttons.addStretch(1)
        self.cancel_correction_button = QPushButton("Cancel")
        self.cancel_correction_button.setAccessibleName("Cancel the correction")
        self.cancel_correction_button.clicked.connect(self._close_correction)
        self.add_correction_button = QPushButton("Add this answer to my dataset")
        self.add_correction_button.setToolTip("Adds the conversation so far, with your answer, to a copy of the "
                                              "dataset this version was trained on.")
        self.add_correction_button.clicked.connect(self.add_correction)
        fix_buttons.addWidget(self.cancel_correction_button)
        fix_buttons.addWidget(self.add_correction_button)
        fix.addLayout(fix_buttons)
        self.correction.hide()
        box.addWidget(self.correction)

        self.examples = QComboBox()
        self.examples.setAccessibleName("Example prompts")
        self.examples.setToolTip("Messages that suit what this model was trained for; pick one to fill the box.")
        self.examples.activated.connect(self._use_example)
        box.addWidget(self.examples)
        ask = QHBoxLayout()
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Type a message, then press Send (or Ctrl+Enter). Both models answer, "
                                       "each continuing its own conversation.")
        self.prompt.setAccessibleName("Message")
        self.prompt.setMaximumHeight(70)
        ask.addWidget(self.prompt, 1)
        buttons = QVBoxLayout()
        self.send_button = QPushButton("Send")
        self.send_button.setAccessibleName("Send the message")
        self.send_button.setDefault(True)
        self.send_button.setToolTip("Send the message to both models (Ctrl+Enter).")
        self.send_button.clicked.connect(self.send)
        self.prompt.installEventFilter(self)  # Ctrl+Enter in the message box sends it
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop the answer")
        self.stop_button.setToolTip("Stop writing now; what was written so far is kept.")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        ask.addLayout(buttons)
        box.addLayout(ask)
        self.status = wrapped_label("", name="muted")
        self.runner.statusChanged.connect(self.status.setText)
        box.addWidget(self.status)
        return chat

    def _build_side(self) -> QWidget:
        side = QWidget()
        side.setMinimumWidth(300)
        side.setMaximumWidth(380)
        box = QVBoxLayout(side)
        box.setContentsMargins(0, 0, 0, 0)
        saved = QGroupBox("Conversations")
        saved.setToolTip("Every conversation is saved with this run; pick one to see it again and go on.")
        saved_box = QVBoxLayout(saved)
        self.conversations = QListWidget()
        self.conversations.setAccessibleName("Saved conversations")
        self.conversations.itemClicked.connect(self._open_item)
        self.conversations.itemActivated.connect(self._open_item)
        saved_box.addWidget(self.conversations, 1)
        row = QHBoxLayout()
        self.new_button = QPushButton("New conversation")
        self.new_button.setAccessibleName("Start a new conversation")
        self.new_button.clicked.connect(self.new_conversation)
        self.export_button = QPushButton("Export as JSONL…")
        self.export_button.setAccessibleName("Export conversations as JSONL")
        self.export_button.setToolTip("Save this run's conversations as a JSONL file: one line per conversation, "
                                      "in the chat format Studio trains on.")
        self.export_button.clicked.connect(self._choose_export)
        row.addWidget(self.new_button)
        row.addWidget(self.export_button)
        saved_box.addLayout(row)
        box.addWidget(saved, 1)
        self.system_box = SystemPromptBox()
        self.system_prompt = self.system_box.edit
        box.addWidget(self.system_box)
        self.generation = GenerationBox()
        self.temperature, self.top_p = self.generation.temperature, self.generation.top_p
        self.max_tokens = self.generation.max_tokens
        box.addWidget(self.generation)
        return side

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        """Ctrl+Enter in the message box sends the message (Enter alone starts a new line)."""
        if watched is self.prompt and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            ctrl = event.modifiers() & Qt.KeyboardModifier.ControlModifier
            if ctrl and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.send()
                return True
        return super().eventFilter(watched, event)

    # ---- set-up --------------------------------------------------------------------------------------

    def set_runs(self, runs: list[RunRecord]) -> None:
        """Chat with the base model and these one or two trained runs, once their files are read (in the
        background; "Loading…" until then)."""
        self.stop()
        self._runs = list(runs)
        self._playground = None
        self._saved = []
        self.banner.hide()
        self.send_button.setEnabled(False)
        self.title.setText("Playground: loading…")
        self.status.setText("Loading…")
        self._build_columns([])
        self.examples.clear()
        self.conversations.clear()
        self._close_correction()
        runs = list(runs)

        def read(_state: TaskState) -> Opened:
            return open_runs(runs)

        self.loader.start(read, "opening the runs in the playground")

    @property
    def loading(self) -> bool:
        return self.loader.busy

    def _on_opened(self, result: object) -> None:
        opened = cast(Opened, result)
        self.status.setText("")
        self.send_button.setEnabled(not self.runner.busy)
        self._playground = Playground(opened.targets)
        self.title.setText("Playground: " + ", ".join(t.label for t in opened.targets if t.run is not None))
        self._build_columns(opened.targets)
        self.examples.clear()
        self.examples.addItem("Example prompts…")
        self.examples.addItems(opened.prompts)
        self._saved = list(opened.conversations)
        self._conversation = Conversation(system_prompt=self.system_box.text())
        self._close_correction()
        self._show_conversation()
        self._load_conversations()
        explain_terms(self)
        self.loaded.emit()

    def _on_open_failed(self, error: object) -> None:
        self.status.setText("")
        self.title.setText("Playground")
        self.banner.show_error(error)
        self.send_button.setEnabled(False)
        self.loaded.emit()

    def _build_columns(self, targets: list[Target]) -> None:
        while self.transcripts_row.count():
            item = self.transcripts_row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self._columns.clear()
        for target in targets:
            column = TranscriptColumn(target.key, target.label, tuned=target.run is not None)
            if column.correct_button is not None:
                column.correct_button.clicked.connect(lambda _=False, key=target.key: self.start_correction(key))
            self.transcripts_row.addWidget(column, 1)
            self._columns[target.key] = column
        height = max((column.header_height() for column in self._columns.values()), default=0)
        for column in self._columns.values():
            column.align_header(height)

    def _remember(self, conversation: Conversation) -> None:
        """The conversation was just saved with the run: keep the list in memory as the file now has it."""
        self._saved = sorted([c for c in self._saved if c.id != conversation.id] + [conversation],
                             key=lambda c: c.created)

    def _load_conversations(self) -> None:
        """List the saved conversations, newest first (from memory: read when the runs were opened)."""
        self.conversations.clear()
        if not self._runs:
            return
        for conversation in reversed(self._saved):
            item = QListWidgetItem(f"{conversation.title}\n{conversation.updated[:16].replace('T', ' ')}")
            item.setData(Qt.ItemDataRole.UserRole, conversation.id)
            item.setToolTip(conversation.title)
            self.conversations.addItem(item)
            if conversation.id == self._conversation.id:
                item.setSelected(True)

    def _show_conversation(self) -> None:
        for key, column in self._columns.items():
            column.set_turns(self._conversation.sides.get(key, []))
            column.set_dropped(0)
        self._update_buttons()

    # ---- talking -------------------------------------------------------------------------------------

    @property
    def conversation(self) -> Conversation:
        """The conversation shown now (saved with the run once its first message is answered)."""
        return self._conversation

    @property
    def playground(self) -> Playground | None:
        return self._playground

    def answer_text(self, key: str) -> str:
        """The last answer of `key` ("base" or a run id), as far as it got."""
        return self._columns[key].last_answer()

    def transcript_text(self, key: str) -> str:
        """Everything the transcript of `key` shows now."""
        return self._columns[key].view.toPlainText()

    def send(self) -> None:
        from studio.engine.errors import StudioError

        if self._playground is None or self.runner.busy:
            return
        try:
            settings = self.generation.settings()
        except StudioError as error:
            self.banner.show_error(error)
            return
        prompt = self.prompt.toPlainText().strip()
        if not prompt:
            self.banner.show_message("info", "Type a prompt first.", "Or pick one of the example prompts.")
            return
        self.banner.hide()
        self._close_correction()
        conversation = self._conversation
        conversation.system_prompt = self.system_box.text()
        for column in self._columns.values():
            column.begin_answer(prompt)
        self.prompt.clear()
        self._cancel = threading.Event()
        playground, cancel = self._playground, self._cancel

        def task(state: TaskState) -> ChatTurn:
            playground.load(Callbacks(lambda message, _fraction: state.set_status(message + "…")))
            state.set_status("Answering…")
            try:
                return playground.chat(conversation, prompt, settings,
                                       lambda key, text: state.set_partial_result(("text", key, text)), cancel,
                                       on_trimmed=lambda key, n: state.set_partial_result(("dropped", key, n)))
            finally:
                if any(conversation.sides.values()):
                    playground.save(conversation)

        self.runner.start(task, "answering in the playground")

    def stop(self) -> None:
        self._cancel.set()

    def shutdown(self) -> None:
        """Stop generating and wait for the background thread; call before the view goes away."""
        self._cancel.set()
        self.loader.shutdown()
        self.runner.shutdown()

    def new_conversation(self) -> None:
        """Start over: an empty conversation (the system prompt and settings stay as they are)."""
        if self.runner.busy:
            return
        self._conversation = Conversation(system_prompt=self.system_box.text())
        self._close_correction()
        self.banner.hide()
        self.conversations.clearSelection()
        self._show_conversation()

    def open_conversation(self, conversation_id: str) -> None:
        """Show a saved conversation again; the next message goes on from it."""
        if self.runner.busy or not self._runs:
            return
        found = next((c for c in self._saved if c.id == conversation_id), None)
        if found is None:
            return
        self._conversation = found
        self.system_box.set_text(found.system_prompt)
        self._close_correction()
        self._show_conversation()

    def _open_item(self, item: QListWidgetItem) -> None:
        self.open_conversation(str(item.data(Qt.ItemDataRole.UserRole)))

    def _on_partial(self, value: Any) -> None:
        kind, key, payload = value
        column = self._columns.get(key)
        if column is None:
            return
        if kind == "text":
            column.add_text(payload)
        else:
            column.set_dropped(int(payload))

    def _on_finished(self, result: object) -> None:
        if any(self._conversation.sides.values()) and not self.loader.busy:
            self._remember(self._conversation)  # the task saved it with the run
        stopped = self._cancel.is_set()
        self.status.setText("Stopped. What was written so far is kept." if stopped else "")
        for key, column in self._columns.items():
            column.set_turns(self._conversation.sides.get(key, []))
        self._load_conversations()
        self._update_buttons()
        labels = {t.key: t.label for t in (self._playground.targets if self._playground else [])}
        answers = result.answers if isinstance(result, ChatTurn) else {}
        self.answered.emit({labels.get(k, k): v for k, v in answers.items()})

    def _on_failed(self, error: object) -> None:
        if any(self._conversation.sides.values()) and not self.loader.busy:
            self._remember(self._conversation)
        self.status.setText("")
        for key, column in self._columns.items():
            column.set_turns(self._conversation.sides.get(key, []))
        self.banner.show_error(error)
        self._update_buttons()

    def _on_busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy and self._playground is not None)
        self.stop_button.setEnabled(busy)
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.runner.busy
        for button in (self.new_button, self.export_button, self.conversations):
            button.setEnabled(not busy)
        for key, column in self._columns.items():
            if column.correct_button is not None:
                column.correct_button.setEnabled(not busy and self._conversation.last_answer(key) is not None)

    def _use_example(self, index: int) -> None:
        if index > 0:
            self.prompt.setPlainText(self.examples.itemText(index))

    # ---- exporting -----------------------------------------------------------------------------------

    def _tuned(self) -> Target | None:
        return next((t for t in self._playground.targets if t.run is not None), None) if self._playground else None

    def _choose_export(self) -> None:
        tuned = self._tuned()
        if tuned is None or tuned.run is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export conversations as JSONL",
                                              str(Path.home() / f"{tuned.run.name}-conversations.jsonl"),
                                              "JSON Lines (*.jsonl)")
        if path:
            self.export_to(Path(path))

    def export_to(self, path: Path) -> int:
        """Write this run's saved conversations, with the trained version's answers, as JSONL (the chat
        format Studio trains on); returns how many were written and says so on screen."""
        from studio.engine.errors import StudioError

        tuned = self._tuned()
        if tuned is None or tuned.run is None:
            return 0
        try:
            count = export_jsonl(self._saved, tuned.key, path)
        except (OSError, StudioError) as error:
            self.banner.show_error(error)
            return 0
        if count == 0:
            self.banner.show_message("info", "There is no answered conversation to export yet.",
                                     "Send a message first; every conversation is saved with the run.")
        else:
            self.banner.show_message("ok", f"Exported {count} conversation{'s' if count > 1 else ''}.",
                                     f"{path}: one line per conversation with the answers of {tuned.label}, "
                                     "in the chat format Studio trains on.")
        return count

    # ---- correcting an answer ------------------------------------------------------------------------

    def start_correction(self, key: str) -> None:
        """Open the editor on `key`'s last answer, to turn it into the answer wanted."""
        answer = self._conversation.last_answer(key)
        if self.runner.busy or answer is None:
            return
        self._correcting = key
        self.correction.setTitle(f"Correct the last answer of {self._columns[key].label}")
        self.correction_edit.setPlainText(answer)
        self.correction.show()
        self.correction_edit.setFocus()

    def add_correction(self) -> Path | None:
        """Add the conversation so far, with the corrected answer, to a copy of the run's dataset."""
        from studio.engine.errors import StudioError

        key = self._correcting
        target = next((t for t in self._playground.targets if t.key == key), None) if self._playground else None
        if target is None or target.run is None:
            return None
        run = target.run
        source = run.dataset or str(run.config.get("dataset_path") or "") or None
        try:
            copy = add_correction(run.run_dir, source, self._conversation, target.key,
                                  self.correction_edit.toPlainText())
        except StudioError as error:
            self.banner.show_error(error)
            return None
        assert self._playground is not None
        self._playground.save(self._conversation)
        self._remember(self._conversation)
        self._close_correction()
        self._show_conversation()
        self._load_conversations()
        self.banner.show_message(
            "ok", "Added to a copy of your dataset.",
            f"{copy}\nYour original file is unchanged. The next version of {target.label} trains on this copy: "
            "choose the run in the library and press Continue training.")
        return copy

    def _close_correction(self) -> None:
        self._correcting = None
        self.correction.hide()
