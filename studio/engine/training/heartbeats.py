"""The worker's pulse: a heartbeat every few seconds, whatever it is doing, and a note on stderr that never fails."""

from __future__ import annotations

import contextlib
import sys
import threading

from studio.engine.events import Heartbeat
from studio.engine.training.sinks import EventEmitter

HEARTBEAT_S = 10.0


class Heartbeats:
    """Emits a heartbeat every few seconds, whatever the worker is doing (a CPU step can take minutes),
    so the supervisor can tell a slow worker from a frozen one; `phase` says what it is busy with."""

    def __init__(self, emitter: EventEmitter, interval: float = HEARTBEAT_S) -> None:
        self._emitter = emitter
        self._interval = interval
        self.phase = "starting"
        self._stop = threading.Event()
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()

    def set_phase(self, phase: str) -> None:
        self.phase = phase

    def _beat(self) -> None:
        """Beat until closed, whatever goes wrong: a failed write (a full disk) ends this beat, not the thread.
        The event reached the other sinks (stdout); the training thread meets the failure on its next event."""
        while not self._stop.wait(self._interval):
            try:
                self._emitter.emit(Heartbeat, phase=self.phase)
            except Exception as exc:  # a dead heartbeat would make a live worker look frozen
                log_stderr(f"heartbeat not recorded: {type(exc).__name__}: {exc}\n")

    def close(self) -> None:
        self._stop.set()


def log_stderr(text: str) -> None:
    """A note for RUN_DIR/logs/worker.stderr.log, which may itself be on the full disk."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text)
        sys.stderr.flush()
