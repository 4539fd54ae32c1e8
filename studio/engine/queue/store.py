"""The run queue, kept in the run registry so it survives closing the app and restarting the machine.

Each entry is a registered run (status "queued" until it starts) with a place in line and optional
conditions: not before a given time, only when the machine is idle. Entry states: waiting, running, done,
failed, stopped (by the user, or paused with its memory released), cancelled.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from studio.engine.errors import StudioError
from studio.engine.events import now_iso
from studio.engine.runs.creation import new_run
from studio.engine.runs.registry import Registry, RunRecord

if TYPE_CHECKING:
    from studio.engine.config import TrainConfig

EntryState = Literal["waiting", "running", "done", "failed", "stopped", "cancelled"]
OPEN_STATES: frozenset[str] = frozenset({"waiting", "running"})
_PAUSED_KEY = "queue_paused"


@dataclass(frozen=True)
class QueueEntry:
    id: int
    run_id: str
    name: str
    version: str
    position: int
    state: str
    not_before: datetime | None
    when_idle: bool
    schedule_id: int | None
    estimate_s: float | None
    added_at: str
    started_at: str | None
    finished_at: str | None
    outcome: str | None
    run_dir: Path
    dataset: str | None
    base_model: str | None

    @property
    def automatic(self) -> bool:
        """Queued by a schedule: it must earn its place as the active version."""
        return self.schedule_id is not None

    def to_dict(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["run_dir"] = str(self.run_dir)
        data["not_before"] = self.not_before.isoformat() if self.not_before else None
        return data


class RunQueue:
    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or Registry()

    # ---- adding ----------------------------------------------------------------------------------------

    def add(
        self,
        config: TrainConfig,
        name: str,
        *,
        not_before: datetime | None = None,
        when_idle: bool = False,
        schedule_id: int | None = None,
        estimate_s: float | None = None,
    ) -> QueueEntry:
        """Register a new run and put it at the end of the line."""
        run_id = new_run(self.registry, config, name).id
        with self.registry.connect() as db:
            (last,) = db.execute("SELECT COALESCE(MAX(position), 0) FROM queue").fetchone()
            cursor = db.execute(
                "INSERT INTO queue (run_id, position, state, not_before, when_idle, schedule_id, estimate_s,"
                " added_at) VALUES (?, ?, 'waiting', ?, ?, ?, ?, ?)",
                (
                    run_id,
                    last + 1,
                    _utc(not_before).isoformat() if not_before else None,
                    int(when_idle),
                    schedule_id,
                    estimate_s,
                    now_iso(),
                ),
            )
        assert cursor.lastrowid is not None
        return self.get(cursor.lastrowid)

    # ---- reading ---------------------------------------------------------------------------------------

    def entries(self, include_finished: bool = False) -> list[QueueEntry]:
        """In line order: what is running first, then what waits; finished entries after them, newest first."""
        where = "" if include_finished else "WHERE q.state IN ('waiting', 'running')"
        with self.registry.connect() as db:
            rows = db.execute(
                "SELECT q.*, r.name, r.version, r.run_dir, r.dataset, r.base_model FROM queue q "
                f"JOIN runs r ON r.id = q.run_id {where} "
                "ORDER BY CASE q.state WHEN 'running' THEN 0 WHEN 'waiting' THEN 1 ELSE 2 END,"
                " CASE WHEN q.state IN ('running', 'waiting') THEN q.position ELSE -q.id END"
            ).fetchall()
        return [_entry(row) for row in rows]

    def get(self, entry_id: int) -> QueueEntry:
        found = next((e for e in self.entries(include_finished=True) if e.id == entry_id), None)
        if found is None:
            raise StudioError(
                what=f"There is no queue entry {entry_id}.",
                why="It was removed, or the number is mistyped.",
                actions=["Run `studio queue list` to see the queue and its numbers."],
                code="queue_entry_not_found",
            )
        return found

    def is_paused(self) -> bool:
        with self.registry.connect() as db:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (_PAUSED_KEY,)).fetchone()
        return bool(row and row["value"] == "1")

    # ---- changing --------------------------------------------------------------------------------------

    def set_paused(self, paused: bool) -> None:
        """A paused queue finishes the run in progress and starts nothing new until it is resumed."""
        with self.registry.connect() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (_PAUSED_KEY, "1" if paused else "0"),
            )

    def move(self, entry_id: int, steps: int) -> None:
        """Move a waiting entry up (negative) or down (positive) the line, by swapping places."""
        waiting = [e for e in self.entries() if e.state == "waiting"]
        index = next((i for i, e in enumerate(waiting) if e.id == entry_id), None)
        if index is None:
            raise StudioError(
                what="Only runs that are still waiting can be moved.",
                why="That run has started or finished already.",
                actions=["Run `studio queue list` to see which runs are waiting."],
                code="queue_entry_not_waiting",
            )
        target = max(0, min(len(waiting) - 1, index + steps))
        order = [e.id for e in waiting]
        order.insert(target, order.pop(index))
        positions = sorted(e.position for e in waiting)
        with self.registry.connect() as db:
            db.executemany("UPDATE queue SET position = ? WHERE id = ?", list(zip(positions, order, strict=True)))

    def remove(self, entry_id: int) -> str:
        """Take an entry off the queue. A waiting run never started, so it is deleted with its folder; a running
        one is asked to stop at its next step with a checkpoint (it stays in the library, resumable); a
        finished one only leaves the list. Returns what happened, in words."""
        entry = self.get(entry_id)
        if entry.state == "waiting":
            with self.registry.connect() as db:
                db.execute("DELETE FROM queue WHERE id = ?", (entry_id,))
                db.execute("DELETE FROM runs WHERE id = ? AND status = 'queued'", (entry.run_id,))
            shutil.rmtree(entry.run_dir, ignore_errors=True)
            return f"Removed {entry.name} {entry.version} from the queue."
        if entry.state == "running":
            from studio.engine.control import ControlCommand
            from studio.engine.training.control_channel import send_to_run_dir

            self.finish(entry_id, "cancelled", "Cancelled while training; it stopped with a checkpoint.")
            send_to_run_dir(entry.run_dir, ControlCommand("stop"))
            return (
                f"Asked {entry.name} {entry.version} to stop after its current step; it keeps a checkpoint and "
                f"can be resumed with `studio resume {entry.run_id}`."
            )
        with self.registry.connect() as db:
            db.execute("DELETE FROM queue WHERE id = ?", (entry_id,))
        return f"Cleared {entry.name} {entry.version} from the list."

    def set_estimate(self, entry_id: int, seconds: float | None) -> None:
        """The planner's estimate, added after queuing (it validates the dataset, which takes a moment)."""
        with self.registry.connect() as db:
            db.execute("UPDATE queue SET estimate_s = ? WHERE id = ?", (seconds, entry_id))

    def start(self, entry_id: int) -> None:
        with self.registry.connect() as db:
            db.execute(
                "UPDATE queue SET state = 'running', started_at = COALESCE(started_at, ?) WHERE id = ?",
                (now_iso(), entry_id),
            )

    def finish(self, entry_id: int, state: EntryState, outcome: str) -> None:
        """Record how an entry ended. A cancellation is never overwritten by the stop it caused."""
        with self.registry.connect() as db:
            db.execute(
                "UPDATE queue SET state = ?, outcome = ?, finished_at = ? WHERE id = ? AND state != 'cancelled'",
                (state, outcome, now_iso(), entry_id),
            )

    def has_open_entry_for_schedule(self, schedule_id: int) -> bool:
        with self.registry.connect() as db:
            row = db.execute(
                "SELECT 1 FROM queue WHERE schedule_id = ? AND state IN ('waiting', 'running')", (schedule_id,)
            ).fetchone()
        return row is not None

    def run_record(self, entry: QueueEntry) -> RunRecord:
        record = self.registry.get(entry.run_id)
        assert record is not None, "queue entries are deleted with their runs"
        return record


def parse_time(text: str) -> datetime:
    """A stored ISO time (the registry writes UTC with a 'Z', which Python 3.10 cannot read)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _utc(moment: datetime) -> datetime:
    """Naive times are the user's local time."""
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.astimezone().astimezone(timezone.utc)


def _entry(row: Any) -> QueueEntry:
    return QueueEntry(
        id=row["id"],
        run_id=row["run_id"],
        name=row["name"],
        version=row["version"],
        position=row["position"],
        state=row["state"],
        not_before=parse_time(row["not_before"]) if row["not_before"] else None,
        when_idle=bool(row["when_idle"]),
        schedule_id=row["schedule_id"],
        estimate_s=row["estimate_s"],
        added_at=row["added_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        outcome=row["outcome"],
        run_dir=Path(row["run_dir"]),
        dataset=row["dataset"],
        base_model=row["base_model"],
    )
