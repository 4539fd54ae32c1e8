"""Pause, pause and release memory, resume, stop and checkpoint buttons that show the run's real state.

A click sends a command and greys the buttons out ("Pausing…") until the worker's own event says what
happened; the buttons never pretend a pause worked before the worker confirmed it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from studio.engine.control import ControlCommand
from studio.monitor.state import RunStatus

# Which buttons a reported status allows. Resume after "released" or "interrupted" starts a new worker.
ENABLED: dict[RunStatus, frozenset[str]] = {
    RunStatus.STARTING: frozenset({"stop"}),
    RunStatus.RUNNING: frozenset({"pause", "pause_release", "stop", "checkpoint"}),
    RunStatus.PAUSED: frozenset({"resume", "pause_release", "stop", "checkpoint"}),
    RunStatus.RELEASED: frozenset({"resume"}),
    RunStatus.INTERRUPTED: frozenset({"resume"}),
}
PENDING_TEXT = {
    "pause": "Pausing after the current step…",
    "pause_release": "Saving a checkpoint and releasing memory…",
    "resume": "Resuming…",
    "stop": "Saving a checkpoint and stopping…",
    "checkpoint": "Saving a checkpoint…",
}


def confirm_stop(parent: QWidget) -> bool:
    answer = QMessageBox.question(
        parent, "Stop training?",
        "Stop this training run?\n\nStudio saves a checkpoint first, so you can still use or continue what "
        "was learned so far.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


class ControlsBar(QWidget):
    """The run's control buttons.

    Signals:
        commandRequested(ControlCommand): the user asked for this; the dashboard sends it.
    """

    commandRequested = Signal(object)  # noqa: N815 - Qt signal naming

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.confirm_stop: Callable[[QWidget], bool] = confirm_stop
        self.buttons: dict[str, QPushButton] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for command, text, tip in (
            ("pause", "Pause", "Pause after this step; the model stays in memory, resuming is instant."),
            ("pause_release", "Pause and free memory", "Save a checkpoint and close the training process, "
                                                       "so the memory is free for other work."),
            ("resume", "Resume", "Continue training."),
            ("checkpoint", "Save checkpoint now", "Save the model as it is right now."),
            ("stop", "Stop", "Save a checkpoint and end this run."),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.setAccessibleName(text)
            button.clicked.connect(lambda _=False, c=command: self._clicked(c))
            self.buttons[command] = button
            layout.addWidget(button)
        self.note = QLabel()
        layout.addWidget(self.note, 1)
        self._status = RunStatus.IDLE
        self._pending: str | None = None
        self._refresh()

    @property
    def pending(self) -> str | None:
        return self._pending

    def set_status(self, status: RunStatus) -> None:
        """The status the worker reported; a change settles whatever was pending."""
        if status != self._status:
            self._status = status
            self._pending = None
        self._refresh()

    def settle(self, command: str) -> None:
        """The worker confirmed a command that does not change the status (a checkpoint was saved)."""
        if self._pending == command:
            self._pending = None
            self._refresh()

    def enabled_buttons(self) -> set[str]:
        return {name for name, button in self.buttons.items() if button.isEnabled() and not button.isHidden()}

    def _clicked(self, command: str) -> None:
        if command == "stop" and not self.confirm_stop(self):
            return
        self._pending = command
        self._refresh()
        self.commandRequested.emit(ControlCommand(command))  # type: ignore[arg-type]

    def _refresh(self) -> None:
        allowed = ENABLED.get(self._status, frozenset())
        if self._pending is not None:
            # While a command is in flight only Stop stays available (a stop overrides anything).
            allowed = allowed & {"stop"} if self._pending != "stop" else frozenset()
        for name, button in self.buttons.items():
            button.setEnabled(name in allowed)
        self.buttons["pause"].setVisible(self._status is not RunStatus.PAUSED)
        self.buttons["resume"].setVisible(self._status in {RunStatus.PAUSED, RunStatus.RELEASED,
                                                           RunStatus.INTERRUPTED})
        self.note.setText(PENDING_TEXT.get(self._pending or "", ""))
