"""The one place where a run's events enter the GUI: JSON lines or Event objects in, typed Qt signals out.

Lines may arrive on any thread (the supervisor's reader thread, a file-tailing QThread); the bridge parses
them there and emits signals, which Qt queues to the widgets on the main thread. A malformed line is
logged and skipped: a bad byte from a worker must never take the window down. Commands go out through a
sender the owner plugs in (the supervisor's stdin, or the run's control folder for a run started elsewhere),
and every command sent is announced on `commandSent`, which is how tests and the log see what the GUI asked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from studio.engine.control import ControlCommand
from studio.engine.events import (
    Anomaly,
    Checkpoint,
    Completed,
    Error,
    Eval,
    Event,
    EventParseError,
    HardestExamples,
    Paused,
    Progress,
    Recovery,
    Resumed,
    Started,
    Stopped,
    parse_event,
)

log = logging.getLogger(__name__)

# Takes a command to the worker; returns False (or raises OSError) when nothing is listening any more.
Sender = Callable[[ControlCommand], bool | None]


class RunBridge(QObject):
    """Turns a run's event stream into Qt signals and the GUI's clicks into control commands.

    Signals:
        events(list): every event, in order, in batches (a live event comes as a one-element list).
        started(Started), progress(Progress), evaluated(Eval), checkpointed(Checkpoint), anomaly(Anomaly),
        recovery(Recovery), paused(Paused), resumed(Resumed), completed(Completed), failed(Error),
        stopped(Stopped), hardest(HardestExamples): one per live event of that kind (not emitted while
        replaying history).
        workerExited(int): the worker process ended with this exit code.
        workerSilent(float): no word from a running worker for this many seconds.
        lineRejected(str): a line that is not a valid event (already logged).
        commandSent(object): a ControlCommand that was handed to the worker.
    """

    events = Signal(list)
    started = Signal(object)
    progress = Signal(object)
    evaluated = Signal(object)
    checkpointed = Signal(object)
    anomaly = Signal(object)
    recovery = Signal(object)
    paused = Signal(object)
    resumed = Signal(object)
    completed = Signal(object)
    failed = Signal(object)
    stopped = Signal(object)
    hardest = Signal(object)
    workerExited = Signal(int)  # noqa: N815 - Qt signal naming
    workerSilent = Signal(float)  # noqa: N815
    lineRejected = Signal(str)  # noqa: N815
    commandSent = Signal(object)  # noqa: N815

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._sender: Sender | None = None
        self._typed: dict[type[Event], Signal] = {
            Started: self.started, Progress: self.progress, Eval: self.evaluated,
            Checkpoint: self.checkpointed, Anomaly: self.anomaly, Recovery: self.recovery,
            Paused: self.paused, Resumed: self.resumed, Completed: self.completed,
            Error: self.failed, Stopped: self.stopped, HardestExamples: self.hardest,
        }

    # ---- in ----------------------------------------------------------------------------------------

    def feed_line(self, line: str | bytes) -> None:
        """One JSON line from a worker; safe to call from any thread."""
        event = self.parse(line)
        if event is not None:
            self.feed_events([event])

    def feed_events(self, batch: list[Event], live: bool = True) -> None:
        """Events already parsed; `live=False` for history, which updates views but raises no alerts."""
        if not batch:
            return
        self.events.emit(batch)
        if live:
            for event in batch:
                signal = self._typed.get(type(event))
                if signal is not None:
                    signal.emit(event)

    def parse(self, line: str | bytes) -> Event | None:
        if not line.strip():
            return None
        try:
            return parse_event(line)
        except EventParseError as exc:
            text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
            log.warning("Ignoring a worker line that is not an event (%s): %.200s", exc, text)
            self.lineRejected.emit(text[:1000])
            return None

    def reject_line(self, line: str) -> None:
        """A line someone else already failed to parse (the supervisor's reader)."""
        log.warning("Ignoring a worker line that is not an event: %.200s", line)
        self.lineRejected.emit(line[:1000])

    def notify_exit(self, exit_code: int) -> None:
        self.workerExited.emit(int(exit_code))

    def notify_silent(self, seconds: float) -> None:
        self.workerSilent.emit(float(seconds))

    # ---- out ---------------------------------------------------------------------------------------

    def set_sender(self, sender: Sender | None) -> None:
        """Where commands go; None when nothing can take them (a finished run being viewed)."""
        self._sender = sender

    @property
    def can_send(self) -> bool:
        return self._sender is not None

    def send(self, command: ControlCommand) -> bool:
        """Hand a command to the worker; False (and logged) when no worker is listening."""
        if self._sender is None:
            log.warning("No training worker is listening; the command %s was not sent.", command.command)
            return False
        try:
            delivered = self._sender(command) is not False
        except OSError as exc:
            log.warning("Could not send %s to the training worker: %s", command.command, exc)
            return False
        if not delivered:
            log.warning("The training worker is gone; the command %s was not delivered.", command.command)
            return False
        self.commandSent.emit(command)
        return True


class EventFileReader(QThread):
    """Reads a run's events.jsonl into a bridge in batches, then optionally follows it as the run goes on.

    Following is how the GUI reattaches to a run whose worker is not its child (started before the app
    was restarted): the file is the record, and new lines are polled for. History is replayed with
    `live=False`; lines that appear while following are live.

    Signals:
        caughtUp(): the whole existing file has been read (history is on screen).
    """

    caughtUp = Signal()  # noqa: N815

    BATCH = 2000
    POLL_S = 0.25

    def __init__(self, path: Path, bridge: RunBridge, follow: bool = False,
                 alive: Callable[[], bool] | None = None, silent_after_s: float = 60.0,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._path = path
        self._bridge = bridge
        self._follow = follow
        self._alive = alive or (lambda: True)
        self._silent_after_s = silent_after_s

    def run(self) -> None:
        try:
            handle = self._path.open("rb")
        except OSError as exc:
            log.warning("Cannot read the run's event record %s: %s", self._path, exc)
            self.caughtUp.emit()
            return
        with handle:
            pending = b""
            live = False
            last_word = time.monotonic()
            while not self.isInterruptionRequested():
                alive = self._alive()  # asked before reading, so nothing written after it can be missed
                chunk = handle.read(1 << 20)
                if chunk:
                    *lines, pending = (pending + chunk).split(b"\n")
                    self._deliver(lines, live)
                    last_word = time.monotonic()
                    continue
                if live and alive:
                    silence = time.monotonic() - last_word
                    if silence > self._silent_after_s:
                        self._bridge.notify_silent(silence)
                        last_word = time.monotonic()
                    self.msleep(int(self.POLL_S * 1000))
                    continue
                finished = not self._follow or not alive
                if finished and pending:
                    self._deliver([pending], live)
                if not live:
                    live = True
                    self.caughtUp.emit()
                if finished:
                    if self._follow:
                        self._bridge.notify_exit(-1)  # the worker is gone and all it wrote was read
                    return

    def _deliver(self, lines: list[bytes], live: bool) -> None:
        batch: list[Event] = []
        for line in lines:
            event = self._bridge.parse(line)
            if event is not None:
                batch.append(event)
            if len(batch) >= self.BATCH:
                self._bridge.feed_events(batch, live)
                batch = []
        self._bridge.feed_events(batch, live)

    def stop(self) -> None:
        """Ask the thread to finish and wait for it, so no thread outlives its dashboard."""
        self.requestInterruption()
        self.wait()
