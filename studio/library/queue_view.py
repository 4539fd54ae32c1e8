"""The run queue at the top of the runs library: the runs lined up on this machine, in order, with their
estimated start and finish, their conditions, and the buttons to reorder, remove, pause and start the queue.

The queue lives in the run registry and is worked through by a separate process (`studio queue run`), so it
goes on when the window closes. This view only reads and edits the registry: a few small SQLite queries,
every two seconds while it is on screen. A run joins the line at once; its training time is estimated
afterwards in the background (the planner checks the dataset with the tokenizer, seconds).

Signals:
    watchRequested(str): run id of the queued run now training, to follow in the dashboard.
    added(object): a QueueEntry that was added from here.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.errors import StudioError
from studio.engine.frozen import module_command
from studio.engine.paths import studio_home
from studio.engine.queue import QueueEntry, RunQueue, Schedules, Slot, runner_busy, stop_runner, timeline
from studio.engine.runs.registry import Registry
from studio.gui.tables import fit_rows
from studio.gui.tasks import TaskRunner
from studio.gui.widgets import Badge, Banner, wrapped_label
from studio.library.confirm import ask
from studio.library.schedules_view import ScheduleList
from studio.library.times import clock

if TYPE_CHECKING:
    from studio.engine.config import TrainConfig

log = logging.getLogger(__name__)

COLUMNS = ("Run", "State", "Starts", "Finishes", "Condition")
REFRESH_MS = 2000
STARTING_S = 15.0  # how long "Starting…" is shown before a runner that never took the queue counts as gone
VISIBLE_ROWS = 5
ENTRY_ROLE = Qt.ItemDataRole.UserRole

Launcher = Callable[[list[str]], "subprocess.Popen[bytes] | None"]
Estimator = Callable[["TrainConfig"], "float | None"]


def runner_command(watch: bool) -> list[str]:
    """The headless runner; with schedules it keeps watching for retrains after the queue is empty."""
    return module_command("studio.cli.main", "queue", "run", *(["--watch"] if watch else []))


def runner_log() -> Path:
    logs = studio_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs / "queue-runner.log"


def start_runner(command: list[str]) -> subprocess.Popen[bytes]:
    """Start the runner in its own session, detached from the window: closing Studio (or its terminal)
    does not stop the queue. What it prints goes to logs/queue-runner.log in the Studio home."""
    with runner_log().open("ab") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def condition_text(entry: QueueEntry) -> str:
    parts = []
    if entry.not_before is not None:
        parts.append(f"not before {clock(entry.not_before)}")
    if entry.when_idle:
        parts.append("when the computer is idle")
    if entry.automatic:
        parts.append("automatic retrain")
    return ", ".join(parts) or "–"


def _label(entry: QueueEntry) -> str:
    return f"{entry.name} {entry.version}"


class QueueView(QWidget):
    watchRequested = Signal(str)  # noqa: N815 - Qt signal naming
    added = Signal(object)

    def __init__(self, registry: Registry | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry or Registry()
        self.queue = RunQueue(self.registry)
        self.slots: list[Slot] = []
        self.paused = False
        self.busy = False
        self.launcher: Launcher = start_runner
        """Starts the runner process; replaceable (tests must not train a queue)."""
        self.runner_process: subprocess.Popen[bytes] | None = None
        self.estimate: Estimator = _estimate
        """The planner's training-time estimate; replaceable (tests that are not about it skip its seconds)."""
        self.confirm: Callable[[str, str], bool] = lambda title, text: ask(self, title, text)
        self._starting_until = 0.0
        self._unestimated: list[tuple[int, TrainConfig]] = []
        self.estimator = TaskRunner(self)
        self.estimator.finished.connect(self._on_estimated)
        self.estimator.failed.connect(lambda _error: self._estimate_next())  # the finish time stays a guess
        self.estimator.cancelled.connect(self._estimate_next)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        title = QLabel("Queue")
        title.setObjectName("sectionTitle")
        self.state_badge = Badge("Not running")
        self.state_badge.setAccessibleName("Queue state")
        self.state_detail = wrapped_label(name="muted")
        self.start_button = QPushButton("Start queue")
        self.start_button.setObjectName("primary")
        self.start_button.clicked.connect(self.start_queue)
        self.pause_button = QPushButton("Pause queue")
        self.pause_button.setToolTip("The run in progress finishes; nothing new starts until you resume.")
        self.pause_button.clicked.connect(self.toggle_pause)
        header.addWidget(title)
        header.addWidget(self.state_badge)
        header.addWidget(self.state_detail, 1)
        header.addWidget(self.pause_button)
        header.addWidget(self.start_button)
        layout.addLayout(header)
        self.banner = Banner()
        layout.addWidget(self.banner)

        body = QHBoxLayout()
        lane = QVBoxLayout()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setTabKeyNavigation(False)  # Tab moves on to the next control; arrows move in it
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAccessibleName("Queued runs")
        header_view = self.table.horizontalHeader()
        header_view.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header_view.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.empty = wrapped_label(
            "Nothing is queued. Line runs up with “Add to queue” in the wizard's last step: they train one after "
            "another, also while Studio is closed.", name="muted")
        lane.addWidget(self.table)
        lane.addWidget(self.empty)
        self.up_button = QPushButton("Move up")
        self.down_button = QPushButton("Move down")
        self.remove_button = QPushButton("Remove…")
        self.watch_button = QPushButton("Watch")
        self.watch_button.setToolTip("Follow the queued run that is training now in the dashboard.")
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button.clicked.connect(lambda: self.move_selected(1))
        self.remove_button.clicked.connect(self.remove_selected)
        self.watch_button.clicked.connect(self._watch)
        self.entry_buttons = QWidget()
        buttons = QHBoxLayout(self.entry_buttons)
        buttons.setContentsMargins(0, 0, 0, 0)
        for button in (self.up_button, self.down_button, self.remove_button, self.watch_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        lane.addWidget(self.entry_buttons)
        lane.addStretch(1)
        body.addLayout(lane, 3)
        self.schedule_list = ScheduleList(Schedules(self.registry))
        self.schedule_list.changed.connect(self.refresh)
        body.addWidget(self.schedule_list, 2)
        layout.addLayout(body)
        self._update_buttons()

    # ---- reading --------------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        """Fresh on screen, and every two seconds while it stays there."""
        super().showEvent(event)
        self.refresh()
        self.timer.start()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 - Qt override
        self.timer.stop()
        super().hideEvent(event)

    @property
    def entries(self) -> list[QueueEntry]:
        return [slot.entry for slot in self.slots]

    def refresh(self) -> None:
        """Read the queue, its state and the schedules (small registry queries) and redraw."""
        try:
            entries = self.queue.entries()
            self.paused = self.queue.is_paused()
            self.busy = runner_busy()
            schedules = self.schedule_list.schedules.list()
        except StudioError as error:
            self.banner.show_error(error)
            return
        if self.busy:
            self._starting_until = 0.0
        if self.runner_process is not None and self.runner_process.poll() is not None:
            self.runner_process = None  # the runner started from here has finished (and is reaped)
        self.slots = timeline(entries)
        self.schedule_list.show_schedules(schedules)
        self._fill()
        self._show_state()
        self._update_buttons()

    def _fill(self) -> None:
        selected = self.selected_entry()
        keep = selected.id if selected is not None else None
        self.table.clearSelection()
        self.table.setRowCount(len(self.slots))
        for row, slot in enumerate(self.slots):
            entry = slot.entry
            running = entry.state == "running"
            waiting = "Waiting (queue paused)" if self.paused else "Waiting"
            starts = f"started {clock(slot.start)}" if running else clock(slot.start)
            finishes = clock(slot.finish) + ("" if slot.estimated else " (guess)")
            for column, text in enumerate((_label(entry), "Training" if running else waiting, starts, finishes,
                                           condition_text(entry))):
                item = QTableWidgetItem(text)
                item.setData(ENTRY_ROLE, entry.id)
                if column == 3 and not slot.estimated:
                    item.setToolTip("Studio could not estimate this run's training time when it was queued, so "
                                    "half an hour is assumed.")
                self.table.setItem(row, column, item)
        if keep is not None:
            for row, slot in enumerate(self.slots):
                if slot.entry.id == keep:
                    self.table.selectRow(row)
        has_rows = bool(self.slots)
        self.table.setVisible(has_rows)
        self.entry_buttons.setVisible(has_rows)
        self.empty.setVisible(not has_rows)
        fit_rows(self.table, len(self.slots), VISIBLE_ROWS)

    def _show_state(self) -> None:
        starting = time.monotonic() < self._starting_until
        if self.busy and self.paused:
            kind, text, detail = "warn", "Paused", "The run in progress finishes; nothing new starts."
        elif self.busy:
            kind, text, detail = "ok", "Working through the queue", "Runs start one after another, also when " \
                                                                    "you close Studio."
        elif starting:
            kind, text, detail = "info", "Starting…", "The queue's background process is starting."
        elif self.paused:
            kind, text, detail = "warn", "Paused", "Nothing starts until you resume the queue."
        else:
            kind, text, detail = "info", "Not running", "Press Start queue to train the waiting runs." \
                if self.slots else ""
        self.state_badge.setText(text)
        self.state_badge.set_kind(kind)
        self.state_detail.setText(detail)
        self.pause_button.setText("Resume queue" if self.paused else "Pause queue")

    def selected_entry(self) -> QueueEntry | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        entry_id = self.table.item(rows[0].row(), 0).data(ENTRY_ROLE)
        return next((e for e in self.entries if e.id == entry_id), None)

    def select_entry(self, entry_id: int) -> None:
        for row, slot in enumerate(self.slots):
            if slot.entry.id == entry_id:
                self.table.selectRow(row)

    def _update_buttons(self) -> None:
        entry = self.selected_entry()
        waiting = [e.id for e in self.entries if e.state == "waiting"]
        movable = entry is not None and entry.id in waiting
        self.up_button.setEnabled(movable and waiting[0] != entry.id)  # type: ignore[union-attr]
        self.down_button.setEnabled(movable and waiting[-1] != entry.id)  # type: ignore[union-attr]
        self.remove_button.setEnabled(entry is not None)
        self.watch_button.setEnabled(any(e.state == "running" for e in self.entries))
        starting = time.monotonic() < self._starting_until
        has_work = bool(waiting) or bool(self.schedule_list.shown)
        self.start_button.setText("Stop queue" if self.busy else "Start queue")
        self.start_button.setEnabled(self.busy or (has_work and not starting))
        self.start_button.setToolTip(
            "The run in progress stops after its current step with a checkpoint and resumes first when the queue "
            "starts again." if self.busy else
            "Train the waiting runs one after another in a background process; it goes on when you close Studio."
            + (" It keeps watching for automatic retrains." if self.schedule_list.shown else ""))

    # ---- changing -------------------------------------------------------------------------------------

    def move_selected(self, steps: int) -> None:
        entry = self.selected_entry()
        if entry is None:
            return
        try:
            self.queue.move(entry.id, steps)
        except StudioError as error:
            self.banner.show_error(error)
        self.refresh()
        self.select_entry(entry.id)

    def remove_selected(self) -> None:
        entry = self.selected_entry()
        if entry is None:
            return
        if entry.state == "running":
            question = (f"Stop {_label(entry)} and take it off the queue? It stops after its current step and "
                        "keeps a checkpoint, so you can resume it later from the runs library. The next run in "
                        "line starts after it.")
        else:
            question = (f"Remove {_label(entry)} from the queue? It has not started, so its settings are removed "
                        "with it.")
        if not self.confirm("Remove from the queue", question):
            return
        try:
            message = self.queue.remove(entry.id)
        except StudioError as error:
            self.banner.show_error(error)
        else:
            self.banner.show_message("ok", message)
        self.refresh()

    def toggle_pause(self) -> None:
        try:
            self.queue.set_paused(not self.queue.is_paused())
        except StudioError as error:
            self.banner.show_error(error)
        self.refresh()

    def start_queue(self) -> None:
        """Start the background runner (with `--watch` when schedules may add retrains later), or stop it."""
        if runner_busy():
            self.stop_queue()
            return
        command = runner_command(watch=bool(self.schedule_list.shown))
        try:
            self.runner_process = self.launcher(command)
        except OSError as exc:
            self.banner.show_error(StudioError(
                what="Studio could not start the queue.",
                why=f"Starting the background process failed: {exc.strerror or exc}.",
                actions=["Check that Studio is installed completely.",
                         "Run `studio queue run` in a terminal instead.", "Restart Studio and try again."],
                code="queue_start_failed",
            ))
            return
        self._starting_until = time.monotonic() + STARTING_S
        self.banner.show_message("info", "The queue is starting.",
                                 f"It goes on when you close Studio. Its messages are written to {runner_log()}.")
        self.refresh()

    def stop_queue(self) -> None:
        question = ("Stop the queue? The run in progress stops after its current step and keeps a checkpoint; it "
                    "resumes first when you start the queue again. Waiting runs stay in line.")
        if not self.confirm("Stop the queue", question):
            return
        if stop_runner():
            self.banner.show_message("info", "The queue is stopping.",
                                     "The run in progress saves a checkpoint first; that can take a step.")
        else:
            self.banner.show_message("info", "The queue was not running.")
        self.refresh()

    def _watch(self) -> None:
        running = next((e for e in self.entries if e.state == "running"), None)
        if running is not None:
            self.watchRequested.emit(running.run_id)

    # ---- adding ---------------------------------------------------------------------------------------

    def add(self, config: TrainConfig, name: str, *, not_before: datetime | None = None,
            when_idle: bool = False) -> QueueEntry | None:
        """Queue a run (a new version of the model line `name`) at once; its training time is estimated in the
        background (the planner validates the dataset) and shows up a few seconds later."""
        try:
            entry = self.queue.add(config, name, not_before=not_before, when_idle=when_idle)
        except StudioError as error:
            self.banner.show_error(error)
            return None
        self.banner.show_message("ok", f"Queued {_label(entry)}.",
                                 "Press Start queue when you want the queue to train." if not self.busy else "")
        self.refresh()
        self.select_entry(entry.id)
        self.added.emit(entry)
        self._unestimated.append((entry.id, config))
        if not self.estimator.busy:
            self._estimate_next()
        return entry

    @property
    def estimating(self) -> bool:
        return self.estimator.busy or bool(self._unestimated)

    def _estimate_next(self) -> None:
        if not self._unestimated:
            return
        entry_id, config = self._unestimated.pop(0)
        queue, estimate = self.queue, self.estimate
        self.estimator.start(lambda _state: queue.set_estimate(entry_id, estimate(config)),
                             "estimating how long the queued run trains")

    def _on_estimated(self, _result: object) -> None:
        self.refresh()
        self._estimate_next()

    def shutdown(self) -> None:
        """Stop the refresh timer and background work; a run whose estimate was not made yet stays queued, its
        finish time shown as a guess."""
        self.timer.stop()
        self._unestimated.clear()
        self.estimator.shutdown()


def _estimate(config: TrainConfig) -> float | None:
    from studio.engine.queue import estimate_duration

    return estimate_duration(config)
