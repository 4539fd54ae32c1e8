"""The queue runner: trains queued runs one after another, headless (`studio queue run`, or started by the
app in the background so the queue goes on when the window closes).

Only one runner works at a time (a lock file beside the registry; the operating system releases it when the
runner dies, even on kill -9). A runner that starts finds the queue as the last one left it: an entry still
marked running is dealt with first, by following its worker if it survived, or by resuming the run from its
last good checkpoint if it did not. A failed run is recorded and the line moves on. Automatic retrains
(queued by a schedule) become the active version only when they are not worse (studio.engine.runs.active).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.events import Event
from studio.engine.paths import database_path
from studio.engine.queue.idle import machine_idle
from studio.engine.queue.schedules import Schedules
from studio.engine.queue.store import EntryState, QueueEntry, RunQueue
from studio.engine.runs.notices import add_notice
from studio.engine.runs.registry import ACTIVE, Registry, RunRecord

POLL_S = 15.0

IdleCheck = Callable[[Registry], tuple[bool, str]]
EventSink = Callable[[QueueEntry, Event], None]
Say = Callable[[str], None]


@dataclass(frozen=True)
class EntryResult:
    entry: QueueEntry
    state: str
    outcome: str


def runner_lock_path() -> Path:
    return database_path().with_name("queue-runner.lock")


def runner_pid_path() -> Path:
    """Who holds the lock: its pid and start time, so `stop_runner` never signals a stranger."""
    return database_path().with_name("queue-runner.pid")


def stop_runner() -> bool:
    """Ask the runner working through the queue to stop (as Ctrl-C does: the current run stops with a
    checkpoint and resumes first next time). False when no runner is working."""
    import json
    import os
    import signal

    import psutil

    if not runner_busy():
        return False
    try:
        holder = json.loads(runner_pid_path().read_text(encoding="utf-8"))
        process = psutil.Process(int(holder["pid"]))
        if abs(process.create_time() - float(holder["started"])) > 1.0:
            return False
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return False
    os.kill(process.pid, signal.SIGTERM)
    return True


def runner_busy() -> bool:
    """Whether another runner holds the queue now (the app uses it to show "working through the queue")."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(runner_lock_path()))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


class QueueRunner:
    def __init__(
        self,
        registry: Registry | None = None,
        *,
        on_event: EventSink | None = None,
        say: Say | None = None,
        is_idle: IdleCheck = machine_idle,
        poll_s: float = POLL_S,
        validates: Callable[..., str | None] | None = None,
    ) -> None:
        self.registry = registry or Registry()
        self.queue = RunQueue(self.registry)
        self.schedules = Schedules(self.registry)
        self._on_event = on_event or (lambda _entry, _event: None)
        self._say = say or (lambda _text: None)
        self._is_idle = is_idle
        self._poll_s = poll_s
        self._validates = validates
        self.stop_requested = threading.Event()
        self._crash: str | None = None  # what the last worker that vanished wrote last

    def run(self, *, keep_watching: bool = False) -> list[EntryResult]:
        """Work through the queue. Returns when nothing is left to run (runs waiting for a time or for an idle
        machine are waited for), or never with `keep_watching` (schedules keep adding work) until
        `stop_requested` is set; the run in progress then stops with a checkpoint and resumes next time."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(runner_lock_path()))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise StudioError(
                what="The queue is already being worked through.",
                why="Another Studio window or a `studio queue run` command is running it.",
                actions=[
                    "Watch its progress in the runs library, or with `studio queue list`.",
                    "Stop the other one first if you want this one to take over.",
                ],
                code="queue_busy",
            ) from None
        results: list[EntryResult] = []
        _write_holder()
        try:
            while not self.stop_requested.is_set():
                self.registry.reconcile()
                self.schedules.tick(self.queue, validates=self._validates)
                entry, waiting_for = self._next()
                if entry is not None:
                    results.append(self._run_entry(entry))
                    continue
                if waiting_for is None and not keep_watching:
                    break
                if waiting_for:
                    self._say(f"Waiting: {waiting_for}.")
                self.stop_requested.wait(self._poll_s)
        finally:
            lock.release()
        return results

    # ---- choosing ------------------------------------------------------------------------------------------

    def _next(self) -> tuple[QueueEntry | None, str | None]:
        """The entry to run now, or None and what the waiting entries wait for (None when nothing waits)."""
        entries = self.queue.entries()
        if not entries:
            return None, None
        if self.queue.is_paused():
            return None, "the queue is paused"
        interrupted = next((e for e in entries if e.state == "running"), None)
        if interrupted is not None:
            return interrupted, None
        now = datetime.now(timezone.utc)
        reasons: list[str] = []
        idle: tuple[bool, str] | None = None
        for entry in entries:
            if entry.not_before is not None and entry.not_before > now:
                reasons.append(f"{entry.name} starts at {entry.not_before.astimezone():%H:%M on %d %b}")
                continue
            if entry.when_idle:
                idle = idle or self._is_idle(self.registry)
                if not idle[0]:
                    reasons.append(f"{entry.name} waits for an idle machine ({idle[1]})")
                    continue
            return entry, None
        return None, "; ".join(reasons)

    # ---- running -------------------------------------------------------------------------------------------

    def _run_entry(self, entry: QueueEntry) -> EntryResult:
        self._crash = None
        record = self.queue.run_record(entry)
        if record.status in ACTIVE and record.pid is not None:  # its worker outlived the last runner
            self._say(f"Following {entry.name} {entry.version}, still training from before.")
            self._follow(record)
        else:
            resuming = entry.state == "running" or record.status in ("interrupted", "stopped", "paused")
            self._say(f"{'Resuming' if resuming else 'Starting'} {entry.name} {entry.version}.")
            self.queue.start(entry.id)
            self._supervise(entry)
        if self.stop_requested.is_set() and self.queue.get(entry.id).state == "running":
            # The runner was stopped, not the run: it stays first in line and resumes next time.
            return EntryResult(entry, "running", "The queue was stopped; this run resumes first next time.")
        return self._record_outcome(entry)

    def _supervise(self, entry: QueueEntry) -> None:
        from studio.engine.training.supervisor import Supervisor

        supervisor = Supervisor(
            entry.run_dir,
            on_event=lambda event: self._on_event(entry, event),
            on_silence=lambda seconds: self._say(f"No word from {entry.name} for {seconds:.0f} s; it may be stuck."),
            on_hang=lambda seconds: self._say(f"No word from {entry.name} for {seconds:.0f} s: ending it."),
        )
        supervisor.start()
        asked_to_stop = False
        while supervisor.running():
            if not asked_to_stop and (self.stop_requested.is_set() or self.queue.get(entry.id).state == "cancelled"):
                supervisor.stop()  # a checkpoint first; the run can be resumed
                asked_to_stop = True
            time.sleep(0.5)
        outcome = supervisor.wait()
        if outcome.status == "interrupted":
            self.registry.set_status(entry.run_id, "interrupted")
            crash = outcome.crash_error(entry.run_id)
            self._crash = f"{crash.what} {crash.why}" if crash is not None else None

    def _follow(self, record: RunRecord) -> None:
        """Wait for a worker this runner did not start (the previous runner died and left it training)."""
        while record.status in ACTIVE and record.pid is not None:
            if self.stop_requested.is_set():
                return
            time.sleep(1.0)
            self.registry.reconcile()
            record = self.registry.get(record.id) or record

    def _record_outcome(self, entry: QueueEntry) -> EntryResult:
        record = self.queue.run_record(entry)
        label = f"{entry.name} {entry.version}"
        state: EntryState
        if record.status == "completed":
            state, outcome = "done", "Finished."
        elif record.status == "failed":
            state, outcome = "failed", f"Failed: {_last_error(record) or 'see the run for details'}"
            add_notice(self.registry, "error", f"{label} failed; the queue moved on", outcome, entry.run_id)
        elif record.status in ("stopped", "paused"):
            state, outcome = "stopped", (
                "Stopped with a checkpoint." if record.status == "stopped" else "Paused with its memory released."
            )
        else:
            state, outcome = "failed", self._crash or "The training process ended unexpectedly."
            outcome += " Resume it from its last checkpoint."
            add_notice(self.registry, "error", f"{label} ended unexpectedly; the queue moved on", outcome, entry.run_id)
        self.queue.finish(entry.id, state, outcome)
        if entry.automatic and state == "done":
            from studio.engine.runs.active import settle_automatic

            decision = settle_automatic(self.registry, entry.run_id)
            outcome += f" {'Now the active version' if decision.activate else 'Kept but not made active'}: " \
                       f"{decision.reason}"
        final = self.queue.get(entry.id)
        self._say(f"{label}: {final.outcome if final.state == 'cancelled' else outcome}")
        return EntryResult(entry, final.state, outcome)


def _write_holder() -> None:
    import json
    import os

    import psutil

    holder = {"pid": os.getpid(), "started": psutil.Process().create_time()}
    runner_pid_path().write_text(json.dumps(holder), encoding="utf-8")


def _last_error(record: RunRecord) -> str | None:
    """The message of the run's last error event, read from its event file."""
    from studio.engine.events import EventParseError, parse_event
    from studio.engine.runs.folders import events_file

    path = events_file(record.run_dir)
    if not path.is_file():
        return None
    message = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"error"' not in line:
            continue
        try:
            event = parse_event(line)
        except EventParseError:
            continue
        if event.kind == "error":
            message = f"{getattr(event, 'message', '')} {getattr(event, 'hint', '')}".strip()
    return message
