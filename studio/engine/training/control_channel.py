"""Control commands reach a worker two ways: JSON lines on its stdin (from its supervisor) and files dropped
in RUN_DIR/control/ (from `studio pause RUN` in another terminal). Both feed one queue.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from studio.engine.control import ControlCommand, parse_command

CONTROL_DIR = "control"
POLL_S = 0.25


def control_dir(run_dir: Path) -> Path:
    return run_dir / CONTROL_DIR


def send_to_run_dir(run_dir: Path, command: ControlCommand) -> Path:
    """Drop a command for a worker that is not our child; written then renamed so it is never read half-done."""
    folder = control_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    tmp = folder / f".{name}.tmp"
    tmp.write_text(command.to_json() + "\n", encoding="utf-8")
    return tmp.replace(folder / f"{name}.json")


class ControlChannel:
    """Collects commands from stdin and the control folder on daemon threads; the worker polls `get`."""

    def __init__(self, run_dir: Path, stdin: TextIO | None = None) -> None:
        self._queue: queue.Queue[ControlCommand] = queue.Queue()
        self._folder = control_dir(run_dir)
        self._folder.mkdir(parents=True, exist_ok=True)
        self._closed = threading.Event()
        # Sees each command from outside first and may take it (a stop during set-up: training.signals).
        self.on_command: Callable[[ControlCommand], bool] | None = None
        # Commands left over from a previous worker of this run are stale: a new start is a new intent.
        for stale in self._folder.glob("*.json"):
            stale.unlink(missing_ok=True)
        threading.Thread(target=self._watch_folder, name="control-folder", daemon=True).start()
        if stdin is not None:
            threading.Thread(
                target=self._read_stream, args=(stdin,), name="control-stdin", daemon=True
            ).start()

    def put(self, command: ControlCommand) -> None:
        """Inject a command from inside the worker (signal handlers)."""
        self._queue.put(command)

    def get(self, timeout: float | None = None) -> ControlCommand | None:
        try:
            if timeout is None:
                return self._queue.get_nowait()
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._closed.set()

    def _read_stream(self, stream: TextIO) -> None:
        for line in stream:
            command = parse_command(line)
            if command is not None:
                self._deliver(command)
            if self._closed.is_set():
                return

    def _watch_folder(self) -> None:
        while not self._closed.wait(POLL_S):
            for path in sorted(self._folder.glob("*.json")):
                try:
                    text = path.read_text(encoding="utf-8")
                    path.unlink()
                except OSError:
                    continue
                for line in text.splitlines():
                    command = parse_command(line)
                    if command is not None:
                        self._deliver(command)

    def _deliver(self, command: ControlCommand) -> None:
        taker = self.on_command
        if taker is None or not taker(command):
            self._queue.put(command)
