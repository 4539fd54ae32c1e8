"""Where events go: a sink protocol with stdout, events.jsonl and in-memory implementations.

The worker writes every event to all its sinks through one EventEmitter, which stamps `run_id`, `seq` and
`ts` so sinks never disagree about an event's identity. Emitting is thread-safe because heartbeats come
from a background thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Protocol, TextIO

from studio.engine.events import Event, now_iso
from studio.engine.training.faults import raise_if_disk_full


class EventSink(Protocol):
    def write(self, event: Event) -> None: ...

    def close(self) -> None: ...


class StreamSink:
    """One JSON line per event on a text stream (the worker's stdout), flushed at once.

    The reader may go away mid-run (the GUI quits and training goes on in the background): the sink then
    switches itself off instead of killing the worker, which keeps recording to events.jsonl.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self.detached = False
        _ignore_sigpipe()

    def write(self, event: Event) -> None:
        if self.detached:
            return
        try:
            self._stream.write(event.to_json() + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # BrokenPipeError, or a stream already closed
            self._detach()

    def close(self) -> None:
        if self.detached:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self._detach()

    def _detach(self) -> None:
        """Point the stream's descriptor at the null device, so the unflushed line it still holds (and any
        later flush by the worker or at interpreter exit) goes nowhere instead of raising again."""
        self.detached = True
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, self._stream.fileno())
            finally:
                os.close(null)


def _ignore_sigpipe() -> None:
    """A write to a pipe nobody reads must raise (and be handled), never end the process with SIGPIPE;
    Python ignores the signal already, this keeps it so should a library have reset it."""
    if hasattr(signal, "SIGPIPE") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)


class FileSink:
    """Appends to RUN_DIR/events.jsonl; a resumed run keeps appending to the same record.

    A write that fails (a full disk) switches the sink off: the line it held is dropped, and this write and
    every later one raise the same OSError, so the worker ends the run while stdout carries on.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self.error: OSError | None = None
        if self._file.tell() and not _ends_with_newline(path):
            self._file.write("\n")  # a line cut short by an earlier failure stays apart from the next one

    def write(self, event: Event) -> None:
        if self.error is not None:
            raise self.error
        try:
            raise_if_disk_full("events_disk_full_at_step", getattr(event, "step", None))
            self._file.write(event.to_json() + "\n")
            self._file.flush()
        except OSError as exc:
            self.error = exc
            self.close()
            raise

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the unflushed line of a failed write is dropped, not retried
            self._file.close()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


class MemorySink:
    """Keeps events in a list, for tests and in-process callers."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def write(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        """Nothing to release."""

    def of_kind(self, kind: str) -> list[Event]:
        return [event for event in self.events if event.kind == kind]


class EventEmitter:
    """Stamps events with run id, sequence number and time, and fans them out to every sink."""

    def __init__(self, run_id: str, sinks: list[EventSink], start_seq: int = 0) -> None:
        self.run_id = run_id
        self._sinks = sinks
        self._seq = start_seq
        self._lock = threading.Lock()

    def emit(self, event_type: type[Event], **fields: Any) -> Event:
        """Write the event to every sink; a sink that fails (OSError) does not keep it from the others, and
        its error is raised once they all have it."""
        with self._lock:
            self._seq += 1
            clean = {name: _strict(value) for name, value in fields.items()}
            event = event_type(run_id=self.run_id, seq=self._seq, ts=now_iso(), **clean)
            failure: OSError | None = None
            for sink in self._sinks:
                try:
                    sink.write(event)
                except OSError as exc:
                    failure = failure or exc
            if failure is not None:
                raise failure
            return event

    def forward(self, event: Event) -> Event:
        """Re-emit an event built elsewhere (e.g. by a detector) with this stream's stamps."""
        return self.emit(
            type(event),
            **{
                f.name: getattr(event, f.name)
                for f in dataclasses.fields(event)
                if f.name not in {"run_id", "seq", "ts", "v"}
            },
        )

    def close(self) -> None:
        for sink in self._sinks:
            with contextlib.suppress(OSError):
                sink.close()


def _strict(value: Any) -> Any:
    """Events are strict JSON, which has no NaN or infinity: those travel as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_strict(item) for item in value)
    return value


def highest_mark(events_file: Path, owner_key: str, owner: str, count_key: str) -> int:
    """The highest `count_key` among the record's events whose `owner_key` is `owner`: how far a cloud runner
    had passed on a remote record (its own state file may lag one event behind the record)."""
    highest = 0
    with contextlib.suppress(OSError), events_file.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if owner not in line:
                continue
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                data = json.loads(line)
                if data.get(owner_key) == owner:
                    highest = max(highest, int(data.get(count_key) or 0))
    return highest


def last_seq(events_file: Path) -> int:
    """The highest sequence number already in a run's record, so a resumed worker continues the count."""
    highest = 0
    if not events_file.exists():
        return 0
    with events_file.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                highest = max(highest, int(json.loads(line).get("seq", 0)))
            except (ValueError, AttributeError, TypeError):
                continue
    return highest
